"""Value-by-value comparison of one layer's record, `[steps, batch, ...]`.

The one comparator behind every "do these agree" in snnc: a backend against the reference
simulator or the golden vectors (`snnc.tools.golden.compare`), a compiled graph against what
it came from (`compare_spikes`, into a `CompileCheck`: the torch model for a traced
checkpoint, the file's own equations for a NIR graph), and the pass runner's debug mode
(each pass against the graph before it, `snnc.tools.pass_runner`). Each caller words its own
report; what counts as a mismatch, and which one is first, is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.errors import SimulationInputError
from snnc.ir.printer import format_name


@dataclass(frozen=True)
class Diff:
    """One layer compared.

    compared:   values in the expected record.
    mismatches: values that differ; every value when `got` is missing or shaped differently.
    index:      the first mismatch in C order, `(step, sample, *neuron)`; None when none
                (or when the shapes differ).
    got, expected: the two values at `index`, as plain Python numbers.
    missing:    there was no `got` record at all.
    shape:      `got`'s shape when it is not the expected one.
    """

    compared: int
    mismatches: int
    index: tuple[int, ...] | None = None
    got: float | int | None = None
    expected: float | int | None = None
    missing: bool = False
    shape: tuple[int, ...] | None = None

    @property
    def comparable(self) -> bool:
        """Both records exist and have one shape, so that counts and `index` mean something."""
        return not self.missing and self.shape is None


def diff(got, expected, *, rtol: float = 0.0) -> Diff:
    """Compare `got` with `expected` value by value (`got` may be None: missing).

    Values are compared exactly (spikes, integers), unless `rtol` > 0 and both are floating
    point: then to that relative tolerance, with no absolute one (a float readout's v)."""
    want = np.asarray(expected)
    size = int(want.size)
    if got is None:
        return Diff(size, size, missing=True)
    if np.shape(got) != want.shape:
        return Diff(size, size, shape=tuple(np.shape(got)))
    have = np.asarray(got)
    if rtol and want.dtype.kind == "f" and have.dtype.kind == "f":
        bad = ~np.isclose(have, want, rtol=rtol, atol=0.0)
    else:
        bad = np.asarray(have != want)
    count = int(np.count_nonzero(bad))
    if not count:
        return Diff(size, 0)
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
    return Diff(size, count, index, _plain(have[index]), _plain(want[index]))


def _plain(value) -> float | int:
    value = np.asarray(value).item()
    return int(value) if isinstance(value, bool | int) else float(value)


@dataclass
class LayerAgreement:
    """One layer of a compile check: neuron-steps compared and mismatches."""

    name: str
    compared: int
    mismatches: int
    #: (sample, step, neuron index, reference value, graph value) of the first mismatch
    first: tuple[int, int, tuple[int, ...], float, float] | None = None


@dataclass
class CompileCheck:
    """A compiled graph against what it was compiled from (`against`: "torch", the traced
    model; "file", a NIR file's own equations), layer by layer, and the largest difference
    of each graph output."""

    samples: int
    timesteps: int
    against: str = "torch"
    layers: list[LayerAgreement] = field(default_factory=list)
    output_max_abs_diff: dict[str, float] = field(default_factory=dict)

    @property
    def total_mismatches(self) -> int:
        return sum(layer.mismatches for layer in self.layers)

    def table(self) -> str:
        rows = [f"{'layer':<28} {'compared':>10} {'mismatches':>10}  first mismatch"]
        for a in self.layers:
            first = "-" if a.first is None else (
                f"sample {a.first[0]}, step {a.first[1]}, neuron {a.first[2]}: "
                f"{self.against} {a.first[3]:g}, graph {a.first[4]:g}")
            rows.append(f"{format_name(a.name):<28} {a.compared:>10} {a.mismatches:>10}  {first}")
        for name, d in self.output_max_abs_diff.items():
            rows.append(f"{format_name(name):<28} output: max |{self.against} - graph| = "
                        f"{d:.3g}")
        return "\n".join(rows)


def compare_spikes(name: str, expected: np.ndarray, got: np.ndarray,
                   against: str = "torch") -> LayerAgreement:
    """Mismatches between two `[T, batch, ...]` spike arrays (0/1 or bool): `expected` from
    `against`, `got` from the graph."""
    d = diff(np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64))
    if not d.comparable:
        raise SimulationInputError(f"layer {name!r}: spike shapes differ: {against} "
                                   f"{np.shape(expected)}, graph {np.shape(got)}")
    first = None
    if d.index is not None:
        t, b, *neuron = d.index
        first = (b, t, tuple(neuron), float(d.expected), float(d.got))
    return LayerAgreement(name, d.compared, d.mismatches, first)
