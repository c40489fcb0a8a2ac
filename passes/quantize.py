"""Quantize a folded float graph to a target's fixed point (Loihi 2 as Lava models it).

Every width, shift and unit comes from the target's `widths` (snnc/ir/widths.py); the
figures below are Loihi 2's (act_shift = vth_shift = 6, 8-bit weights, decay unit 4096).

Scales. Each neuron layer gets a scale S (v-units per float unit). A synapse feeding it sends
a = (W_int @ s) << e, which enters v as a << 6, so W_int * 2^(e+6) = S * gain * W (divided by
the input scale for graded input). Each synapse picks its own exponent e, the largest-range
one that keeps W_int in 8 bits. Biases become bias_mant << bias_exp = round(S * gain * b).

Thresholds and ties. The chip fires on v > vth << 6. S is chosen so that the float threshold
lands exactly on that grid: S * th = 64 * vth for a model that fires on `>`, and
S * th = 64 * vth + 1 for one that fires on `>=`, so that v > 64*vth is v >= S*th: the
trained comparison holds exactly on the integers. A hard reset to r != 0 shifts v by r
(threshold th - r, reset to 0). A soft reset subtracts reset_sub = S * th. Per-channel float
thresholds (threshold folding) become per-channel scales with one integer vth. vth is
2^10 unless the layer's worst-case synaptic input would then exceed the chip's 16 bits.

Decays. dv = round(4096 * (1 - decay)); no current state (du = 4095, u = a << 6).

Each float neuron type has its rule (`NEURON_RULES`, by exact type): its gain, how its
threshold sets the scale, and the fixed-point node it becomes. A type without one is refused,
never quantized as a look-alike.

CLIF. H uses the LIF update; sigmoid(H / tau) is a 1025-entry table over H/tau in [-8, 8]
(step 1/64) with 12-bit outputs, indexed by round(H * 64 / (S * tau)) (an integer multiply
and shift); M has 12 fraction bits; the reset adds reset_lut[M >> 6] = round(S * sigmoid(j /
64)), a 1024-entry table over M in [0, 16). Equations in snnc/ir/fixed.py.

CubaLIF (snnTorch's Leaky and Synaptic). v as a LIF's (soft-reset rule: reset_sub = S * th
on the grid, tie included, and the owed reset r = v > vth << 6 uses the same tie); the
current decay becomes du = round(4096 * (1 - current_decay)) - 1 in [0, 4095] (Lava decays
u by (4096 - du - 1) / 4096; current_decay = 0 is du = 4095, no current state; 1 is not
representable and becomes 4095/4096). With a current state u sums up to
min(T, 1 / (1 - current_decay)) steps of input, so the scale also keeps that sum in 24 bits.

Analog input becomes graded spikes: x_int = round(x * (2^8 - 1) / x_max), x_max = 1 unless
calibration data say otherwise. The readout's scale keeps T steps of its worst-case input in
24 bits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from snnc.errors import SnncError, UnsupportedNodeError
from snnc.ir import (
    CLIF,
    LIF,
    Add,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    CubaLIF,
    Dense,
    Flatten,
    FxCLIF,
    FxConv2d,
    FxCubaLIF,
    FxDense,
    FxInput,
    FxLIF,
    FxReadout,
    Graph,
    Input,
    Neuron,
    Node,
    Readout,
)
from snnc.passes import PassResult
from snnc.targets import LOIHI2, Target

log = logging.getLogger(__name__)

DEFAULT_VTH = 1 << 10
SIG_STEPS = 64        # table steps per unit of H/tau
SIG_RANGE = 8         # table covers H/tau in [-8, 8]
M_SHIFT = 6           # reset table step: M >> 6 = 1/64 of a unit of M
M_ENTRIES = 1024      # M in [0, 16)
SIG_SHIFT = 32
ZEROED_WARNING = 0.1  # warn when more than this fraction of nonzero weights round to zero


class QuantizationError(SnncError):
    """A layer cannot be represented on the target; the message names it."""


@dataclass
class LayerQuant:
    """What quantization did to one synapse or neuron, for the per-layer report."""

    name: str
    kind: str
    weight_exp: int | None = None
    weight_bits_used: int | None = None
    max_weight_error: float | None = None    # in float weight units
    zeroed_weights: float | None = None      # fraction of nonzero weights rounded to 0
    vth: int | None = None
    dv: int | None = None
    scale: float | None = None
    bias_exp: int | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class QuantizeOptions:
    target: Target = LOIHI2
    timesteps: int = 4
    input_max: float = 1.0
    input_signed: bool = False


def _terms(graph: Graph, name: str, neuron: str) -> list[Node]:
    """The synapses whose outputs sum into `name` (through Adds)."""
    terms = graph.sum_terms(name)
    for node in terms:
        if not isinstance(node, Conv2d | Dense):
            raise QuantizationError(
                f"neuron {neuron!r} reads {node.name!r} ({node.op}); on the chip a neuron's "
                "input must be a sum of synapses (Conv2d/Dense); run the folding passes first")
    return terms


def _max_source(graph: Graph, src: str, opts: QuantizeOptions) -> float:
    node = graph[src]
    if isinstance(node, Input):
        return 1.0 if node.encoding == "spikes" else opts.input_max
    if isinstance(node, Neuron) and node.spiking:
        return 1.0
    raise QuantizationError(f"synapse input {src!r} ({node.op}) is neither spikes nor the "
                            "graph input; fold pooling/flatten first")


def _drive(graph: Graph, syn: Node, opts: QuantizeOptions) -> np.ndarray:
    """Worst-case |input| per output neuron (float units), per output channel row."""
    w = np.abs(np.asarray(syn.weight, np.float64))
    per_row = w.reshape(w.shape[0], -1).sum(axis=1) * _max_source(graph, syn.inputs[0], opts)
    if syn.bias is not None:
        per_row = per_row + np.abs(syn.bias)
    return per_row


def _quantize_weights(name: str, w_eff: np.ndarray, t: Target, rep: LayerQuant
                      ) -> tuple[np.ndarray, int]:
    """Integers and exponent with w_int * 2^(e + act_shift) ~ w_eff, in Lava's weight forms:
    [0, max], [-max, 0], or even values in [-(max + 1), max - 1] (max = 2^weight_bits - 1)."""
    w = t.widths
    if not np.all(np.isfinite(w_eff)):
        raise QuantizationError(f"synapse {name!r}: weights are not finite")
    peak = float(np.abs(w_eff).max(initial=0))
    if peak == 0:
        raise QuantizationError(f"synapse {name!r}: all weights are zero; remove the layer "
                                "or check the checkpoint")
    mixed = w_eff.min() < 0 < w_eff.max()
    top = w.weight_max
    levels = (top + 1) // 2 - 1 if mixed else top  # mixed sign: even values, 2 * levels
    step = 2 if mixed else 1
    e = math.ceil(math.log2(peak / ((1 << w.act_shift) * step * levels)))
    if e > w.weight_exp_max:
        raise QuantizationError(f"synapse {name!r}: weights up to {peak:.3g} need weight "
                                f"exponent {e}, beyond the target's {w.weight_exp_max}")
    e = max(e, w.weight_exp_min)
    unit = float(1 << w.act_shift) * 2.0 ** e
    w_int = (step * np.rint(w_eff / (unit * step))).astype(np.int64)
    w_int = np.clip(w_int, -top - 1 if mixed else (0 if w_eff.min() >= 0 else -top),
                    top - 1 if mixed else (top if w_eff.max() > 0 else 0))
    used = int(np.abs(w_int).max(initial=0))
    rep.weight_exp = e
    rep.weight_bits_used = (used // 2).bit_length() + 1 if mixed else used.bit_length()
    nonzero = w_eff != 0
    rep.zeroed_weights = float(np.mean(w_int[nonzero] == 0)) if nonzero.any() else 0.0
    if used < 16:
        rep.notes.append(f"uses only {used.bit_length()} weight bits (exponent at its minimum)")
    if rep.zeroed_weights > ZEROED_WARNING:
        rep.notes.append(f"{100 * rep.zeroed_weights:.0f}% of its nonzero weights round to "
                         f"zero: their dynamic range exceeds the target's {w.weight_bits} bits")
        log.warning("synapse %r: %s", name, rep.notes[-1])
    return w_int, e


def _bias(name: str, b: np.ndarray, t: Target, rep: LayerQuant) -> tuple[np.ndarray, int]:
    w = t.widths
    peak = float(np.abs(b).max(initial=0))
    exp = 0 if peak <= w.bias_mant_max else math.ceil(math.log2(peak / w.bias_mant_max))
    if exp > w.bias_exp_max:
        raise QuantizationError(f"layer {name!r}: bias up to {peak:.0f} v-units needs bias "
                                f"exponent {exp}, beyond the target's {w.bias_exp_max}")
    rep.bias_exp = exp
    mant = np.clip(np.rint(b / 2 ** exp), -w.bias_mant_max - 1, w.bias_mant_max)
    return mant.astype(np.int64), exp


def _scale_and_vth(name: str, threshold, tie: int, drive: np.ndarray,
                   t: Target) -> tuple[np.ndarray, int]:
    """Per-channel scale S with S * threshold = (vth << vth_shift) + tie, and the integer vth."""
    w = t.widths
    th = np.broadcast_to(np.asarray(threshold, np.float64), drive.shape)
    if np.any(th <= 0):
        raise QuantizationError(f"neuron {name!r}: threshold (minus reset value) must be > 0, "
                                f"got {float(th.min()):g}")
    # a = S * drive >> act_shift must fit the chip's synaptic input:
    # vth <= max * th / drive * 2^(act_shift - vth_shift).
    headroom = 2.0 ** (w.act_shift - w.vth_shift)
    limit = np.floor(w.synaptic_input_max * th / np.maximum(drive, 1e-30) * headroom).min()
    vth = int(min(DEFAULT_VTH, max(limit, 1), w.vth_max))
    return ((vth << w.vth_shift) + tie) / th, vth


# -- the rule of each float neuron type ---------------------------------------------------------

@dataclass(frozen=True)
class NeuronRule:
    """How one float neuron type is quantized. `scale(n, rows, drive, opts)` returns the
    per-channel scale and the integer vth (None for a readout); `emit(n, common, scale, vth,
    t)` builds the fixed-point node from the fields every neuron shares (`common`)."""

    gain: Callable[[Neuron], float]
    scale: Callable[[Neuron, int, np.ndarray, QuantizeOptions], tuple[np.ndarray, int | None]]
    emit: Callable[[Neuron, dict, np.ndarray, int | None, Target], Node]


def _tie(n: LIF | CLIF | CubaLIF) -> int:
    """1 when the trained model fires on >=: v > (vth << vth_shift) is then v >= S * th."""
    return 1 if n.compare == ">=" else 0


def _threshold_scale(n: LIF | CLIF | CubaLIF, th: np.ndarray, rows: int, drive: np.ndarray,
                     t: Target) -> tuple[np.ndarray, int]:
    th_rows = np.broadcast_to(th, (rows,)) if th.ndim <= 1 else None
    if th_rows is None:
        raise QuantizationError(f"neuron {n.name!r}: per-neuron thresholds are not "
                                "supported; use one per channel")
    return _scale_and_vth(n.name, th_rows, _tie(n), drive, t)


def _lif_scale(n: LIF, rows: int, drive: np.ndarray, opts: QuantizeOptions
               ) -> tuple[np.ndarray, int]:
    th = np.asarray(n.threshold, np.float64)
    if n.reset == "hard":
        th = th - n.v_reset
    return _threshold_scale(n, th, rows, drive * n.gain, opts.target)


def _clif_scale(n: CLIF, rows: int, drive: np.ndarray, opts: QuantizeOptions
                ) -> tuple[np.ndarray, int]:
    scale, vth = _threshold_scale(n, np.asarray(n.threshold, np.float64), rows, drive,
                                  opts.target)
    if np.ptp(scale) > 0:
        raise QuantizationError(f"CLIF {n.name!r} needs one scale for all channels")
    return scale, vth


def _current_du(n: CubaLIF, t: Target) -> int:
    w = t.widths
    return int(min(max(round(w.decay_unity * (1 - n.current_decay)) - 1, 0), w.decay_max))


def _cuba_scale(n: CubaLIF, rows: int, drive: np.ndarray, opts: QuantizeOptions
                ) -> tuple[np.ndarray, int]:
    w = opts.target.widths
    du = _current_du(n, opts.target)
    kept = 1.0 if du == w.decay_max else min(
        opts.timesteps, w.decay_unity / (du + 1))
    # S * drive * kept <= state_max, on top of the synaptic input's own limit
    factor = max(1.0, kept * (w.synaptic_input_max << w.act_shift) / w.state_max)
    return _threshold_scale(n, np.asarray(n.threshold, np.float64), rows, drive * factor,
                            opts.target)


def _readout_scale(n: Readout, rows: int, drive: np.ndarray, opts: QuantizeOptions
                   ) -> tuple[np.ndarray, None]:
    w = opts.target.widths
    peak = float(drive.max(initial=0)) or 1.0
    s = min(w.synaptic_input_max * (1 << w.act_shift) / peak,
            w.state_max / (opts.timesteps * peak))
    return np.full(rows, s / 2), None  # half: room for rounding and the bias


def _lif_node(n: LIF, common: dict, scale: np.ndarray, vth: int, t: Target) -> FxLIF:
    reset_sub = (vth << t.widths.vth_shift) + _tie(n)
    return FxLIF(vth=vth, reset=n.reset, reset_sub=reset_sub, **common)


def _cuba_node(n: CubaLIF, common: dict, scale: np.ndarray, vth: int, t: Target
               ) -> FxCubaLIF:
    return FxCubaLIF(vth=vth, du=_current_du(n, t), reset=n.reset, reset_delay=n.reset_delay,
                     reset_sub=(vth << t.widths.vth_shift) + _tie(n), **common)


def _clif_node(n: CLIF, common: dict, scale: np.ndarray, vth: int, t: Target) -> FxCLIF:
    w, s = t.widths, float(scale[0])
    z = np.arange(-SIG_RANGE * SIG_STEPS, SIG_RANGE * SIG_STEPS + 1) / SIG_STEPS
    sig_lut = np.rint(w.sigmoid_unity / (1 + np.exp(-z))).astype(np.int64)
    m = np.arange(M_ENTRIES) * (1 << M_SHIFT) / float(w.sigmoid_unity)
    reset_lut = np.rint(s / (1 + np.exp(-m))).astype(np.int64)
    sig_mult = int(round(SIG_STEPS * 2.0 ** SIG_SHIFT / (s * n.tau)))
    return FxCLIF(vth=vth, reset_sub=(vth << w.vth_shift) + _tie(n), sig_lut=sig_lut,
                  sig_mult=sig_mult, sig_shift=SIG_SHIFT, reset_lut=reset_lut,
                  m_shift=M_SHIFT, **common)


def _readout_node(n: Readout, common: dict, scale: np.ndarray, vth: None,
                  t: Target) -> FxReadout:
    return FxReadout(mean=n.mean, **common)


#: Float neuron type (exact) -> its quantization rule.
NEURON_RULES: dict[type[Neuron], NeuronRule] = {
    LIF: NeuronRule(lambda n: n.gain, _lif_scale, _lif_node),
    CLIF: NeuronRule(lambda n: 1.0, _clif_scale, _clif_node),
    CubaLIF: NeuronRule(lambda n: 1.0, _cuba_scale, _cuba_node),
    Readout: NeuronRule(lambda n: 1.0, _readout_scale, _readout_node),
}

#: Node types quantize folds into the neurons' rules (their synapses and sums) or turns into
#: the graph input; with NEURON_RULES, every type it accepts.
_OTHER_TYPES = (Input, Conv2d, Dense, Add)
#: Types the folding passes remove: refused with that advice.
_FOLDED_TYPES = (BatchNorm, AvgPool2d, Flatten)


def supported_types() -> list[str]:
    return [t.__name__ for t in (*_OTHER_TYPES, *NEURON_RULES)]


def _check_type(node: Node) -> None:
    if type(node) in NEURON_RULES or type(node) in _OTHER_TYPES:
        return
    if type(node) in _FOLDED_TYPES:
        raise QuantizationError(f"node {node.name!r} ({node.op}) has no fixed-point form on the "
                                "chip; fold it first (BatchNorm, AvgPool2d, Flatten)")
    raise UnsupportedNodeError(node.name, node.op, "quantize", supported_types())


def quantize(graph: Graph, opts: QuantizeOptions | None = None) -> PassResult:
    """Turn a folded float graph into fixed-point nodes. The result's `report` is the
    per-layer record (exponents, bits, errors: name -> LayerQuant) for reports."""
    opts = opts or QuantizeOptions()
    t = opts.target
    reports: dict[str, LayerQuant] = {}
    new: list[Node] = []
    users: dict[str, set[str]] = {}
    for n in graph:
        if isinstance(n, Neuron):
            for syn in _terms(graph, n.inputs[0], n.name):
                users.setdefault(syn.name, set()).add(n.name)
            if isinstance(graph[n.inputs[0]], Add):
                users.setdefault(n.inputs[0], set()).add(n.name)
    for node in graph:
        _check_type(node)
        if type(node) is Input and node.encoding == "spikes":
            new.append(FxInput(name=node.name, shape=node.shape, bits=1, scale=1.0,
                               encoding="spikes"))
        elif type(node) is Input:
            new.append(FxInput(name=node.name, shape=node.shape,
                               bits=t.widths.graded_input_bits, signed=opts.input_signed,
                               scale=sent_scale(node, opts, t)))
        elif type(node) in NEURON_RULES:
            new.extend(_quantize_neuron(graph, node, opts, users, reports))
    out = Graph.build(new, graph.outputs)
    notes = [f"{r.name}: {r.kind} " + ", ".join(
        f"{k}={v}" for k, v in vars(r).items()
        if k in ("weight_exp", "vth", "dv", "bias_exp") and v is not None)
        for r in reports.values()]
    return PassResult(out, True, notes, report=reports)


def _quantize_neuron(graph: Graph, n: Neuron, opts: QuantizeOptions, users: dict[str, set],
                     reports: dict[str, LayerQuant]) -> list[Node]:
    t = opts.target
    rule = NEURON_RULES[type(n)]
    terms = _terms(graph, n.inputs[0], n.name)
    rows = n.type.shape[0]
    drive = sum(_drive(graph, s, opts) for s in terms)
    gain = rule.gain(n)
    rep = LayerQuant(n.name, n.op)
    scale, vth = rule.scale(n, rows, drive, opts)
    rep.scale, rep.vth = float(scale.max()), vth
    rep.dv = int(round(t.widths.decay_unity * (1 - n.decay)))
    out: list[Node] = []
    syn_names = []
    bias = np.zeros(rows)
    unit = float(1 << t.widths.act_shift)
    for syn in dict.fromkeys(terms):  # a synapse summed twice is one synapse counted twice
        src = graph[syn.inputs[0]]
        in_scale = sent_scale(src, opts, t)
        row_scale = (scale * gain / in_scale).reshape((-1,) + (1,) * (syn.weight.ndim - 1))
        name = syn.name if len(users[syn.name]) == 1 else f"{syn.name}@{n.name}"
        srep = LayerQuant(name, syn.op)
        w_int, e = _quantize_weights(name, row_scale * syn.weight, t, srep)
        back = w_int * unit * 2.0 ** e / row_scale
        srep.max_weight_error = float(np.abs(back - syn.weight).max())
        reports[name] = srep
        cls = FxConv2d if isinstance(syn, Conv2d) else FxDense
        extra = {"stride": syn.stride, "padding": syn.padding} if cls is FxConv2d else {}
        out.append(cls(name=name, inputs=syn.inputs, weight=w_int, weight_exp=e, **extra))
        syn_names.append(name)
        if syn.bias is not None:
            bias = bias + syn.bias
    counts = [terms.count(syn) for syn in dict.fromkeys(terms)]
    if any(c > 1 for c in counts):
        raise QuantizationError(f"neuron {n.name!r} sums the same synapse more than once")
    if len(syn_names) > 1:
        top = n.inputs[0]
        add_name = top if len(users.get(top, ())) == 1 else f"{top}@{n.name}"
        out.append(Add(name=add_name, inputs=tuple(syn_names)))
        source = add_name
    else:
        source = syn_names[0]
    mant, bexp = _bias(n.name, scale * gain * bias, t, rep)
    if not np.any(mant):
        mant = 0
    common = {"name": n.name, "inputs": (source,), "dv": rep.dv, "bias_mant": mant,
              "bias_exp": bexp, "scale": float(scale.max())}
    out.append(rule.emit(n, common, scale, vth, t))
    reports[n.name] = rep
    return out


def sent_scale(src: Node, opts: QuantizeOptions, t: Target) -> float:
    """Integer units per float unit of what `src` sends to the synapses reading it: 1 for
    spikes, the graded payload's scale for the analog input (the FxInput's `scale`)."""
    if isinstance(src, Input) and src.encoding != "spikes":
        bits = t.widths.graded_input_bits
        levels = (2 ** (bits - 1) - 1) if opts.input_signed else (2 ** bits - 1)
        return levels / opts.input_max
    return 1.0
