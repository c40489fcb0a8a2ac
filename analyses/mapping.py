"""Place each neuron layer of a fixed-point graph on as few cores as the target's limits allow.

The resource model (its figures: targets.md, "Resource limits"):
- A core holds one contiguous range of one layer's neurons. Neurons are numbered channels-last
  ((H, W, C) for a (C, H, W) layer, channel innermost, as Lava's Conv process lays out
  (W, H, C); the flat index for a 1-D layer): the neurons at one position read the same input
  positions, so a range of whole positions needs the fewest input axons.
- Per core: at most `neurons_per_core` neurons; SRAM for every neuron's incoming synapses,
  stored explicitly (fan-in x `synapse_bytes_per_weight`, zero weights included, no weight
  sharing for convolutions) plus `state_bytes_per_neuron`; at most `max_input_axons_per_core`
  distinct input axons, one per source neuron any of its neurons reads: the exact union of
  the receptive fields of its positions, times the source's channels (every source neuron for
  a dense synapse). Two synapses from one source share the axons.
- Layers take cores in graph order and never share one. Core i sits on chip i // cores_per_chip
  at x = i % mesh_width, y = (i % cores_per_chip) // mesh_width; chips lie side by side in x.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from snnc.errors import SnncError, UnsupportedNodeError
from snnc.ir import Add, FxConv2d, FxDense, FxNeuron, Graph, Input
from snnc.targets import Target

log = logging.getLogger(__name__)

_MAPPABLE = (Input, FxConv2d, FxDense, Add, FxNeuron)


class MappingError(SnncError):
    """A layer cannot be placed: one of its neurons alone exceeds a per-core limit."""


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


@dataclass(frozen=True)
class Projection:
    """One synapse node into a neuron layer: its source and how the two grids connect."""

    synapse: str
    source: str
    src: Grid
    dst: Grid
    kernel: tuple[int, int] | None = None  # None: dense, every source neuron reaches all
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    @property
    def cell_size(self) -> int:
        """Source neurons per cell: a conv reads whole positions, a dense synapse everything."""
        return self.src.channels if self.kernel else self.src.size

    @property
    def cells(self) -> int:
        return self.src.positions if self.kernel else 1

    def _taps(self):
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        rows = _axis_taps(kh, sh, ph, self.src.height, self.dst.height)
        cols = _axis_taps(kw, sw, pw, self.src.width, self.dst.width)
        return [(ro, co, ri, ci) for ro, ri in rows for co, ci in cols]

    def gather(self, cells: np.ndarray) -> np.ndarray:
        """[..., cells] per-source-cell values -> [..., dst.positions]: their sum over every
        in-range input of a destination position (the spikes its neurons receive)."""
        if self.kernel is None:
            return np.repeat(cells, self.dst.positions, axis=-1)
        x = cells.reshape(*cells.shape[:-1], self.src.height, self.src.width)
        out = np.zeros((*cells.shape[:-1], self.dst.height, self.dst.width), cells.dtype)
        for ro, co, ri, ci in self._taps():
            out[..., ro, co] += x[..., ri, ci]
        return out.reshape(*cells.shape[:-1], self.dst.positions)

    def receptive(self, occupied: np.ndarray) -> np.ndarray:
        """[K, dst.positions] bool -> [K, cells] bool: the source cells each row reads."""
        if self.kernel is None:
            return np.broadcast_to(occupied.any(axis=1, keepdims=True), (len(occupied), 1))
        out = occupied.reshape(len(occupied), self.dst.height, self.dst.width)
        mask = np.zeros((len(occupied), self.src.height, self.src.width), bool)
        for ro, co, ri, ci in self._taps():
            mask[:, ri, ci] |= out[:, ro, co]
        return mask.reshape(len(occupied), -1)

    def fan_in(self) -> np.ndarray:
        """Synapses per neuron at each destination position: [dst.positions]."""
        return self.gather(np.ones(self.cells, np.int64)) * self.cell_size


def layer_projections(graph: Graph, name: str) -> list[Projection]:
    """The synapses feeding neuron layer `name` (through Adds), with their geometry."""
    dst = Grid.of(graph[name].type.shape)
    out = []
    pending = [graph[name].inputs[0]]
    while pending:
        node = graph[pending.pop(0)]
        if isinstance(node, Add):
            pending.extend(node.inputs)
            continue
        source = graph[node.inputs[0]] if isinstance(node, FxConv2d | FxDense) else None
        if source is None or not (isinstance(source, Input) or (
                isinstance(source, FxNeuron) and source.spiking)):
            bad = node if source is None else source
            raise UnsupportedNodeError(bad.name, bad.op, f"the core mapper (feeding {name!r})",
                                       ["FxConv2d", "FxDense", "Add", "an input or spiking layer"])
        src = Grid.of(source.type.shape)
        if isinstance(node, FxConv2d):
            out.append(Projection(node.name, source.name, src, dst, node.weight.shape[2:],
                                  node.stride, node.padding))
        else:
            out.append(Projection(node.name, source.name, src, dst))
    return out


def axon_masks(projections: list[Projection], occupied: np.ndarray) -> dict[str, np.ndarray]:
    """Source name -> [K, cells] bool: which source cells each of K neuron sets reads, given
    which destination positions it occupies ([K, positions] bool)."""
    masks: dict[str, np.ndarray] = {}
    for proj in projections:
        mask = proj.receptive(occupied)
        masks[proj.source] = masks[proj.source] | mask if proj.source in masks else mask
    return masks


@dataclass(frozen=True)
class CoreSlice:
    """One core: a neuron range of one layer, what it stores and where it sits."""

    index: int
    layer: str
    start: int
    stop: int
    synapse_bytes: int
    state_bytes: int
    fan_in: int  # distinct input axons
    chip: int
    x: int
    y: int
    bound: str  # the limit that ended this core: neurons, memory, axons or "layer end"

    @property
    def neurons(self) -> int:
        return self.stop - self.start


@dataclass
class LayerMap:
    name: str
    op: str
    grid: Grid
    projections: list[Projection]
    cores: list[CoreSlice] = field(default_factory=list)


@dataclass
class CoreMap:
    target: Target
    layers: dict[str, LayerMap]

    @property
    def cores(self) -> list[CoreSlice]:
        return [c for layer in self.layers.values() for c in layer.cores]

    @property
    def n_cores(self) -> int:
        return sum(len(layer.cores) for layer in self.layers.values())

    @property
    def n_chips(self) -> int:
        return -(-self.n_cores // self.target.cores_per_chip)

    def mesh_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Every core's mesh coordinates, chips side by side in x: two [n_cores] arrays."""
        cores = self.cores
        x = np.array([c.chip * self.target.mesh_width + c.x for c in cores], np.int64)
        return x, np.array([c.y for c in cores], np.int64)


