"""Check a fixed-point graph against the widths Lava's fixed_pt models accept, before building.

A Lava run whose integers are out of range or of the wrong type does not always raise: the
error happens inside a worker process and the run can hang, or a value is silently clipped,
truncated or wrapped. `Graph.build` checks the IR's own widths, but a node can bypass it
(edited in place, or an artifact written by another tool), so `run_fixed` checks again here,
against the widths in lava-nc 0.10's source, and names every offending layer, field, value
and accepted range. The widths are the one table (`snnc.ir.widths`, through the target's
`widths`, Loihi 2 by default; `snnc.ir.fixed.width_problems` lists a node's fields outside
it); what this module adds per node type (`CHECKS`, by exact type) is what is not a width:

- Dense (`PyDenseModelBitAcc`): weights clipped to 8 bits by `clip_weights`, then for mixed
  signs the LSB dropped by `truncate_weights` (`num_weight_bits=8`), with the sign mode taken
  from the weights (`determine_sign_mode`): only [0, 255], [-255, 0] or even values in
  [-256, 254] pass unchanged; weight_exp is an integer (a float breaks `np.left_shift` in
  the worker), in the chip's range (Lava's Python model takes any); no bias.
- LIF (`AbstractPyLifModelFixed`, `PyLifModelBitAcc`): du, dv 12-bit unsigned; vth 17-bit
  unsigned; bias_mant 13-bit signed; bias_exp 3-bit unsigned; u and v 24-bit, so reset_sub
  and the CLIF reset table fit in 23 bits; a reset Lava's model runs (hard or soft); CLIF
  lookup tables 1-D. CubaLIF (SnncNeuron's "cuba" kind): a reset of CUBA_RESETS and a
  boolean reset_delay.
- DelayDense (`PyDelayDenseModelBitAcc`): delays of at most 63 steps (Loihi 2's 6 bits); a
  larger one raises inside the worker.
- Graded input (`GradedSource`): payloads of at most 24 bits; a positive finite scale.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from snnc.analyses.timing import is_synapse, schedule
from snnc.errors import SnncError
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
    FxPartialSum,
    FxReadout,
    Graph,
    Node,
)
from snnc.ir.fixed import width_problems
from snnc.ir.neuron import CUBA_RESETS
from snnc.targets import LOIHI2, Target

MAX_DELAY = 63


class LavaBuildError(SnncError):
    """The graph cannot be lowered to Lava. `problems` lists every reason, one per field."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


def validate_for_lava(graph: Graph, target: Target = LOIHI2) -> None:
    """Raise LavaBuildError naming every field Lava fixed_pt would not run as the reference
    simulator does: outside the target's widths, or otherwise refused (`CHECKS`; see the
    module docstring for the widths and where they come from)."""
    problems: list[str] = []
    for node in graph:
        check = CHECKS.get(type(node))
        if check is None:
            supported = ", ".join(sorted(t.__name__ for t in CHECKS))
            problems.append(f"layer {node.name!r} ({node.op}) is not a fixed-point node "
                            f"run_fixed runs (supported types: {supported}); float graphs "
                            "run with run_float")
            continue
        found = width_problems(node, target.widths) + check(node)
        problems += [f"layer {node.name!r} ({node.op}): {p}" for p in found]
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


def _synapse(node: FxConv2d | FxDense) -> list[str]:
    if node.bias is not None:
        return ["bias is set; fixed-point synapses carry no bias (it lives in the neuron's "
                "bias_mant)"]
    return []


def _lif(node: FxLIF) -> list[str]:
    if node.reset not in ("hard", "soft"):
        return [f"reset = {node.reset!r}; expected 'hard' or 'soft'"]
    return []


def _cuba_lif(node: FxCubaLIF) -> list[str]:
    problems = []
    if node.reset not in CUBA_RESETS:
        problems.append(f"reset = {node.reset!r}; expected one of "
                        + ", ".join(map(repr, CUBA_RESETS)))
    if not isinstance(node.reset_delay, bool):
        problems.append(f"reset_delay = {node.reset_delay!r}; expected True or False")
    return problems


def _clif(node: FxCLIF) -> list[str]:
    return [f"{table} has shape {value.shape}; lookup tables are 1-D"
            for table in ("sig_lut", "reset_lut")
            if isinstance(value := getattr(node, table), np.ndarray) and value.ndim != 1]


def _input(node: FxInput) -> list[str]:
    if not isinstance(node.scale, float) or not np.isfinite(node.scale) or node.scale <= 0:
        return [f"scale = {node.scale!r}; expected a positive finite float"]
    return []


#: Fixed-point node type (exact) -> what Lava refuses in it besides its widths.
CHECKS: dict[type[Node], Callable[[Node], list[str]]] = {
    FxInput: _input, FxConv2d: _synapse, FxDense: _synapse, FxLIF: _lif, FxCLIF: _clif,
    FxCubaLIF: _cuba_lif,
    FxReadout: lambda node: [], Add: lambda node: [],
    # A split fan-in: routing, relays and the merge's exponent (a width) only.
    FxChannelSlice: lambda node: [], FxPartialSum: lambda node: [], FxMerge: lambda node: []}
