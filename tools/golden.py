"""Golden vectors: a few inputs and the reference simulator's answers, stored in the artifact.

`snnc compile` runs the reference simulator on the first few check inputs and stores
them with every spiking layer's spikes and every readout's final value. An environment
without the compiler (Lava on Python 3.10, later a chip) checks itself against them with
`snnc check MODEL.snnc --data golden`: no torch, no model source, no dataset.

Names in `Artifact.golden`:

- `inputs`: `[G, *input_shape]` (or `[T, G, *input_shape]` for a sequence input);
- `spikes/<layer>`: bool `[T, G, *shape]`, each layer in its own T-step window;
- `readout/<layer>`: float64 `[G, *shape]`, as `SimResult.readout`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from snnc.backends.refsim import SimResult, simulate
from snnc.compare import diff
from snnc.errors import SnncError
from snnc.ir import Graph

GOLDEN_SAMPLES = 4


def make_golden(graph: Graph, inputs: np.ndarray, timesteps: int,
                samples: int = GOLDEN_SAMPLES) -> dict[str, np.ndarray]:
    """Golden vectors for the first `samples` of `inputs` ([N, ...] or [T, N, ...])."""
    (inp,) = graph.inputs
    sequence = inputs.ndim == len(graph[inp].type.shape) + 2
    x = np.asarray(inputs[:, :samples] if sequence else inputs[:samples], np.float64)
    result = simulate(graph, x, timesteps)
    return {"inputs": x,
            **{f"spikes/{k}": v.astype(bool) for k, v in result.spikes.items()},
            **{f"readout/{k}": np.asarray(v, np.float64) for k, v in result.readout.items()}}


def golden_expected(golden: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(inputs, expected) from stored golden vectors; `expected` maps each layer to spikes
    `[T, G, ...]` or a readout `[1, G, ...]` (a step axis, so that both compare alike)."""
    if "inputs" not in golden:
        raise SnncError("the artifact holds no golden vectors (compiled before they existed, "
                        "or written without them); recompile it, or use --data digits|random|"
                        "FILE.npz")
    expected = {}
    for key, value in golden.items():
        kind, _, layer = key.partition("/")
        if kind == "spikes":
            expected[layer] = np.asarray(value)
        elif kind == "readout":
            expected[layer] = np.asarray(value)[None]
    return np.asarray(golden["inputs"]), expected


def result_values(result: SimResult) -> dict[str, np.ndarray]:
    """A simulation's per-layer values in the golden layout: spikes `[T, B, ...]`, readouts
    `[1, B, ...]`."""
    return {**result.spikes, **{k: np.asarray(v)[None] for k, v in result.readout.items()}}


@dataclass
class Comparison:
    """Per-layer mismatch counts between a backend's values and a reference's."""

    reference: str
    samples: int
    layers: dict[str, int] = field(default_factory=dict)
    compared: dict[str, int] = field(default_factory=dict)
    #: the first mismatch: layer (graph order), then step, then sample
    first: dict | None = None
    #: each layer's first mismatch (step, then sample, then neuron), for `merge`
    firsts: dict[str, dict] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.layers.values())

    def merge(self, other: Comparison) -> Comparison:
        """The comparison of both batches (sample indices as recorded: give each batch's
        `sample_offset` to `compare`): counts added, the first mismatch the earliest of both.
        Equal to one comparison of the joined batches."""
        if other.reference != self.reference:
            raise SnncError(f"cannot merge comparisons against {self.reference!r} and "
                            f"{other.reference!r}")
        names = [*self.compared, *(k for k in other.compared if k not in self.compared)]
        out = Comparison(self.reference, self.samples + other.samples)
        for name in names:
            out.compared[name] = self.compared.get(name, 0) + other.compared.get(name, 0)
            out.layers[name] = self.layers.get(name, 0) + other.layers.get(name, 0)
            mine, theirs = self.firsts.get(name), other.firsts.get(name)
            if mine is not None or theirs is not None:
                out.firsts[name] = min((f for f in (mine, theirs) if f is not None),
                                       key=_first_key)
        out.first = next((out.firsts[n] for n in names if n in out.firsts), None)
        return out

    def to_json(self) -> dict:
        return {"reference": self.reference, "samples": self.samples,
                "total_mismatches": self.total, "layers": dict(self.layers),
                "compared": dict(self.compared), "first_mismatch": self.first}


def compare(got: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray], *,
            reference: str, order: list[str], step_offset: Mapping[str, int] | None = None,
            rtol: float = 0.0, sample_offset: int = 0) -> Comparison:
    """Compare `[steps, batch, ...]` arrays layer by layer (layers named in `expected`, in
    `order`). A layer missing from `got`, or shaped differently, counts every value as a
    mismatch. `step_offset` shifts the reported step (hardware timing: a layer's depth).
    `rtol` > 0 compares float values (a float readout's v) to that relative tolerance;
    spikes (bool or integer) are always compared exactly. `sample_offset` is added to the
    reported sample (the batch's first sample in the whole data, for `Comparison.merge`)."""
    layers = [n for n in order if n in expected]
    batch = next(iter(expected.values())).shape[1] if expected else 0
    out = Comparison(reference, batch)
    for name in layers:
        d = diff(got.get(name), expected[name], rtol=rtol)
        out.compared[name], out.layers[name] = d.compared, d.mismatches
        if not d.comparable:
            shape = None if d.missing else list(d.shape)
            out.firsts[name] = {"layer": name, "detail": f"the backend gave shape {shape}, "
                                f"expected {list(np.shape(expected[name]))}"}
        elif d.index is not None:
            step, sample, *neuron = d.index
            out.firsts[name] = {"layer": name, "sample": sample + sample_offset,
                                "step": step - (step_offset or {}).get(name, 0),
                                "neuron": neuron, "backend": d.got, "reference": d.expected}
        else:
            continue
        out.first = out.first or out.firsts[name]
    return out


def _first_key(first: dict) -> tuple:
    """Order of first mismatches within a layer: a shape mismatch (no sample) first, then
    step, sample and neuron, as `np.argwhere` finds them."""
    if "sample" not in first:
        return (0,)
    return (1, first["step"], first["sample"], first["neuron"])