def map_to_cores(graph: Graph, target: Target) -> CoreMap:
    """Split every neuron layer of a fixed-point `graph` into contiguous neuron ranges, each as
    large as the neuron, memory and axon limits of one core allow, and place them on the mesh."""
    if not target.quantized:
        raise SnncError(f"target {target.name!r} is not a chip; map a quantized target's graph")
    if target.cores_per_chip != target.mesh_width * target.mesh_height:
        raise SnncError(f"target {target.name!r}: cores_per_chip {target.cores_per_chip} is not "
                        f"mesh_width x mesh_height ({target.mesh_width} x {target.mesh_height})")
    for node in graph:
        if not isinstance(node, _MAPPABLE):
            raise UnsupportedNodeError(node.name, node.op, "the core mapper",
                                       ["Input", "FxInput", "FxConv2d", "FxDense", "Add",
                                        "FxLIF", "FxCLIF", "FxReadout"])
    layers: dict[str, LayerMap] = {}
    next_core = 0
    for node in graph:
        if isinstance(node, FxNeuron):
            layer = LayerMap(node.name, node.op, Grid.of(node.type.shape),
                             layer_projections(graph, node.name))
            fan = sum((p.fan_in() for p in layer.projections),
                      np.zeros(layer.grid.positions, np.int64))
            ranges = _split(layer, target, fan)
            layer.cores = [_core(layer, target, fan, next_core + i, *r)
                           for i, r in enumerate(ranges)]
            next_core += len(ranges)
            layers[node.name] = layer
    core_map = CoreMap(target, layers)
    log.info("mapped %d layers onto %d cores (%d chips)", len(layers), core_map.n_cores,
             core_map.n_chips)
    return core_map


def _axons(layer: LayerMap, occupied: np.ndarray) -> np.ndarray:
    """Distinct input axons of K neuron sets occupying [K, positions] bool: [K]."""
    cell = {p.source: p.cell_size for p in layer.projections}
    masks = axon_masks(layer.projections, occupied)
    return sum((m.sum(axis=1) * cell[s] for s, m in masks.items()), np.zeros(len(occupied), int))


