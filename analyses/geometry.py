"""The geometry of the core mapper: which source neurons each destination neuron reads.

A value's neurons in map order (`Grid`: positions row by row, channels innermost), one synapse
node into a layer as a `Projection` (its kernel, stride, padding, the source channels a partial
sum reads, or a split fan-in's one-to-one merge), and the counts the mapper and the cost model
take from them (the source cells a range of positions reads, its distinct input axons, each
position's own by inclusion and exclusion of its windows), in arrays of the layer's size.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Grid:
    """A value's neurons in map order: `height * width` positions of `channels` neurons each."""

    channels: int
    height: int = 1
    width: int = 1
    rank: int = 1  # of the IR shape; rank 3 is (C, H, W), stored as (H, W, C)

    @classmethod
    def of(cls, shape: tuple[int, ...]) -> Grid:
        if len(shape) == 3:
            return cls(shape[0], shape[1], shape[2], 3)
        return cls(int(np.prod(shape)), rank=len(shape))

    @property
    def positions(self) -> int:
        return self.height * self.width

    @property
    def size(self) -> int:
        return self.channels * self.positions

    def counts(self, start: int, stop: int) -> np.ndarray:
        """How many neurons of the range [start, stop) sit at each position: [positions]."""
        first = np.arange(self.positions) * self.channels
        return np.clip(np.minimum(stop, first + self.channels) - np.maximum(start, first), 0, None)

    def span(self, start: int, stop: int) -> tuple[int, int]:
        """The positions [first, end) that the neurons [start, stop) occupy (stop > start)."""
        return start // self.channels, (stop - 1) // self.channels + 1

    def range_sums(self, values: np.ndarray, starts, stops) -> np.ndarray:
        """[..., positions] per-position values (each of a position's neurons takes its value)
        -> [..., K]: the sum over the neurons of each range [starts[k], stops[k]), from prefix
        sums: time and memory linear in the positions, whatever the ranges."""
        values = np.asarray(values)
        prefix = np.cumsum(values, axis=-1)
        prefix = np.concatenate([np.zeros_like(prefix[..., :1]), prefix], axis=-1)

        def before(n: np.ndarray) -> np.ndarray:  # the sum over neurons [0, n)
            p, r = np.divmod(np.asarray(n, np.int64), self.channels)
            return (prefix[..., p] * self.channels
                    + values[..., np.minimum(p, self.positions - 1)] * r)

        return before(stops) - before(starts)

    def to_map_order(self, x: np.ndarray) -> np.ndarray:
        """[..., *shape] in IR order -> [..., size] in map order."""
        lead = x.shape[: x.ndim - self.rank]
        if self.rank == 3:
            x = np.moveaxis(x, -3, -1)
        return x.reshape(*lead, self.size)


