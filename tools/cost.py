"""Energy and latency of one inference on the chip, from recorded spikes and a core map.

The model (its figures: docs/targets.md, "Cost constants"), per sample and step, then batch means:
- synaptic ops: each spike (or nonzero graded payload) times the synapses with a nonzero
  weight it reaches on each core, counted at the receiving core: a zero weight does no work,
  as the chip's activity counters show (the mapping still stores it, and the message still
  travels);
- neuron updates: every neuron on a core, every step, charged as active updates (as many per
  neuron and step as its type's rule in `RULES` says: one for each type so far);
- spike messages: one per spike per destination core that reads the spiking neuron, counted at
  the sending core. The graded input sends every nonzero pixel (after quantization) every step
  from `Target.input_port_xy`, which is no core: its work bounds no step;
- mesh hops: the Manhattan distance between sending and receiving core, per message, split into
  x (E-W) and y (N-S) hops, which cost differently;
- chip hops: a map on several chips (on a square grid, analyses/mapping.py) sends a message
  from chip a to chip b over the grid's Manhattan distance in chip-to-chip links, each charged
  `energy_per_chip_hop_j` and `time_per_chip_hop_s` on top of its mesh hops (assumed
  figures: docs/targets.md).
A core is busy synops x t_synop + neurons x t_update + messages sent x t_message; the slowest
core bounds the step, plus the longest route any connection of the map uses (hops x t_hop
plus chip hops x t_chip_hop, added every step) and the barrier sync. Latency per sample is
the sum of its steps. Dynamic energy is the sum of the energies above; static energy is each
chip's idle power (`static_power_per_chip_w`, measured on Loihi 2: docs/targets.md) over the
latency; total energy is both.

Every node type the model meets has a rule in `RULES`, keyed by exact type: what a neuron
costs per step and what a source sends. A type without a rule is refused, naming the node,
its type and the supported types, instead of being counted like a type it subclasses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from snnc.analyses.geometry import Grid, Projection, by_source, reads
from snnc.analyses.mapping import CoreMap, LayerMap
from snnc.backends.refsim import kernels
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
    FxPartialSum,
    FxReadout,
    Graph,
    Input,
    Node,
)
from snnc.ir.payload import input_payload
from snnc.ir.printer import format_name
from snnc.targets import Target

log = logging.getLogger(__name__)

KINDS = ("synops", "neuron updates", "messages", "hops", "chip hops")


class CostInputError(SnncError):
    """Spikes given to the cost model do not fit the graph or its core map."""


@dataclass(frozen=True)
class CostRule:
    """How the cost model counts one node type.

    `updates`: neuron updates charged per neuron and step (0: not a neuron; synapses are
    counted as synops at the neurons they feed). `sends`: (node, recorded values) -> bool, the
    values that leave as messages (spikes, or an input's nonzero payload); None: the type never
    sends (a readout integrates and stays on its core)."""

    updates: int = 0
    sends: Callable[[Node, np.ndarray], np.ndarray] | None = None


def _spikes(node: Node, values: np.ndarray) -> np.ndarray:
    return values != 0


def _payload(node: FxInput, values: np.ndarray) -> np.ndarray:
    return input_payload(node, values) != 0  # what the chip sends: quantized, then nonzero


#: The rule per node type, exact type (a subclass is a new type and needs its own rule).
RULES: dict[type[Node], CostRule] = {
    FxInput: CostRule(sends=_payload),
    FxConv2d: CostRule(),
    FxDense: CostRule(),
    Add: CostRule(),
    FxLIF: CostRule(updates=1, sends=_spikes),
    FxCLIF: CostRule(updates=1, sends=_spikes),
    FxCubaLIF: CostRule(updates=1, sends=_spikes),
    FxReadout: CostRule(updates=1),
    # A split fan-in: relays update and send their nonzero partial sums as graded messages
    # (recorded as `simulate(...).messages`); the slice is routing, the merge a synapse.
    FxChannelSlice: CostRule(),
    FxPartialSum: CostRule(updates=1, sends=_spikes),
    FxMerge: CostRule(),
}


def rule_for(node: Node) -> CostRule:
    """The cost rule of `node`'s exact type; UnsupportedNodeError naming the node, its type
    and the supported types when there is none."""
    try:
        return RULES[type(node)]
    except KeyError:
        raise UnsupportedNodeError(node.name, node.op, "the cost model",
                                   [t.__name__ for t in RULES]) from None


@dataclass
class CostReport:
    """Per-core counts are means over the batch, shaped [timesteps, cores] (neuron updates:
    [cores], the same every step); times in seconds, energies in joules per inference."""

    timesteps: int
    batch: int
    core_layer: list[str]
    synops: np.ndarray
    neuron_updates: np.ndarray
    messages: np.ndarray
    hops_x: np.ndarray
    hops_y: np.ndarray
    chip_hops: np.ndarray
    busy_s: np.ndarray
    input_messages: np.ndarray  # [timesteps], sent from the input port
    input_hops_x: np.ndarray
    input_hops_y: np.ndarray
    input_chip_hops: np.ndarray
    step_s: np.ndarray          # [timesteps]: slowest core + route + barrier, batch mean
    route_s: float
    barrier_s: float
    latency_s: float            # per sample
    energy_j: dict[str, float] = field(default_factory=dict)  # dynamic, per kind and inference
    cycle_s: float = 1e-9
    input_assumed_dense: bool = False
    static_energy_j: float = 0.0  # per inference: the chips' static power over the latency
    chips: int = 1

    @property
    def dynamic_energy_j(self) -> float:
        return sum(self.energy_j.values())

    @property
    def total_energy_j(self) -> float:
        return self.dynamic_energy_j + self.static_energy_j

    @property
    def inferences_per_s(self) -> float:
        return 1.0 / self.latency_s if self.latency_s > 0 else float("inf")

    @property
    def synops_per_inference(self) -> float:
        return float(self.synops.sum())

    def layer_totals(self) -> dict[str, dict[str, float]]:
        """Per layer: synops, neuron updates, messages and hops per inference, cores."""
        out: dict[str, dict[str, float]] = {}
        for k, layer in enumerate(self.core_layer):
            row = out.setdefault(layer, dict.fromkeys(("cores", *KINDS), 0.0))
            row["cores"] += 1
            row["synops"] += float(self.synops[:, k].sum())
            row["neuron updates"] += float(self.neuron_updates[k] * self.timesteps)
            row["messages"] += float(self.messages[:, k].sum())
            row["hops"] += float(self.hops_x[:, k].sum() + self.hops_y[:, k].sum())
            row["chip hops"] += float(self.chip_hops[:, k].sum())
        return out


def estimate_cost(graph: Graph, core_map: CoreMap, spikes: dict[str, np.ndarray],
                  timesteps: int, target: Target) -> CostReport:
    """Count the chip's work for recorded spikes and turn it into time and energy.

    `spikes`: `[timesteps, batch, *shape]` per spiking layer that feeds another (as
    `simulate(...).spikes`), and the input's frames under its name (`[batch, *shape]`, the
    same every step, or `[timesteps, batch, *shape]`); without them every pixel counts as
    sent. `timesteps` is how many steps the chip runs: T for these windows; to include the
    pipeline's fill with hardware timing, pass `raw_spikes` and T + latency (and the input
    padded with zero frames).
    """
    rules = {node.name: rule_for(node) for node in graph}
    layers = list(core_map.layers.values())
    starts = np.cumsum([0] + [len(layer.cores) for layer in layers])
    first = {layer.name: int(s) for layer, s in zip(layers, starts, strict=False)}
    gx, gy = core_map.mesh_xy()
    sources = {p.source for layer in layers for p in layer.projections}
    batch, dense = _batch(graph, spikes, sources, timesteps)
    frames = {s: _frames(graph, s, spikes, batch, rules[s]) for s in sources}

    shape = (timesteps, batch, len(gx))
    synops = np.zeros(shape)
    # Per source neuron: messages one spike of it sends, and their x, y and chip hops.
    fan_out = {s: np.zeros((4, Grid.of(graph[s].type.shape).size)) for s in sources}
    route = 0.0
    for layer in layers:
        cores = slice(first[layer.name], first[layer.name] + len(layer.cores))
        starts = np.array([c.start for c in layer.cores])
        stops = np.array([c.stop for c in layer.cores])
        for proj in layer.projections:
            ops = _operations(graph[proj.synapse], proj, frames[proj.source])
            done = np.concatenate([np.zeros(ops.shape[:-1] + (1,)), np.cumsum(ops, axis=-1)],
                                  axis=-1)
            synops[:, :, cores] += done[..., stops] - done[..., starts]
        spans = [layer.grid.span(c.start, c.stop) for c in layer.cores]
        for src, projs in by_source(layer.projections).items():
            # per core: the cells it reads (a relay's: the neurons at its own neurons' indices)
            read = [np.arange(c.start, c.stop) for c in layer.cores] if projs[0].one_to_one \
                else [reads(projs, *span)[src] for span in spans]
            readers = np.repeat(np.arange(cores.start, cores.stop), [len(r) for r in read])
            counts, longest = _fan_out(core_map.layers.get(src), projs[0], first.get(src, 0),
                                       np.concatenate(read), readers, (gx, gy), target)
            fan_out[src] += counts
            route = max(route, longest)

    sent = np.zeros((4, *shape))  # messages, x hops, y hops, chip hops, at the sending core
    from_port = np.zeros((4, timesteps, batch))
    for src, weights in fan_out.items():
        home = core_map.layers.get(src)
        for t in range(timesteps):
            x = frames[src][min(t, len(frames[src]) - 1)].astype(np.float64)
            if home is None:
                from_port[:, t] = weights @ x.T
                continue
            cores = slice(first[src], first[src] + len(home.cores))
            bounds = [c.start for c in home.cores]
            for i in range(4):
                sent[i, t][:, cores] = np.add.reduceat(x * weights[i], bounds, axis=-1)

    # Neuron updates per core and step (the core map only holds neuron layers).
    neurons = np.array([c.neurons * rules[c.layer].updates for c in core_map.cores],
                       np.float64)
    busy = (synops * target.time_per_synop_s + neurons * target.time_per_neuron_update_s
            + sent[0] * target.time_per_message_s)
    step = busy.max(axis=-1, initial=0.0) + route + target.barrier_sync_s
    total = sent.sum(axis=(1, 3)) + from_port.sum(axis=1)  # [4, batch]
    energy = {
        "synops": synops.sum(axis=(0, 2)) * target.energy_per_synop_j,
        "neuron updates": np.full(batch, neurons.sum() * timesteps
                                  * target.energy_per_neuron_update_j),
        "messages": total[0] * target.energy_per_message_j,
        "hops": total[1] * target.energy_per_hop_x_j + total[2] * target.energy_per_hop_y_j,
        "chip hops": total[3] * target.energy_per_chip_hop_j,
    }
    per_core = sent.mean(axis=2)
    port = from_port.mean(axis=2)
    report = CostReport(
        timesteps=timesteps, batch=batch, core_layer=[c.layer for c in core_map.cores],
        synops=synops.mean(axis=1), neuron_updates=neurons, messages=per_core[0],
        hops_x=per_core[1], hops_y=per_core[2], chip_hops=per_core[3], busy_s=busy.mean(axis=1),
        input_messages=port[0], input_hops_x=port[1], input_hops_y=port[2],
        input_chip_hops=port[3],
        step_s=step.mean(axis=1), route_s=route, barrier_s=target.barrier_sync_s,
        latency_s=float(step.sum(axis=0).mean()),
        energy_j={k: float(v.mean()) for k, v in energy.items()}, cycle_s=target.cycle_s,
        input_assumed_dense=dense, chips=core_map.n_chips)
    report.static_energy_j = target.static_power_per_chip_w * report.chips * report.latency_s
    log.info("cost: %d cores, %.3g J and %.3g s per inference", len(neurons),
             report.dynamic_energy_j, report.latency_s)
    return report


def _batch(graph: Graph, spikes: dict[str, np.ndarray], sources: set[str],
           timesteps: int) -> tuple[int, bool]:
    """The batch size, checking every source's array; whether the input is assumed dense."""
    batch, dense = None, False
    for name in sorted(sources):
        node = graph[name]
        if name not in spikes:
            if isinstance(node, Input):
                log.warning("no frames for input %r: every pixel counts as nonzero", name)
                dense = True
                continue
            raise CostInputError(f"no spikes for layer {name!r}, which feeds other layers; "
                                 f"spikes given for {sorted(spikes)}")
        a, shape = np.asarray(spikes[name]), node.type.shape
        ok_time = a.ndim == len(shape) + 2 and a.shape[0] == timesteps
        constant = isinstance(node, Input) and a.ndim == len(shape) + 1
        if not (ok_time or constant) or a.shape[a.ndim - len(shape):] != shape:
            raise CostInputError(
                f"spikes for {name!r}: expected [timesteps={timesteps}, batch, "
                f"{', '.join(map(str, shape))}], got {list(a.shape)}; timesteps is the number "
                f"of steps the chip runs (T, or T + latency with timing='hardware')")
        b = a.shape[a.ndim - len(shape) - 1]
        if batch is not None and b != batch:
            raise CostInputError(f"spikes for {name!r} have batch {b}, others {batch}")
        batch = b
    return (1 if batch is None else batch), dense