def _split(layer: LayerMap, target: Target, fan: np.ndarray) -> list[tuple[int, int, str]]:
    grid, sram, limit = layer.grid, target.sram_bytes_per_core, target.max_input_axons_per_core
    per_neuron = fan * target.synapse_bytes_per_weight + target.state_bytes_per_neuron
    where = f"layer {layer.name!r} ({layer.op})"
    worst = int(np.argmax(per_neuron))
    if per_neuron[worst] > sram:
        raise MappingError(
            f"{where}: one neuron needs {per_neuron[worst]} B of core memory ({fan[worst]} "
            f"synapses x {target.synapse_bytes_per_weight} B + {target.state_bytes_per_neuron} B "
            f"state) but a core has {sram} B (sram_bytes_per_core); over by "
            f"{per_neuron[worst] - sram} B")
    single = np.concatenate([_axons(layer, np.eye(grid.positions, dtype=bool)[i:i + 1024])
                             for i in range(0, grid.positions, 1024)])  # bounded memory
    worst = int(np.argmax(single))
    if single[worst] > limit:
        raise MappingError(
            f"{where}: one neuron needs {single[worst]} distinct input axons but a core accepts "
            f"at most {limit} (max_input_axons_per_core); over by {single[worst] - limit}")
    prefix = np.concatenate([[0], np.cumsum(np.repeat(per_neuron, grid.channels))])

    def fits(start: int, stop: int) -> bool:
        return int(_axons(layer, (grid.counts(start, stop) > 0)[None])[0]) <= limit

    ranges, start = [], 0
    while start < grid.size:
        by_count = min(grid.size, start + target.neurons_per_core)
        by_memory = int(np.searchsorted(prefix, prefix[start] + sram, side="right")) - 1
        stop = min(by_count, by_memory)
        bound = "layer end" if stop == grid.size else (
            "neurons" if by_count <= by_memory else "memory")
        if not fits(start, stop):
            lo, hi = start + 1, stop  # lo fits (checked above for single neurons), hi does not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if fits(start, mid) else (lo, mid)
            stop, bound = lo, "axons"
        ranges.append((start, stop, bound))
        start = stop
    return ranges


def _core(layer: LayerMap, target: Target, fan: np.ndarray, index: int, start: int, stop: int,
          bound: str) -> CoreSlice:
    counts = layer.grid.counts(start, stop)
    local = index % target.cores_per_chip
    return CoreSlice(
        index, layer.name, start, stop,
        synapse_bytes=int(counts @ fan) * target.synapse_bytes_per_weight,
        state_bytes=(stop - start) * target.state_bytes_per_neuron,
        fan_in=int(_axons(layer, (counts > 0)[None])[0]),
        chip=index // target.cores_per_chip, x=local % target.mesh_width,
        y=local // target.mesh_width, bound=bound)


def format_core_map(core_map: CoreMap, per_core: bool = False) -> str:
    """A table: per layer its neurons, cores and the fullest core's neurons, synapse bytes and
    fan-in, and which limit ended most cores; `per_core` adds one line per core."""
    t = core_map.target
    lines = [f"{'layer':<22} {'op':<9} {'neurons':>8} {'cores':>6} {'max nrn':>8} "
             f"{'max syn B':>10} {'max fan-in':>10}  bound"]
    for layer in core_map.layers.values():
        cores, bounds = layer.cores, [c.bound for c in layer.cores]
        lines.append(
            f"{layer.name:<22} {layer.op:<9} {layer.grid.size:>8} {len(cores):>6} "
            f"{max(c.neurons for c in cores):>8} {max(c.synapse_bytes for c in cores):>10} "
            f"{max(c.fan_in for c in cores):>10}  {max(bounds, key=bounds.count)}")
        if per_core:
            lines += [f"  core {c.index:>5} chip {c.chip} ({c.x},{c.y}) neurons [{c.start}, "
                      f"{c.stop}) syn {c.synapse_bytes} B state {c.state_bytes} B fan-in "
                      f"{c.fan_in} ({c.bound})" for c in cores]
    lines.append(f"total: {core_map.n_cores} cores on {core_map.n_chips} chip(s) "
                 f"({t.cores_per_chip} cores per chip; limits per core: {t.neurons_per_core} "
                 f"neurons, {t.sram_bytes_per_core} B, {t.max_input_axons_per_core} axons)")
    return "\n".join(lines)