def _axis_taps(k: int, s: int, pad: int, n_in: int, n_out: int) -> list[tuple[slice, slice]]:
    """Per kernel offset: the output indices whose input index s*o + p - pad is in range."""
    taps = []
    for p in range(k):
        lo, hi = max(0, -((p - pad) // s)), min(n_out - 1, (n_in - 1 + pad - p) // s)
        if lo <= hi:
            start = s * lo + p - pad
            taps.append((slice(lo, hi + 1), slice(start, start + s * (hi - lo) + 1, s)))
    return taps


def _axis_window(k: int, s: int, pad: int, n_in: int, n_out: int) -> tuple[np.ndarray, ...]:
    """Per output index: the first and last input index its window reads, clipped: [n_out]."""
    o = np.arange(n_out, dtype=np.int64) * s - pad
    return np.maximum(o, 0), np.minimum(o + k - 1, n_in - 1)


@dataclass(frozen=True)
class Projection:
    """One synapse node into a neuron layer: its source and how the two grids connect.

    A conv reads cells of whole positions, a dense synapse one cell of every source neuron,
    a split fan-in's merge (`one_to_one`) one cell per relay neuron, the one at its own
    index. `channels`: the source channels [start, stop) a partial sum reads (None: all)."""

    synapse: str
    source: str
    src: Grid
    dst: Grid
    kernel: tuple[int, int] | None = None  # None: dense, every source neuron reaches all
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    channels: tuple[int, int] | None = None
    one_to_one: bool = False

    @property
    def read_channels(self) -> int:
        return self.src.channels if self.channels is None else \
            self.channels[1] - self.channels[0]

    @property
    def cell_size(self) -> int:
        """Source neurons per cell."""
        if self.one_to_one:
            return 1
        return self.read_channels * (1 if self.kernel else self.src.positions)

    @property
    def cells(self) -> int:
        if self.one_to_one:
            return self.src.size
        return self.src.positions if self.kernel else 1

    def cell_of(self, neurons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Source neuron indices (map order) -> their cells, and whether this projection
        reads them at all (a partial sum reads only its channels)."""
        neurons = np.asarray(neurons, np.int64)
        if self.one_to_one:
            return neurons, np.ones(neurons.shape, bool)
        channel = neurons % self.src.channels
        read = np.ones(neurons.shape, bool) if self.channels is None else \
            (channel >= self.channels[0]) & (channel < self.channels[1])
        cell = neurons // self.src.channels if self.kernel else np.zeros_like(neurons)
        return cell, read

    def _taps(self):
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        rows = _axis_taps(kh, sh, ph, self.src.height, self.dst.height)
        cols = _axis_taps(kw, sw, pw, self.src.width, self.dst.width)
        return [(ro, co, ri, ci) for ro, ri in rows for co, ci in cols]

    def gather(self, cells: np.ndarray) -> np.ndarray:
        """[..., cells] per-source-cell values -> [..., dst.positions]: their sum over every
        in-range input of a destination position (the spikes its neurons receive)."""
        if self.one_to_one:  # each neuron its own cell: a position's mean, per neuron
            lead = cells.shape[:-1]
            return cells.reshape(*lead, self.dst.positions, self.dst.channels).mean(axis=-1)
        if self.kernel is None:
            return np.repeat(cells, self.dst.positions, axis=-1)
        x = cells.reshape(*cells.shape[:-1], self.src.height, self.src.width)
        out = np.zeros((*cells.shape[:-1], self.dst.height, self.dst.width), cells.dtype)
        for ro, co, ri, ci in self._taps():
            out[..., ro, co] += x[..., ri, ci]
        return out.reshape(*cells.shape[:-1], self.dst.positions)

    def reads(self, first: int, end: int) -> np.ndarray:
        """The source cells that the destination positions [first, end) read, ascending.

        Only the window of source rows (and, within one row, columns) those positions can
        reach is looked at: time and memory grow with the range, not with the layer."""
        if self.one_to_one:
            return np.arange(first * self.dst.channels, end * self.dst.channels)
        if self.kernel is None:
            return np.zeros(1 if end > first else 0, np.int64)
        if end <= first:
            return np.zeros(0, np.int64)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        w = self.dst.width
        r0, r1 = first // w, (end - 1) // w
        c0, c1 = (first % w, (end - 1) % w) if r0 == r1 else (0, w - 1)
        occupied = np.ones((r1 - r0 + 1, c1 - c0 + 1), bool)
        if r0 != r1:  # a partial first row, whole rows between, a partial last row
            occupied[0, : first % w] = False
            occupied[-1, (end - 1) % w + 1:] = False
        i0, i1 = max(0, sh * r0 - ph), min(self.src.height - 1, sh * r1 - ph + kh - 1)
        j0, j1 = max(0, sw * c0 - pw), min(self.src.width - 1, sw * c1 - pw + kw - 1)
        if i1 < i0 or j1 < j0:
            return np.zeros(0, np.int64)
        mask = np.zeros((i1 - i0 + 1, j1 - j0 + 1), bool)  # the source window [i0..i1, j0..j1]
        rows = _axis_taps(kh, sh, ph + i0 - sh * r0, i1 - i0 + 1, r1 - r0 + 1)
        cols = _axis_taps(kw, sw, pw + j0 - sw * c0, j1 - j0 + 1, c1 - c0 + 1)
        for ro, ri in rows:
            for co, ci in cols:
                mask[ri, ci] |= occupied[ro, co]
        ii, jj = np.nonzero(mask)
        return (ii + i0) * self.src.width + (jj + j0)

    def windows(self) -> tuple[np.ndarray, ...]:
        """A conv's window per destination row and column: (row_lo, row_hi) [dst.height]
        and (col_lo, col_hi) [dst.width], inclusive and clipped to the source."""
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        return (*_axis_window(kh, sh, ph, self.src.height, self.dst.height),
                *_axis_window(kw, sw, pw, self.src.width, self.dst.width))

    def fan_in(self) -> np.ndarray:
        """Synapses per neuron at each destination position: [dst.positions]."""
        return self.gather(np.ones(self.cells, np.int64)) * self.cell_size


def by_source(projections: list[Projection]) -> dict[str, list[Projection]]:
    """The projections grouped by source, in first-seen order (synapses from one source share
    its axons)."""
    out: dict[str, list[Projection]] = {}
    for proj in projections:
        out.setdefault(proj.source, []).append(proj)
    return out


def reads(projections: list[Projection], first: int, end: int) -> dict[str, np.ndarray]:
    """Source name -> the source cells (ascending) that the destination positions [first, end)
    read through any of `projections`."""
    out = {}
    for src, projs in by_source(projections).items():
        cells = [p.reads(first, end) for p in projs]
        out[src] = cells[0] if len(cells) == 1 else np.unique(np.concatenate(cells))
    return out


def axons(projections: list[Projection], first: int, end: int) -> int:
    """Distinct input axons of a core whose neurons occupy positions [first, end): one per
    source neuron read, the cells read times each source's cell size."""
    cell_size = {src: projs[0].cell_size for src, projs in by_source(projections).items()}
    return sum(len(cells) * cell_size[src]
               for src, cells in reads(projections, first, end).items())


#: Above this many convs from one source into one layer, single positions are counted one by
#: one instead of by inclusion and exclusion (2^n - 1 terms).
_MAX_INCLUSION_EXCLUSION = 8


def single_position_axons(projections: list[Projection], positions: int) -> np.ndarray:
    """Distinct input axons of each destination position alone: [positions]. A position's
    window under one conv is a box of source cells; the union of the boxes of every conv from
    one source is counted by inclusion and exclusion (box intersections are boxes), in arrays
    of the layer's size."""
    total = np.zeros(positions, np.int64)
    for projs in by_source(projections).values():
        if projs[0].one_to_one:  # one neuron reads one relay neuron, its own
            total += 1
            continue
        if any(p.kernel is None for p in projs):  # a dense synapse reads every source neuron
            total += max(p.cell_size for p in projs if p.kernel is None)
            continue
        if len(projs) > _MAX_INCLUSION_EXCLUSION:  # 2^n terms: count position by position
            total += [axons(projs, p, p + 1) for p in range(positions)]
            continue
        wins = [p.windows() for p in projs]
        for r in range(1, len(projs) + 1):
            for subset in itertools.combinations(wins, r):
                rows = np.clip(np.min([w[1] for w in subset], axis=0)
                               - np.max([w[0] for w in subset], axis=0) + 1, 0, None)
                cols = np.clip(np.min([w[3] for w in subset], axis=0)
                               - np.max([w[2] for w in subset], axis=0) + 1, 0, None)
                total += (-1) ** (r + 1) * np.outer(rows, cols).ravel() * projs[0].cell_size
    return total
