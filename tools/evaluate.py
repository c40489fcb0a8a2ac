"""Float versus fixed point on data: accuracy of each, spike rates and agreement per layer.

One place runs the reference simulator on a batch and counts (`count_batch`); `snnc check`'s
accuracy rung and `evaluate` both add up its `Counts`. Counts are sums (never fractions),
so batches, or the halves of a sharded run, add up to the same figures as one run.

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


@dataclass
class Counts:
    """What a batch of the float and fixed-point runs adds up to. Keys of `correct`, `spikes`
    and `values`: "fixed" (the graph that runs; the float graph of a float artifact) and
    "float" (the float reference graph, when there is one)."""

    samples: int = 0
    #: graph -> correctly classified samples (labelled data only)
    correct: dict[str, int] = field(default_factory=dict)
    #: graph -> spiking layer -> spikes over every (step, sample, neuron)
    spikes: dict[str, dict[str, int]] = field(default_factory=dict)
    #: graph -> spiking layer -> (step, sample, neuron) values counted
    values: dict[str, dict[str, int]] = field(default_factory=dict)
    #: spiking layer -> values where the float and fixed runs agree
    agree: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: Counts) -> Counts:
        def add(a: dict, b: dict) -> dict:
            out = dict(a)
            for k, v in b.items():
                out[k] = add(out.get(k, {}), v) if isinstance(v, dict) else out.get(k, 0) + v
            return out

        return Counts(self.samples + other.samples, add(self.correct, other.correct),
                      add(self.spikes, other.spikes), add(self.values, other.values),
                      add(self.agree, other.agree))

    def accuracy(self, graph: str) -> float | None:
        if graph not in self.correct or not self.samples:
            return None
        return self.correct[graph] / self.samples

    def rates(self, graph: str) -> dict[str, float]:
        """Spiking layer -> mean firing rate (spikes per neuron and step)."""
        return {k: s / self.values[graph][k] for k, s in self.spikes.get(graph, {}).items()}

    def agreement(self) -> dict[str, float]:
        """Spiking layer -> fraction of float and fixed spikes that agree."""
        return {k: n / self.values["fixed"][k] for k, n in self.agree.items()}


def predictions(graph: Graph, result: SimResult) -> np.ndarray:
    """Class per sample: the readout's argmax, or the most active output neuron."""
    (out,) = graph.outputs if len(graph.outputs) == 1 else (None,)
    if out is None:
        raise SnncError(f"accuracy needs one output; the graph has {list(graph.outputs)}")
    node = graph[out]
    value = result.readout[out] if not (isinstance(node, Neuron) and node.spiking) \
        else result.spikes[out].sum(axis=0)
    return value.reshape(value.shape[0], -1).argmax(axis=1)


def count_batch(graphs: dict[str, Graph], x: np.ndarray, y: np.ndarray | None,
                timesteps: int) -> tuple[Counts, dict[str, SimResult]]:
    """Run each graph ("fixed", and "float" when given) on one batch (`[N, ...]` or
    `[T, N, ...]`) with the reference simulator; count correct answers (if labelled), spikes
    and float-vs-fixed agreement. Returns the counts and the runs."""
    runs = {key: simulate(graph, x, timesteps) for key, graph in graphs.items()}
    fixed = graphs["fixed"]
    sequence = x.ndim == len(fixed[fixed.inputs[0]].type.shape) + 2
    counts = Counts(x.shape[1] if sequence else x.shape[0])
    for key, res in runs.items():
        if y is not None:
            counts.correct[key] = int((predictions(graphs[key], res) == y).sum())
        counts.spikes[key] = {k: int(v.sum()) for k, v in res.spikes.items()}
        counts.values[key] = {k: int(v.size) for k, v in res.spikes.items()}
    if "float" in runs:
        f = runs["float"].spikes
        counts.agree = {k: int((f[k] == v).sum()) for k, v in runs["fixed"].spikes.items()
                        if k in f}
    return counts, runs


def evaluate(fixed: Graph, reference: Graph, x: np.ndarray, y: np.ndarray, timesteps: int,
             batch: int = 128) -> Evaluation:
    """Run both graphs on `x` (`[N, ...]`, in batches) and compare."""
    total = Counts()
    for start in range(0, len(y), batch):
        counts, _ = count_batch({"fixed": fixed, "float": reference},
                                x[start:start + batch], y[start:start + batch], timesteps)
        total = total + counts
    return Evaluation(total.samples, total.accuracy("float"), total.accuracy("fixed"),
                      total.agreement())
