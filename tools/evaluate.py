"""Float versus fixed point on data: accuracy of each, and spike agreement per layer.

Works on an artifact alone (its `reference` float graph and its fixed-point `graph`), so it
needs neither torch nor the model's source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.backends.refsim import SimResult, simulate
from snnc.errors import SnncError
from snnc.ir import Graph, Neuron


@dataclass
class Evaluation:
    samples: int
    float_accuracy: float
    fixed_accuracy: float
    #: neuron layer -> fraction of (step, sample, neuron) spikes that agree
    agreement: dict[str, float] = field(default_factory=dict)

    @property
    def delta_points(self) -> float:
        """Accuracy lost by quantization, in percentage points (positive = worse)."""
        return 100.0 * (self.float_accuracy - self.fixed_accuracy)


def predictions(graph: Graph, result: SimResult) -> np.ndarray:
    """Class per sample: the readout's argmax, or the most active output neuron."""
    (out,) = graph.outputs if len(graph.outputs) == 1 else (None,)
    if out is None:
        raise SnncError(f"accuracy needs one output; the graph has {list(graph.outputs)}")
    node = graph[out]
    value = result.readout[out] if not (isinstance(node, Neuron) and node.spiking) \
        else result.spikes[out].sum(axis=0)
    return value.reshape(value.shape[0], -1).argmax(axis=1)


def evaluate(fixed: Graph, reference: Graph, x: np.ndarray, y: np.ndarray, timesteps: int,
             batch: int = 128) -> Evaluation:
    """Run both graphs on `x` (in batches) and compare."""
    correct = {"float": 0, "fixed": 0}
    agree: dict[str, int] = {}
    total: dict[str, int] = {}
    for start in range(0, len(y), batch):
        xb, yb = x[start:start + batch], y[start:start + batch]
        runs = {"float": (reference, simulate(reference, xb, timesteps)),
                "fixed": (fixed, simulate(fixed, xb, timesteps))}
        for key, (graph, res) in runs.items():
            correct[key] += int((predictions(graph, res) == yb).sum())
        f, q = runs["float"][1].spikes, runs["fixed"][1].spikes
        for layer in f.keys() & q.keys():
            agree[layer] = agree.get(layer, 0) + int((f[layer] == q[layer]).sum())
            total[layer] = total.get(layer, 0) + f[layer].size
    n = len(y)
    order = [name for name in fixed.nodes if name in agree]
    return Evaluation(n, correct["float"] / n, correct["fixed"] / n,
                      {k: agree[k] / total[k] for k in order})
