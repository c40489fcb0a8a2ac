"""Split the synapses of neurons that read more input axons than one core accepts.

The core mapper (analyses/mapping.py) first spreads a layer's neurons over more cores, each
core receiving every input its neurons read; that fails only when one neuron's inputs alone
exceed a core's `max_input_axons_per_core` (or its memory). For such a layer this pass splits
synapses, largest first, into groups of input channels whose partial sums are computed by
relay neurons on other cores and delivered to the layer as graded spikes (snnc/ir/split.py):

    W (exponent e) reading s   ->   P_g = W[:, group g] @ s[group g]   (exponent 0)
                                     a   = (sum_g P_g) << e             (FxMerge, named as W)

Exact: sum_g P_g = W @ s in integers and the exponent is applied once, to the whole sum, so
every neuron's input is the unsplit one bit for bit; range analysis checks each P_g fits the
graded payload. A synapse is cut into the fewest groups of whole input channels (balanced)
that each fit a core's axon and memory limits; synapses are split until the neuron's own
axons (its unsplit synapses', plus one per relay: each neuron reads its own relay neuron)
fit. What still does not fit is left for the mapper to report.

Names: the group g of synapse `n` reads FxChannelSlice `n/in<g>` through `n/part<g>` into
relays `n/sum<g>`; the FxMerge keeps the name `n`, so the Adds and neurons reading it are
unchanged. With hardware timing the merge is one more hop, balanced like a shortcut.
"""

from __future__ import annotations

import logging

import numpy as np

from snnc.analyses.mapping import (
    channel_demand,
    layer_projections,
    neuron_demand,
    neuron_limits,
)
from snnc.ir import (
    FxChannelSlice,
    FxConv2d,
    FxDense,
    FxMerge,
    FxNeuron,
    FxPartialSum,
    Graph,
    Node,
)
from snnc.passes import PassResult
from snnc.passes.shortcuts import _fresh
from snnc.targets import Target

log = logging.getLogger(__name__)


def split_fan_in(graph: Graph, target: Target) -> PassResult:
    """The graph with every over-wide neuron layer's largest synapses split into partial sums."""
    splits: dict[str, list[tuple[int, int]]] = {}  # synapse -> its channel groups
    notes: list[str] = []
    for node in graph:
        if isinstance(node, FxNeuron):
            found, note = _plan_layer(graph, node, target)
            splits.update(found)
            if note:
                notes.append(note)
    if not splits:
        return PassResult(graph, False, notes)
    taken = set(graph.nodes)
    out: list[Node] = []
    for node in graph:
        if node.name in splits:
            out += _split_synapse(node, graph[node.inputs[0]], splits[node.name], taken)
        else:
            out.append(node)
    for note in notes:
        log.info(note)
    return PassResult(Graph.build(out, graph.outputs), True, notes)


def _plan_layer(graph: Graph, node: FxNeuron, target: Target
                ) -> tuple[dict[str, list[tuple[int, int]]], str | None]:
    """The groups to split `node`'s synapses into ({} when it fits) and a note on the split."""
    axon_limit, synapse_limit = neuron_limits(target)
    projections = layer_projections(graph, node.name)

    def widest(projs) -> tuple[int, int]:  # one neuron's axons and synapses (or entries)
        return neuron_demand(projs, graph, target)

    axons, fan = widest(projections)
    if axons <= axon_limit and fan <= synapse_limit:
        return {}, None
    by_name = {p.synapse: p for p in projections}
    order = sorted((p for p in projections if isinstance(graph[p.synapse], FxConv2d | FxDense)
                    and p.channels is None),
                   key=lambda p: widest([p]), reverse=True)
    kept, groups = list(projections), {}
    for proj in order:
        relays = sum(len(g) for g in groups.values())
        kept_axons, kept_synapses = widest(kept)
        if kept_axons + relays <= axon_limit and kept_synapses + relays <= synapse_limit:
            break
        found = _groups(proj, channel_demand(proj, graph, target), axon_limit, synapse_limit)
        if found is None:
            continue
        groups[proj.synapse] = found
        kept.remove(by_name[proj.synapse])
    relays = sum(len(g) for g in groups.values())
    after = widest(kept)[0] + relays
    where = f"layer {node.name!r} ({node.op})"
    if not groups:
        return {}, f"{where}: {axons} input axons per neuron; no synapse splits into channel " \
                   "groups that fit a core (the mapper reports it)"
    parts = ", ".join(f"{name!r} into {len(g)}" for name, g in groups.items())
    return groups, (f"{where}: one neuron read {axons} input axons ({fan} synapses), more than "
                    f"a core of {target.name} accepts ({axon_limit} axons, {synapse_limit} "
                    f"synapses); split {parts} partial sums: now {after} axons")


def _groups(proj, per_channel: tuple[int, int] | None, axon_limit: int,
            synapse_limit: int) -> list[tuple[int, int]] | None:
    """The fewest balanced groups of whole source channels whose partial sums fit a core:
    [(start, stop)], or None when one channel alone does not fit (or splitting cannot help)."""
    if per_channel is None:
        return None
    channels = proj.src.channels
    per_channel_axons, per_channel_synapses = per_channel
    if per_channel_axons > axon_limit or per_channel_synapses > synapse_limit:
        return None
    width = min(axon_limit // max(per_channel_axons, 1),
                synapse_limit // max(per_channel_synapses, 1))
    count = -(-channels // width)
    if count < 2:
        return None
    bounds = np.linspace(0, channels, count + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _split_synapse(node: FxConv2d | FxDense, src: Node, groups: list[tuple[int, int]],
                   taken: set[str]) -> list[Node]:
    """FxChannelSlice -> partial synapse -> FxPartialSum per group, then the FxMerge named as
    the synapse."""
    out: list[Node] = []
    relays = []
    w = node.weight
    for g, (lo, hi) in enumerate(groups):
        names = [_fresh(f"{node.name}/{part}{g}", taken) for part in ("in", "part", "sum")]
        taken.update(names)
        sliced, part, relay = names
        out.append(FxChannelSlice(name=sliced, inputs=(src.name,), start=lo, stop=hi))
        if isinstance(node, FxConv2d):
            out.append(FxConv2d(name=part, inputs=(sliced,), weight=w[:, lo:hi],
                                stride=node.stride, padding=node.padding, weight_exp=0))
        else:  # the columns of channels [lo, hi) of the flattened (C, ...) source
            per = int(np.prod(src.type.shape[1:]))
            out.append(FxDense(name=part, inputs=(sliced,), weight=w[:, lo * per:hi * per],
                               weight_exp=0))
        out.append(FxPartialSum(name=relay, inputs=(part,)))
        relays.append(relay)
    out.append(FxMerge(name=node.name, inputs=tuple(relays), weight_exp=node.weight_exp))
    return out
