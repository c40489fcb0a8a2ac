"""Range analysis: bound every fixed-point neuron's synaptic input, u and v, and say where the
target's words can overflow.

Every width, shift and unit is the target's (`target.widths`, snnc/ir/widths.py). Bounds are
worst cases from the integer weights, fan-in, input limits and thresholds, over `timesteps`
steps (figures for Loihi 2: act_shift = vth_shift = 6, 24-bit u and v, decay unit 4096):

    a (synaptic input) in [sum of negative W*x_max, sum of positive W*x_max] << weight_exp,
        summed over the synapses into the layer; x_max is 1 for spikes, the graded limits
        for the input layer; computed in Python integers, so no exponent wraps it;
    u = a << 6 without current state (du = 4095); with it, u keeps (4095 - du) / 4096 of
       itself a step, so |u| <= |a << 6| * min(T, 4096 / (du + 1)); Lava and the chip wrap u
       at 24 bits;
    v: hard reset keeps v <= 64*vth between steps, so v <= 64*vth + u_hi + bias_hi when it is
       compared; a soft reset (or CLIF) subtracts one threshold per step, so v can climb by
       u_hi + bias_hi - threshold each step; below, v sinks by at most u_lo + bias_lo per step
       (less with leak). v is clipped at +-(2^23 - 1).
    CubaLIF (snnTorch's reset rule, its u bounded as above): "subtract" climbs as a soft
       reset, plus one reset_sub when the reset is paid at once (a step that owes a reset
       and does not fire keeps h <= 64*vth + reset_sub), and sinks by one reset_sub more;
       "zero"/"zero_all" keep v <= 64*vth + u_hi + bias_hi when delayed, twice 64*vth more
       when not (h * (1 - s + r) doubles h <= 64*vth); "none" integrates like a readout.

Each fixed-point neuron type has its rule (`RULES`, by exact type); a type without one is
refused. Every integer field of the layer's nodes (its synapses, their input, the neuron) is
also checked against the target's widths (`snnc.ir.fixed.width_problems`, the exponent
included): a field outside them is reported as a chip overflow of the layer (the Lava backend
refuses such a graph before it runs).

A split fan-in (passes/split_fan_in.py) is bounded as the synapse it replaces: its merge's
range is the sum of its partial sums' ranges, shifted once; each partial sum, a graded
payload, must also fit `message_bits` (signed) on the chip.

The chip's synaptic input is 16 bits; Lava's simulator does not wrap it, so an overflow there
changes the chip's result but not Lava's: the two are reported separately.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from snnc.errors import UnsupportedNodeError
from snnc.ir import (
    Add,
    FxChannelSlice,
    FxCLIF,
    FxConv2d,
    FxCubaLIF,
    FxDense,
    FxInput,
    FxLIF,
    FxMerge,
    FxNeuron,
    FxPartialSum,
    FxReadout,
    Graph,
)
from snnc.ir.fixed import width_problems
from snnc.ir.widths import Widths
from snnc.targets import LOIHI2, Target

#: Shifts beyond this many bits are taken as this many for the bounds: any int64 value is then
#: 0 or -1 (right) or overflows every word (left), and the field is reported out of range.
_SHIFT_LIMIT = 64


@dataclass
class LayerRange:
    name: str
    a: tuple[int, int]            # synaptic input bounds
    u: tuple[int, int]
    v: tuple[int, int]
    chip_overflow: list[str] = field(default_factory=list)   # what can wrap/clip on the chip
    lava_overflow: list[str] = field(default_factory=list)   # ... and in Lava's simulator

    @property
    def ok(self) -> bool:
        return not self.chip_overflow and not self.lava_overflow


@dataclass(frozen=True)
class Sums:
    """What a neuron's rule bounds v from: u and bias bounds, the steps, the widths."""

    u: tuple[int, int]
    bias: tuple[int, int]
    timesteps: int
    widths: Widths


def _input_limits(graph: Graph, src: str) -> tuple[int, int]:
    node = graph[src]
    if isinstance(node, FxChannelSlice):
        node = graph[node.inputs[0]]
    return node.limits if isinstance(node, FxInput) else (0, 1)


