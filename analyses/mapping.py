"""Place each neuron layer of a fixed-point graph on as few cores as the target's limits allow.

The resource model (its figures: docs/targets.md, "Resource limits"):
- A core holds one contiguous range of one layer's neurons. Neurons are numbered channels-last
  ((H, W, C) for a (C, H, W) layer, channel innermost, as Lava's Conv process lays out
  (W, H, C); the flat index for a 1-D layer): the neurons at one position read the same input
  positions, so a range of whole positions needs the fewest input axons.
- Per core, at most `neurons_per_core` neurons and `max_input_axons_per_core` input axons;
  the rest depends on the target's `synapse_format`:
  - "loihi2" (the loihi2 target; analyses/loihi2_memory.py): synaptic memory in entries as
    Intel's Loihi 2 compiler counts them (shared conv kernels on population axons, dense
    rows, an entry cap per core), every core of a layer the same size;
  - "explicit": SRAM for every neuron's incoming synapses, stored explicitly (fan-in x
    `synapse_bytes_per_weight`, zero weights included, no weight sharing for convolutions)
    plus `state_bytes_per_neuron`, and one input axon per source neuron any of its neurons
    reads: the exact union of the receptive fields of its positions, times the source's
    channels (every source neuron for a dense synapse); two synapses from one source share
    the axons. The geometry is analyses/geometry.py.
- A layer whose one neuron reads more axons than a core accepts arrives split
  (passes/split_fan_in.py): its relay layers (FxPartialSum) are placed like neuron layers,
  each reading one group of the source's channels (a FxChannelSlice), and the layer reads each
  relay one-to-one: one axon per relay neuron, its own index.
- Layers take cores in graph order and never share one. Core i sits on chip i // cores_per_chip
  at x = i % mesh_width, y = (i % cores_per_chip) // mesh_width; the chips of a map lie on a
  square grid, ceil(sqrt(chips)) to a row (`CoreMap.chip_xy`), their meshes joined edge to
  edge.

Time and memory are linear in the layer size: per-position arrays (fan-in, memory prefix
sums, each position's own axon count by inclusion and exclusion of its windows), and per core
only the window of source rows its positions can reach (`Projection.reads`); no structure is
positions x positions or cores x positions. A core first tries the whole range the neuron
and memory limits allow; when its axons do not fit, the range grows from one position by
galloping, so the ranges tried after that first one stay within twice the one kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from snnc.analyses.geometry import (
    Grid,
    Projection,
    axons,
    single_position_axons,
)
from snnc.analyses.loihi2_memory import Demand, neurons_per_core
from snnc.errors import SnncError, UnsupportedNodeError
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
    FxNeuron,
    FxPartialSum,
    FxReadout,
    Graph,
    Input,
)
from snnc.ir.printer import format_name
from snnc.targets import Target

log = logging.getLogger(__name__)

#: The node types the mapper places, by exact type: a new neuron type may keep more state per
#: neuron or need other routing, so it is refused until it is added here.
_MAPPABLE = (Input, FxInput, FxConv2d, FxDense, Add, FxLIF, FxCLIF, FxCubaLIF, FxReadout,
             FxChannelSlice, FxPartialSum, FxMerge)

#: The layers that take cores: neurons, and the relays of a split fan-in.
LAYERS = (FxNeuron, FxPartialSum)


class MappingError(SnncError):
    """A layer cannot be placed: one of its neurons alone exceeds a per-core limit."""


def layer_projections(graph: Graph, name: str) -> list[Projection]:
    """The synapses feeding layer `name` (through Adds), with their geometry: a neuron
    layer's, or a split fan-in's relays' (a merge reads its relays one-to-one; a partial sum
    reads a FxChannelSlice of its source)."""
    dst = Grid.of(graph[name].type.shape)
    out = []
    pending = [graph[name].inputs[0]]
    while pending:
        node = graph[pending.pop(0)]
        if isinstance(node, Add):
            pending.extend(node.inputs)
            continue
        if isinstance(node, FxMerge):
            for relay in node.inputs:
                if not isinstance(graph[relay], FxPartialSum):
                    raise UnsupportedNodeError(relay, graph[relay].op, f"the core mapper "
                                               f"(merged into {name!r})", ["FxPartialSum"])
                out.append(Projection(node.name, relay, dst, dst, one_to_one=True))
            continue
        source = graph[node.inputs[0]] if isinstance(node, FxConv2d | FxDense) else None
        channels = None
        if isinstance(source, FxChannelSlice):
            channels, source = (source.start, source.stop), graph[source.inputs[0]]
        if source is None or not (isinstance(source, Input) or (
                isinstance(source, FxNeuron) and source.spiking)):
            bad = node if source is None else source
            raise UnsupportedNodeError(bad.name, bad.op, f"the core mapper (feeding {name!r})",
                                       ["FxConv2d", "FxDense", "Add", "an input or spiking layer"])
        src = Grid.of(source.type.shape)
        if isinstance(node, FxConv2d):
            out.append(Projection(node.name, source.name, src, dst, node.weight.shape[2:],
                                  node.stride, node.padding, channels))
        else:
            out.append(Projection(node.name, source.name, src, dst, channels=channels))
    return out


def neuron_limits(target: Target) -> tuple[int, int]:
    """What one neuron may read on a core: input axons, and synapses (explicit format) or
    synaptic memory entries (Loihi 2's format)."""
    if target.synapse_format == "loihi2":
        return target.max_input_axons_per_core, target.synmem_entries_per_core
    return target.max_input_axons_per_core, (
        target.sram_bytes_per_core - target.state_bytes_per_neuron) \
        // target.synapse_bytes_per_weight


def neuron_demand(projections: list[Projection], graph: Graph,
                  target: Target) -> tuple[int, int]:
    """The widest neuron's input axons and synapses (or entries) under the target's format:
    what `neuron_limits` bounds. Loihi 2's shared convolution kernels and population axons
    are not the neuron's own, so a convolution adds to neither."""
    if not projections:
        return 0, 0
    if target.synapse_format == "loihi2":
        demand = Demand(projections, _weights(graph, projections), target)
        return demand.axons(1), demand.dense_inputs + demand.relays
    positions = projections[0].dst.positions
    fan = sum(p.fan_in() for p in projections)
    return int(single_position_axons(projections, positions).max()), int(fan.max())


def channel_demand(proj: Projection, graph: Graph, target: Target) -> tuple[int, int] | None:
    """What one source channel of `proj` adds to each neuron's axons and synapses, for a
    split into channel groups; None where splitting the synapse cannot help (a convolution
    on Loihi 2 reads population axons and shares its kernel)."""
    synapse = graph[proj.synapse]
    if target.synapse_format == "loihi2":
        if proj.kernel is not None or proj.one_to_one:
            return None
        return proj.src.positions, proj.src.positions
    per_axons = int(single_position_axons([proj], proj.dst.positions).max()) \
        // proj.src.channels
    per_synapses = int(np.prod(synapse.weight.shape[2:])) if proj.kernel is not None \
        else proj.src.positions
    return per_axons, per_synapses


def _weights(graph: Graph, projections: list[Projection]) -> dict[str, np.ndarray]:
    return {p.synapse: graph[p.synapse].weight for p in projections if not p.one_to_one}


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

    @property
    def chips(self) -> int:
        """How many chips the layer's cores lie on."""
        return len({c.chip for c in self.cores})


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

    @property
    def chips_per_row(self) -> int:
        return max(1, int(np.ceil(np.sqrt(self.n_chips))))

    def chip_xy(self, chip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A chip's place on the map's square grid of chips (row by row)."""
        return np.divmod(np.asarray(chip), self.chips_per_row)[::-1]

    def mesh_xy(self) -> tuple[np.ndarray, np.ndarray]:
        """Every core's mesh coordinates, chips on their grid: two [n_cores] arrays."""
        cores = self.cores
        cx, cy = self.chip_xy(np.array([c.chip for c in cores], np.int64))
        x = cx * self.target.mesh_width + np.array([c.x for c in cores], np.int64)
        y = cy * self.target.mesh_height + np.array([c.y for c in cores], np.int64)
        return x.astype(np.int64), y.astype(np.int64)


def map_to_cores(graph: Graph, target: Target) -> CoreMap:
    """Split every neuron layer of a fixed-point `graph` into contiguous neuron ranges, each as
    large as the neuron, memory and axon limits of one core allow, and place them on the mesh."""
    if not target.quantized:
        raise SnncError(f"target {target.name!r} is not a chip; map a quantized target's graph")
    if target.cores_per_chip != target.mesh_width * target.mesh_height:
        raise SnncError(f"target {target.name!r}: cores_per_chip {target.cores_per_chip} is not "
                        f"mesh_width x mesh_height ({target.mesh_width} x {target.mesh_height})")
    for node in graph:
        if type(node) not in _MAPPABLE:
            raise UnsupportedNodeError(node.name, node.op, "the core mapper",
                                       sorted(t.__name__ for t in _MAPPABLE))
    layers: dict[str, LayerMap] = {}
    next_core = 0
    for node in graph:
        if isinstance(node, LAYERS):
            layer = LayerMap(node.name, node.op, Grid.of(node.type.shape),
                             layer_projections(graph, node.name))
            if target.synapse_format == "loihi2":
                ranges, synapse_bytes = _split_loihi2(layer, graph, target)
            else:
                fan = sum((p.fan_in() for p in layer.projections),
                          np.zeros(layer.grid.positions, np.int64))
                ranges = _split(layer, target, fan)
                synapse_bytes = layer.grid.range_sums(
                    fan, *np.array([r[:2] for r in ranges]).T) * target.synapse_bytes_per_weight
            layer.cores = [_core(layer, target, int(n), next_core + i, *r)
                           for i, (n, r) in enumerate(zip(synapse_bytes, ranges, strict=True))]
            next_core += len(ranges)
            layers[node.name] = layer
    core_map = CoreMap(target, layers)
    log.info("mapped %d layers onto %d cores (%d chips)", len(layers), core_map.n_cores,
             core_map.n_chips)
    return core_map


def _split_loihi2(layer: LayerMap, graph: Graph, target: Target
                  ) -> tuple[list[tuple[int, int, str, int]], list[int]]:
    """The layer in equal ranges of as many neurons as one core takes under Loihi 2's
    synaptic memory (analyses/loihi2_memory.py), and each range's synaptic memory in bytes."""
    demand = Demand(layer.projections, _weights(graph, layer.projections), target)
    size = layer.grid.size
    per_core, bound = neurons_per_core(demand, graph[layer.name].type.shape, size, target)
    where = f"layer {layer.name!r} ({layer.op})"
    if demand.entries(per_core) > target.synmem_entries_per_core:
        raise MappingError(f"{where}: {per_core} neuron(s) need {demand.entries(per_core)} "
                           f"synaptic memory entries but a core holds "
                           f"{target.synmem_entries_per_core} (synmem_entries_per_core)")
    if demand.axons(per_core) > target.max_input_axons_per_core:
        raise MappingError(f"{where}: one neuron needs {demand.axons(1)} distinct input axons "
                           f"but a core accepts at most {target.max_input_axons_per_core} "
                           "(max_input_axons_per_core)")
    ranges, memory = [], []
    for start in range(0, size, per_core):
        stop = min(size, start + per_core)
        n = stop - start
        ranges.append((start, stop, "layer end" if stop == size and start == 0 else bound,
                       demand.axons(n)))
        memory.append(demand.entries(n) * target.synmem_entry_bits // 8)
    return ranges, memory


def _split(layer: LayerMap, target: Target,
           fan: np.ndarray) -> list[tuple[int, int, str, int]]:
    """The layer's neuron ranges (start, stop, bound, distinct input axons), each as long as
    the neuron and memory limits allow, cut back to the longest run of whole positions the
    axon limit allows. Time and memory grow with the layer: per-position arrays and, per core,
    the source windows of the positions it holds or tries."""
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
    single = single_position_axons(layer.projections, grid.positions)
    worst = int(np.argmax(single))
    if single[worst] > limit:
        raise MappingError(
            f"{where}: one neuron needs {single[worst]} distinct input axons but a core accepts "
            f"at most {limit} (max_input_axons_per_core); over by {single[worst] - limit}")
    channels = grid.channels
    # Bytes of the neurons [0, n): channels * before[n // channels] + (n % channels) * its own.
    before = channels * np.concatenate([[0], np.cumsum(per_neuron)])

    def memory_stop(start: int) -> int:
        """The largest n with bytes of neurons [start, n) <= sram."""
        budget = before[start // channels] + (start % channels) * per_neuron[
            min(start // channels, grid.positions - 1)] + sram
        p = int(np.searchsorted(before, budget, side="right")) - 1  # whole positions [0, p)
        if p >= grid.positions:
            return grid.size
        return p * channels + int((budget - before[p]) // per_neuron[p])

    # Relays of a split fan-in are read one-to-one: one axon per neuron of the range, so a
    # layer that reads them is cut by neurons; the others by whole positions (the neurons of
    # a position read the same inputs).
    relays = sum(p.one_to_one for p in layer.projections)
    spatial = [p for p in layer.projections if not p.one_to_one]
    counted: dict[tuple[int, int], int] = {}

    def count(start: int, stop: int) -> int:
        if (start, stop) not in counted:
            counted[start, stop] = axons(spatial, *grid.span(start, stop)) \
                + relays * (stop - start)
        return counted[start, stop]

    def fits_positions(first: int, end: int) -> bool:
        return count(first * channels, end * channels) <= limit

    def fits_neurons(start: int, stop: int) -> bool:
        return count(start, stop) <= limit

    ranges, start = [], 0
    while start < grid.size:
        by_count = min(grid.size, start + target.neurons_per_core)
        by_memory = memory_stop(start)
        stop = min(by_count, by_memory)
        bound = "layer end" if stop == grid.size else (
            "neurons" if by_count <= by_memory else "memory")
        if not fits_neurons(start, stop):
            if relays:
                stop = _longest_fit(fits_neurons, start, stop)
            else:
                first, end = grid.span(start, stop)
                stop = _longest_fit(fits_positions, first, end) * channels
            bound = "axons"
        ranges.append((start, stop, bound, count(start, stop)))
        counted.clear()
        start = stop
    return ranges


def _longest_fit(fits, first: int, end: int) -> int:
    """The largest e in [first + 1, end) with fits(first, e), for a `fits` that holds for
    first + 1 (checked for single positions), not for `end`, and, growing the range, stays
    false once false. Galloping (first + 2, + 4, ...) then bisecting: the ranges tried are at
    most twice the answer."""
    lo, hi, step = first + 1, end, 1
    while lo + step < hi:
        if not fits(first, lo + step):
            hi = lo + step
            break
        lo, step = lo + step, step * 2
    while hi - lo > 1:  # lo fits, hi does not
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(first, mid) else (lo, mid)
    return lo


def _core(layer: LayerMap, target: Target, synapse_bytes: int, index: int, start: int,
          stop: int, bound: str, fan_in: int) -> CoreSlice:
    local = index % target.cores_per_chip
    return CoreSlice(
        index, layer.name, start, stop,
        synapse_bytes=synapse_bytes,
        state_bytes=(stop - start) * target.state_bytes_per_neuron,
        fan_in=fan_in,
        chip=index // target.cores_per_chip, x=local % target.mesh_width,
        y=local // target.mesh_width, bound=bound)


def format_core_map(core_map: CoreMap, per_core: bool = False) -> str:
    """A table: per layer its neurons, cores, chips and the fullest core's neurons, synapse
    bytes and fan-in, and which limit ended most cores; then the split fan-ins (which layer
    reads which relays); `per_core` adds one line per core."""
    t = core_map.target
    lines = [f"{'layer':<22} {'op':<12} {'neurons':>8} {'cores':>6} {'chips':>5} "
             f"{'max nrn':>8} {'max syn B':>10} {'max fan-in':>10}  bound"]
    splits = []
    for layer in core_map.layers.values():
        cores, bounds = layer.cores, [c.bound for c in layer.cores]
        lines.append(
            f"{format_name(layer.name):<22} {layer.op:<12} {layer.grid.size:>8} {len(cores):>6} "
            f"{layer.chips:>5} {max(c.neurons for c in cores):>8} "
            f"{max(c.synapse_bytes for c in cores):>10} "
            f"{max(c.fan_in for c in cores):>10}  {max(bounds, key=bounds.count)}")
        relays = [p.source for p in layer.projections if p.one_to_one]
        if relays:
            relay_cores = sum(len(core_map.layers[r].cores) for r in relays)
            splits.append(f"split fan-in: {format_name(layer.name)} reads {len(relays)} "
                          f"partial sums ({', '.join(map(format_name, relays))}; "
                          f"{relay_cores} relay cores)")
        if per_core:
            lines += [f"  core {c.index:>5} chip {c.chip} ({c.x},{c.y}) neurons [{c.start}, "
                      f"{c.stop}) syn {c.synapse_bytes} B state {c.state_bytes} B fan-in "
                      f"{c.fan_in} ({c.bound})" for c in cores]
    lines += splits
    memory = (f"{t.synmem_entries_per_core} synaptic memory entries of "
              f"{t.synmem_entry_bits} bits, conv strips below {t.conv_tile_neurons} neurons"
              if t.synapse_format == "loihi2" else f"{t.sram_bytes_per_core} B")
    lines.append(f"total: {core_map.n_cores} cores on {core_map.n_chips} chip(s) "
                 f"({t.cores_per_chip} cores per chip; limits per core: {t.neurons_per_core} "
                 f"neurons, {memory}, {t.max_input_axons_per_core} axons; synapse format "
                 f"{t.synapse_format})")
    return "\n".join(lines)
