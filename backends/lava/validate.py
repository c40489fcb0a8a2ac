"""Check a fixed-point graph against the widths Lava's fixed_pt models accept, before building.

A Lava run whose integers are out of range or of the wrong type does not always raise: the
error happens inside a worker process and the run can hang, or a value is silently clipped,
truncated or wrapped. `Graph.build` checks the IR's own widths, but a node can bypass it
(edited in place, or an artifact written by another tool), so `run_fixed` checks again here,
against the widths in lava-nc 0.10's source, and names every offending layer, field, value
and accepted range:

- Dense (`PyDenseModelBitAcc`): weights clipped to 8 bits by `clip_weights`, then for mixed
  signs the LSB dropped by `truncate_weights` (`num_weight_bits=8`), with the sign mode taken
  from the weights (`determine_sign_mode`): only [0, 255], [-255, 0] or even values in
  [-256, 254] pass unchanged; weight_exp is an integer (a float breaks `np.left_shift` in
  the worker), in the chip's range (targets.LOIHI2; Lava's Python model takes any).
- LIF (`AbstractPyLifModelFixed`, `PyLifModelBitAcc`): du, dv 12-bit unsigned; vth 17-bit
  unsigned; bias_mant 13-bit signed; bias_exp 3-bit unsigned; u and v 24-bit, so reset_sub
  and the CLIF reset table fit in 23 bits.
- DelayDense (`PyDelayDenseModelBitAcc`): delays of at most 63 steps (Loihi 2's 6 bits); a
  larger one raises inside the worker.
- Graded input (`GradedSource`): payloads of at most 24 bits.
"""

from __future__ import annotations

import numpy as np

from snnc.analyses.timing import is_synapse, schedule
from snnc.errors import SnncError
from snnc.ir import Add, FxCLIF, FxConv2d, FxDense, FxInput, FxLIF, FxReadout, Graph, Node
from snnc.targets import LOIHI2

MAX_DELAY = 63
MAX23 = (1 << 23) - 1
DECAY = (0, LOIHI2.decay_unity - 1)
VTH = (0, LOIHI2.vth_max)
BIAS_MANT = (-LOIHI2.bias_mant_max - 1, LOIHI2.bias_mant_max)
BIAS_EXP = (0, LOIHI2.bias_exp_max)
WEIGHT_EXP = (LOIHI2.weight_exp_min, LOIHI2.weight_exp_max)