def _synapse_bounds(graph: Graph, syn) -> tuple[np.ndarray, np.ndarray]:
    """Per output row, [lo, hi] of the synapse's output, as arrays of Python integers."""
    if isinstance(syn, FxMerge):  # the sum of its partial sums' bounds, shifted once
        parts = [_synapse_bounds(graph, graph[graph[r].inputs[0]]) for r in syn.inputs]
        return (_shift(sum(p[0] for p in parts), syn.weight_exp),
                _shift(sum(p[1] for p in parts), syn.weight_exp))
    lo_x, hi_x = _input_limits(graph, syn.inputs[0])
    w = syn.weight.reshape(syn.weight.shape[0], -1).astype(np.int64)
    hi = np.where(w > 0, w * hi_x, w * lo_x).sum(axis=1).astype(object)
    lo = np.where(w > 0, w * lo_x, w * hi_x).sum(axis=1).astype(object)
    return _shift(lo, syn.weight_exp), _shift(hi, syn.weight_exp)


def _steps_kept(decay: int, timesteps: int, w: Widths) -> float:
    """Bound on sum over k < T of ((unity - decay) / unity)^k: min(T, unity / decay)."""
    return timesteps if decay == 0 else min(timesteps, w.decay_unity / decay)


def _sink(n: FxNeuron, s: Sums) -> float:
    return (s.u[0] + s.bias[0]) * _steps_kept(n.dv, s.timesteps, s.widths)


def _soft_top(n: FxLIF | FxCLIF | FxCubaLIF, s: Sums) -> int:
    """One threshold (reset_sub) leaves per spike: v climbs by u_hi + b_hi - reset_sub a step."""
    rise = s.u[1] + s.bias[1]
    return (n.vth << s.widths.vth_shift) + max(rise - n.reset_sub, 0) * s.timesteps + rise


def _lif_v(n: FxLIF, s: Sums) -> tuple[int, int]:
    if n.reset == "hard":
        top = (n.vth << s.widths.vth_shift) + s.u[1] + s.bias[1]  # back to 0 past threshold
    elif n.reset == "soft":
        top = _soft_top(n, s)
    else:
        raise UnsupportedNodeError(n.name, f"FxLIF reset {n.reset!r}", "range analysis",
                                   ["FxLIF reset 'hard'", "FxLIF reset 'soft'"])
    return int(min(_sink(n, s), 0)), int(top)


def _clif_v(n: FxCLIF, s: Sums) -> tuple[int, int]:
    # The reset subtracts reset_sub plus a table value >= 0: at least what a soft reset does.
    return int(min(_sink(n, s), 0)), int(_soft_top(n, s))


def _cuba_v(n: FxCubaLIF, s: Sums) -> tuple[int, int]:
    theta = n.vth << s.widths.vth_shift
    rise = s.u[1] + s.bias[1]
    sink = min(_sink(n, s), 0)
    if n.reset == "subtract":
        top = _soft_top(n, s) + (0 if n.reset_delay else n.reset_sub)
        return int(sink - n.reset_sub), int(top)
    if n.reset in ("zero", "zero_all"):
        top = theta + max(rise, 0) + (0 if n.reset_delay else 2 * theta)
        return int(sink), int(top)
    return int(sink), int(max(rise * _steps_kept(n.dv, s.timesteps, s.widths), 0))


def _readout_v(n: FxReadout, s: Sums) -> tuple[int, int]:
    rise = (s.u[1] + s.bias[1]) * _steps_kept(n.dv, s.timesteps, s.widths)
    return int(min(_sink(n, s), 0)), int(max(rise, 0))


def _shift(x, e) -> object:
    """x << e (floor >> for e < 0) on Python integers, e clamped to +-_SHIFT_LIMIT."""
    e = max(-_SHIFT_LIMIT, min(int(e), _SHIFT_LIMIT))
    return x << e if e >= 0 else x >> -e


@dataclass(frozen=True)
class NeuronRule:
    """How range analysis reads one fixed-point neuron type: its current decay (decay_max
    when it keeps no current state) and its v bounds."""

    du: Callable[[FxNeuron, Widths], int]
    v: Callable[[FxNeuron, Sums], tuple[int, int]]


def _no_current(n: FxNeuron, w: Widths) -> int:
    return w.decay_max


#: Fixed-point neuron type (exact) -> its rule.
RULES: dict[type[FxNeuron], NeuronRule] = {
    FxLIF: NeuronRule(lambda n, w: n.du, _lif_v),
    FxCLIF: NeuronRule(_no_current, _clif_v),
    FxCubaLIF: NeuronRule(lambda n, w: n.du, _cuba_v),
    FxReadout: NeuronRule(_no_current, _readout_v),
}