def _frames(graph: Graph, name: str, spikes: dict[str, np.ndarray], batch: int,
            rule: CostRule) -> np.ndarray:
    """[T or 1, batch, size] in map order: 1 where a neuron (or input pixel) sends."""
    node = graph[name]
    grid = Grid.of(node.type.shape)
    if name not in spikes:
        return np.ones((1, batch, grid.size), bool)
    a = np.asarray(spikes[name])
    if isinstance(node, Input) and a.ndim == len(node.type.shape) + 1:
        a = a[None]  # one frame, the same every step
    return grid.to_map_order(rule.sends(node, a))


def _operations(synapse: FxConv2d | FxDense | FxMerge, proj: Projection,
                frames: np.ndarray) -> np.ndarray:
    """Synaptic operations per destination neuron: [T or 1, batch, dst.size] in map order,
    the sending source neurons (frames, map order) through the synapse's nonzero weights
    (a convolution or product with the 0/1 mask of its weights; exact small integers). A
    split fan-in's merged layer reads its own relay neuron: one operation per payload sent."""
    if proj.one_to_one:
        return frames.astype(np.float64)
    t, b, _ = frames.shape
    src = proj.src
    x = frames.reshape(t * b, src.height, src.width, src.channels).astype(np.float32)
    x = np.moveaxis(x, -1, 1)  # [N, C, H, W], the IR's order
    if proj.channels is not None:
        x = x[:, proj.channels[0]:proj.channels[1]]
    mask = (synapse.weight != 0).astype(np.float32)
    if isinstance(synapse, FxConv2d):
        y = kernels.conv2d(x, mask, synapse.stride, synapse.padding)  # [N, C_out, Ho, Wo]
    else:
        y = x.reshape(t * b, -1) @ mask.T
    return proj.dst.to_map_order(y.astype(np.float64)).reshape(t, b, proj.dst.size)