class LavaBuildError(SnncError):
    """The graph cannot be lowered to Lava. `problems` lists every reason, one per field."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


def validate_for_lava(graph: Graph) -> None:
    """Raise LavaBuildError naming every field Lava fixed_pt would not run as the reference
    simulator does (see the module docstring for the widths and where they come from)."""
    problems: list[str] = []
    for node in graph:
        check = _CHECKS.get(type(node))
        if check is None:
            problems.append(f"layer {node.name!r} ({node.op}) is not a fixed-point node; "
                            "run_fixed runs quantized graphs (float graphs run with run_float)")
            continue
        problems += [f"layer {node.name!r} ({node.op}): {p}" for p in check(node)]
    if not problems:
        problems = delay_problems(graph, synapse_delays(graph, schedule(graph).delays))
    if problems:
        raise LavaBuildError("the graph cannot run on Lava fixed_pt: " + "; ".join(problems),
                             problems)


def synapse_delays(graph: Graph, delays: dict[tuple[str, str], int]) -> dict[str, int]:
    """Each synapse's extra delay to the neuron it feeds: the schedule's delays on the edges
    from it, through any Adds, to the neuron. On Lava the Adds are only the summing at the
    neuron's port, so the whole delay is the synapse's (one DelayDense)."""
    readers = graph.consumers()

    def after(name: str) -> int:
        totals = {delays.get((name, c), 0) + (after(c) if isinstance(graph[c], Add) else 0)
                  for c in readers[name]}
        if len(totals) > 1:
            raise LavaBuildError(f"layer {name!r} ({graph[name].op}) reaches {readers[name]} "
                                 f"with different delays {sorted(totals)}; on Lava one synapse "
                                 "carries one delay")
        return totals.pop() if totals else 0

    return {node.name: after(node.name) for node in graph if is_synapse(node)}


def delay_problems(graph: Graph, delays: dict[str, int]) -> list[str]:
    return [f"layer {name!r} ({graph[name].op}): delay {steps} to its neuron is outside "
            f"Lava's DelayDense range [0, {MAX_DELAY}]"
            for name, steps in delays.items() if steps > MAX_DELAY]


def _integer(node: Node, field: str, lo: int, hi: int, where: str = "Lava's range") -> list[str]:
    """An integer scalar (Python or numpy, not bool) or an integer array, within [lo, hi]."""
    value = getattr(node, field)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iu":
            return [f"{field} is an array of {value.dtype}; expected integers in [{lo}, {hi}]"]
        if value.size == 0:
            return [f"{field} is an empty array; expected integers in [{lo}, {hi}]"]
        vmin, vmax = int(value.min()), int(value.max())
        if vmin < lo or vmax > hi:
            return [f"{field} = array in [{vmin}, {vmax}] is outside {where} [{lo}, {hi}]"]
        return []
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        return [f"{field} = {value!r} ({type(value).__name__}) is not an integer; expected "
                f"an integer in [{lo}, {hi}]"]
    if not lo <= value <= hi:
        return [f"{field} = {value!r} is outside {where} [{lo}, {hi}]"]
    return []


def _weights(node: Node) -> list[str]:
    w = node.weight
    if not isinstance(w, np.ndarray) or w.dtype.kind not in "iu":
        kind = w.dtype if isinstance(w, np.ndarray) else type(w).__name__
        return [f"weight is {kind}; expected an integer array of 8-bit Loihi weights"]
    lo, hi = int(w.min(initial=0)), int(w.max(initial=0))
    if lo >= 0:
        ok, accepted = hi <= 255, "[0, 255] (excitatory)"
    elif hi <= 0:
        ok, accepted = lo >= -255, "[-255, 0] (inhibitory)"
    else:
        ok, accepted = lo >= -256 and hi <= 254 and not np.any(w % 2), \
            "even values in [-256, 254] (mixed sign: Lava drops the LSB)"
    problems = [] if ok else [f"weight = array in [{lo}, {hi}] is not what Lava's 8-bit Dense "
                              f"keeps unchanged: {accepted}"]
    if node.bias is not None:
        problems.append("bias is set; fixed-point synapses carry no bias (it lives in the "
                        "neuron's bias_mant)")
    # Lava's Python model shifts by any integer; the chip's exponent field is narrower.
    return problems + _integer(node, "weight_exp", *WEIGHT_EXP, where="the Loihi 2 range")


def _neuron(node: Node) -> list[str]:
    return (_integer(node, "dv", *DECAY) + _integer(node, "bias_mant", *BIAS_MANT)
            + _integer(node, "bias_exp", *BIAS_EXP))


def _lif(node: FxLIF) -> list[str]:
    problems = _neuron(node) + _integer(node, "du", *DECAY) + _integer(node, "vth", *VTH)
    problems += _integer(node, "reset_sub", 0, MAX23)
    if node.reset not in ("hard", "soft"):
        problems.append(f"reset = {node.reset!r}; expected 'hard' or 'soft'")
    return problems


def _clif(node: FxCLIF) -> list[str]:
    problems = _neuron(node) + _integer(node, "vth", *VTH) + _integer(node, "reset_sub", 0, MAX23)
    problems += _integer(node, "sig_lut", 0, 1 << LOIHI2.sigmoid_frac_bits)
    problems += _integer(node, "reset_lut", 0, MAX23)
    problems += _integer(node, "sig_mult", 0, (1 << 40) - 1)  # |H| < 2^23: H * sig_mult < 2^63
    problems += _integer(node, "sig_shift", 1, 62)
    problems += _integer(node, "m_shift", 0, 24)
    for table in ("sig_lut", "reset_lut"):
        value = getattr(node, table)
        if isinstance(value, np.ndarray) and value.ndim != 1:
            problems.append(f"{table} has shape {value.shape}; lookup tables are 1-D")
    return problems


def _input(node: FxInput) -> list[str]:
    problems = _integer(node, "bits", 1, 24)
    if not isinstance(node.scale, float) or not np.isfinite(node.scale) or node.scale <= 0:
        problems.append(f"scale = {node.scale!r}; expected a positive finite float")
    return problems


_CHECKS = {FxInput: _input, FxConv2d: _weights, FxDense: _weights, FxLIF: _lif,
           FxCLIF: _clif, FxReadout: _neuron, Add: lambda node: []}