#: The other node types of a fixed-point graph: read through the neurons' rules.
_OTHER_TYPES = (FxInput, FxConv2d, FxDense, Add, FxChannelSlice, FxPartialSum, FxMerge)


def _check_types(graph: Graph) -> None:
    supported = [t.__name__ for t in (*_OTHER_TYPES, *RULES)]
    for node in graph:
        if type(node) not in RULES and type(node) not in _OTHER_TYPES:
            raise UnsupportedNodeError(node.name, node.op, "range analysis", supported)


def _field_overflows(graph: Graph, n: FxNeuron, synapses: list, w: Widths) -> list[str]:
    """Fields of the layer's nodes (the neuron, its synapses, the input they read) outside
    the target's widths."""
    sources = [graph[s.inputs[0]] for s in synapses]
    sources = [graph[x.inputs[0]] if isinstance(x, FxChannelSlice) else x for x in sources]
    nodes = [n, *synapses, *(x for x in sources if isinstance(x, FxInput))]
    return [problem if node is n else f"{node.op} {node.name!r}: {problem}"
            for node in dict.fromkeys(nodes) for problem in width_problems(node, w)]


def analyze_ranges(graph: Graph, timesteps: int, target: Target = LOIHI2) -> list[LayerRange]:
    w = target.widths
    limit = w.state_max
    wrap = 1 << (w.state_bits - 1)
    _check_types(graph)
    rows = []
    for n in graph:
        if type(n) not in RULES:
            continue
        synapses = [s for s in graph.sum_terms(n.inputs[0])
                    if isinstance(s, FxConv2d | FxDense | FxMerge)]
        parts = [graph[graph[r].inputs[0]] for s in synapses if isinstance(s, FxMerge)
                 for r in s.inputs]
        bounds = [_synapse_bounds(graph, s) for s in synapses]
        a_lo = int(sum(b[0] for b in bounds).min(initial=0)) if bounds else 0
        a_hi = int(sum(b[1] for b in bounds).max(initial=0)) if bounds else 0
        rule = RULES[type(n)]
        u = (a_lo << w.act_shift, a_hi << w.act_shift)
        du = rule.du(n, w)
        if du < w.decay_max:  # current state: u keeps (unity - du - 1) / unity a step
            kept = _steps_kept(du + 1, timesteps, w)
            u = (math.floor(u[0] * kept), math.ceil(u[1] * kept))
        bias = _shift(np.atleast_1d(np.asarray(n.bias_mant, np.int64)).astype(object),
                      n.bias_exp)
        b = (int(bias.min(initial=0)), int(bias.max(initial=0)))
        v = rule.v(n, Sums(u, b, timesteps, w))
        row = LayerRange(n.name, (a_lo, a_hi), u, v)
        if a_lo < -w.synaptic_input_max - 1 or a_hi > w.synaptic_input_max:
            row.chip_overflow.append(f"synaptic input [{a_lo}, {a_hi}] exceeds "
                                     f"{w.synaptic_input_bits} bits")
        if u[1] > wrap or u[0] <= -wrap:
            what = f"u = a << {w.act_shift}" if du >= w.decay_max else "u (with current)"
            msg = f"{what} in [{u[0]}, {u[1]}] wraps at {w.state_bits} bits"
            row.chip_overflow.append(msg)
            row.lava_overflow.append(msg)
        if v[1] > limit or v[0] < -limit:
            msg = f"v in [{v[0]}, {v[1]}] can clip at +-(2^{w.state_bits - 1} - 1)"
            row.chip_overflow.append(msg)
            row.lava_overflow.append(msg)
        if isinstance(n, FxCLIF) and int(n.reset_lut.max()) + n.reset_sub > limit:
            row.lava_overflow.append(f"CLIF reset amount exceeds {w.state_bits} bits")
        payload = (1 << (w.message_bits - 1)) - 1
        for part in parts:
            lo, hi = _synapse_bounds(graph, part)
            p_lo, p_hi = int(lo.min(initial=0)), int(hi.max(initial=0))
            if p_lo < -payload or p_hi > payload:
                row.chip_overflow.append(f"partial sum {part.name!r} in [{p_lo}, {p_hi}] "
                                         f"exceeds the {w.message_bits}-bit graded payload")
        row.chip_overflow += _field_overflows(graph, n, synapses + parts, w)
        rows.append(row)
    return rows
