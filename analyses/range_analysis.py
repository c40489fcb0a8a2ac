"""Range analysis: bound every fixed-point neuron's synaptic input, u and v, and say where the
target's words can overflow.

Bounds are worst cases from the integer weights, fan-in, input limits and thresholds, over
`timesteps` steps:

    a (synaptic input) in [sum of negative W*x_max, sum of positive W*x_max] << weight_exp,
        summed over the synapses into the layer; x_max is 1 for spikes, the graded limits
        for the input layer;
    u = a << 6 (no current state): Lava and the chip wrap u at 24 bits;
    v: hard reset keeps v <= 64*vth between steps, so v <= 64*vth + u_hi + bias_hi when it is
       compared; a soft reset (or CLIF) subtracts one threshold per step, so v can climb by
       u_hi + bias_hi - threshold each step; below, v sinks by at most u_lo + bias_lo per step
       (less with leak). v is clipped at +-(2^23 - 1).

The chip's synaptic input is 16 bits; Lava's simulator does not wrap it, so an overflow there
changes the chip's result but not Lava's: the two are reported separately.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.ir import FxCLIF, FxConv2d, FxDense, FxInput, FxLIF, FxNeuron, FxReadout, Graph
from snnc.targets import LOIHI2, Target


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


def _input_limits(graph: Graph, src: str) -> tuple[int, int]:
    node = graph[src]
    return node.limits if isinstance(node, FxInput) else (0, 1)


def _synapse_bounds(graph: Graph, syn) -> tuple[np.ndarray, np.ndarray]:
    lo_x, hi_x = _input_limits(graph, syn.inputs[0])
    w = syn.weight.reshape(syn.weight.shape[0], -1).astype(np.int64)
    hi = np.where(w > 0, w * hi_x, w * lo_x).sum(axis=1)
    lo = np.where(w > 0, w * lo_x, w * hi_x).sum(axis=1)
    e = syn.weight_exp
    return (lo << e, hi << e) if e >= 0 else (lo >> -e, hi >> -e)


def analyze_ranges(graph: Graph, timesteps: int, target: Target = LOIHI2) -> list[LayerRange]:
    limit = target.state_max
    rows = []
    for n in graph:
        if not isinstance(n, FxNeuron):
            continue
        bounds = [_synapse_bounds(graph, s) for s in graph.sum_terms(n.inputs[0])
                  if isinstance(s, FxConv2d | FxDense)]
        a_lo = int(sum(b[0] for b in bounds).min(initial=0)) if bounds else 0
        a_hi = int(sum(b[1] for b in bounds).max(initial=0)) if bounds else 0
        u_lo, u_hi = a_lo << 6, a_hi << 6
        bias = np.asarray(n.bias_mant, np.int64) << n.bias_exp
        b_lo, b_hi = int(bias.min(initial=0)), int(bias.max(initial=0))
        leak = n.dv / 4096
        sink = (u_lo + b_lo) * (timesteps if leak == 0 else min(timesteps, 1 / leak))
        if isinstance(n, FxReadout):
            rise = (u_hi + b_hi) * (timesteps if leak == 0 else min(timesteps, 1 / leak))
            v = (int(min(sink, 0)), int(max(rise, 0)))
        else:
            theta = n.vth << 6
            if isinstance(n, FxLIF) and n.reset == "hard":
                top = theta + u_hi + b_hi
            else:
                top = theta + max(u_hi + b_hi - n.reset_sub, 0) * timesteps + u_hi + b_hi
            v = (int(min(sink, 0)), int(top))
        row = LayerRange(n.name, (a_lo, a_hi), (u_lo, u_hi), v)
        if a_lo < -target.synaptic_input_max - 1 or a_hi > target.synaptic_input_max:
            row.chip_overflow.append(f"synaptic input [{a_lo}, {a_hi}] exceeds "
                                     f"{target.synaptic_input_bits} bits")
        if u_hi > 1 << 23 or u_lo <= -(1 << 23):
            msg = f"u = a << 6 in [{u_lo}, {u_hi}] wraps at 24 bits"
            row.chip_overflow.append(msg)
            row.lava_overflow.append(msg)
        if v[1] > limit or v[0] < -limit:
            msg = f"v in [{v[0]}, {v[1]}] can clip at +-(2^23 - 1)"
            row.chip_overflow.append(msg)
            row.lava_overflow.append(msg)
        if isinstance(n, FxCLIF) and int(n.reset_lut.max()) + n.reset_sub > limit:
            row.lava_overflow.append("CLIF reset amount exceeds 24 bits")
        rows.append(row)
    return rows
