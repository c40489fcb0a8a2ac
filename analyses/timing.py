"""The chip's pipeline timing: one step of delay per synaptic hop, branches balanced.

Every synapse (Conv2d, Dense and their fixed-point forms) delivers at step t what it computed
at step t-1, as Lava's Dense and Conv do. A node's depth is the step at which it produces the
trained model's step 0:

    depth(Input) = 0;  depth(synapse) = depth(its input) + 1 (a split fan-in's FxMerge is
    one more synapse: its partial sums arrive one hop late, and the Add that meets them
    delays the other branches to match, as for a residual shortcut);
    depth(Add) = max over its inputs, each input delayed by the difference (balancing a
    residual shortcut against the longer branch);  other nodes: depth of their input.

A neuron starts at its depth: before it, its input carries no valid data, so it does not
update (its bias is held off). Running T + max depth steps and reading each layer in the
window [depth, depth + T) gives the trained model's T steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.ir import Conv2d, Dense, FxMerge, Graph, Input


@dataclass
class Schedule:
    depth: dict[str, int] = field(default_factory=dict)
    #: (source, consumer) -> extra steps of delay on that edge
    delays: dict[tuple[str, str], int] = field(default_factory=dict)

    @property
    def latency(self) -> int:
        """Steps from an input frame to the deepest node's output for it."""
        return max(self.depth.values(), default=0)


def is_synapse(node) -> bool:
    return isinstance(node, Conv2d | Dense | FxMerge)


def schedule(graph: Graph) -> Schedule:
    s = Schedule()
    for name, node in graph.nodes.items():
        if isinstance(node, Input):
            s.depth[name] = 0
        else:
            d = max(s.depth[i] for i in node.inputs)
            for i in node.inputs:
                if d > s.depth[i]:
                    s.delays[(i, name)] = d - s.depth[i]
            s.depth[name] = d + 1 if is_synapse(node) else d
    return s


def delay(x: np.ndarray, steps: int, total: int) -> np.ndarray:
    """`x` ([T or 1, batch, ...]) shifted later by `steps`, zeros before, `total` steps long.
    A time-constant value (leading axis 1) repeats from `steps` on."""
    if steps == 0 and x.shape[0] in (1, total):
        return x
    out = np.zeros((total,) + x.shape[1:], x.dtype)
    if x.shape[0] == 1:
        out[steps:] = x[0]
    else:
        n = min(x.shape[0], total - steps)
        out[steps:steps + n] = x[:n]
    return out