def _fan_out(home: LayerMap | None, proj: Projection, first: int, cells: np.ndarray,
             readers: np.ndarray, mesh: tuple[np.ndarray, np.ndarray],
             target: Target) -> tuple[np.ndarray, float]:
    """Per neuron of `proj`'s source: the messages one spike of it sends (one per core that
    reads its cell) and their x, y and chip hops, [4, size]; and the longest route (s) from a core
    holding source neurons to a core reading them. `cells[k]` is read by core `readers[k]`
    (global index); the source's cores start at global index `first` (the input port holds
    every cell, at `target.input_port_xy`); `home` is the source's layer map (None: the
    input). Time and memory grow with the pairs, not with cores x cells."""
    gx, gy = mesh
    order = np.argsort(cells, kind="stable")
    cells, readers = cells[order], readers[order]
    size = proj.src.size
    if home is None:
        holders = [(*target.input_port_xy, 0, size)]
    else:
        holders = [(gx[first + i], gy[first + i], c.start, c.stop)
                   for i, c in enumerate(home.cores)]
    out, route = np.zeros((4, size)), 0.0
    # The chip grid position of each core (the input port is on chip 0).
    cx, cy = gx // target.mesh_width, gy // target.mesh_height
    for sx, sy, start, stop in holders:  # a source core: its neurons hold cells [lo, hi]
        held, read = proj.cell_of(np.arange(start, stop))
        if not read.any():
            continue
        lo, hi = int(held[read].min()), int(held[read].max())
        a, b = np.searchsorted(cells, lo, "left"), np.searchsorted(cells, hi, "right")
        cell, reader = cells[a:b] - lo, readers[a:b]
        dx, dy = np.abs(sx - gx[reader]), np.abs(sy - gy[reader])
        dc = np.abs(sx // target.mesh_width - cx[reader]) \
            + np.abs(sy // target.mesh_height - cy[reader])
        n = hi - lo + 1
        per_cell = np.stack([np.bincount(cell, minlength=n),
                             np.bincount(cell, weights=dx, minlength=n),
                             np.bincount(cell, weights=dy, minlength=n),
                             np.bincount(cell, weights=dc, minlength=n)])
        out[:, start:stop][:, read] = per_cell[:, held[read] - lo]
        lat = dx * target.time_per_hop_x_s + dy * target.time_per_hop_y_s \
            + dc * target.time_per_chip_hop_s
        route = max(route, float(lat.max(initial=0.0)))
    return out, route


def format_cost(report: CostReport) -> str:
    """A per-layer table of work per inference, then step time, latency and energy."""
    lines = [f"{'layer':<22} {'cores':>5} {'synops':>12} {'updates':>10} {'messages':>10} "
             f"{'hops':>10} {'chip hops':>10}"]
    for name, row in report.layer_totals().items():
        lines.append(f"{format_name(name):<22} {int(row['cores']):>5} {row['synops']:>12.0f} "
                     f"{row['neuron updates']:>10.0f} {row['messages']:>10.0f} "
                     f"{row['hops']:>10.0f} {row['chip hops']:>10.0f}")
    lines.append(f"{'input port':<22} {'-':>5} {'-':>12} {'-':>10} "
                 f"{report.input_messages.sum():>10.0f} "
                 f"{report.input_hops_x.sum() + report.input_hops_y.sum():>10.0f} "
                 f"{report.input_chip_hops.sum():>10.0f}")
    step = report.step_s.mean()
    lines.append(f"per step: {step * 1e6:.3f} us ({step / report.cycle_s:.0f} cycles of "
                 f"{report.cycle_s * 1e9:g} ns), of which route {report.route_s * 1e9:.1f} ns "
                 f"and barrier {report.barrier_s * 1e9:.0f} ns; latency per sample "
                 f"{report.latency_s * 1e6:.3f} us over {report.timesteps} steps")
    parts = ", ".join(f"{k} {v * 1e9:.3f}" for k, v in report.energy_j.items())
    lines.append(f"energy per inference: dynamic {report.dynamic_energy_j * 1e6:.4f} uJ "
                 f"({parts} nJ), static {report.static_energy_j * 1e6:.4f} uJ ({report.chips} "
                 f"chip(s) idle over the latency), total {report.total_energy_j * 1e6:.4f} uJ; "
                 f"batch mean over {report.batch}")
    if report.input_assumed_dense:
        lines.append("input frames not given: every input pixel counted as sent every step")
    return "\n".join(lines)
