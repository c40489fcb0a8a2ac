"""Value-by-value comparison of one layer's record, `[steps, batch, ...]`.

The one comparator behind every "do these agree" in snnc: a backend against the reference
simulator or the golden vectors (`snnc.tools.golden.compare`), the traced graph against
torch (`snnc.frontends.torch.check.compare_spikes`), and the pass runner's debug mode (each
pass against the graph before it, `snnc.tools.pass_runner`). Each caller words its own
report; what counts as a mismatch, and which one is first, is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
