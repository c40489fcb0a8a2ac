"""Give every neuron and every Add synaptic inputs, inserting identity synapses where needed.

The chip's neurons integrate synaptic currents and its adders sum them; neither can take raw
spikes, graph inputs or pooled values. So every input of an Add or a neuron (LIF, CLIF,
Readout) that is not a Conv2d, a Dense or another Add gets an identity synapse:

    (C, H, W) values:  Conv2d, weight[o, c, 0, 0] = [o == c], stride 1, padding 0
    (C,) values:       Dense,  weight[o, c] = [o == c]

Both compute y = x exactly (every output sums one product by 1 and zeros), so spikes do not
change. The synapse inserted for input `src` of node `n` is named "n/src". Values of other
ranks, and BatchNorm outputs (which a folding pass removes earlier), are left with a note.
"""

from __future__ import annotations

import logging

import numpy as np

from snnc.ir import Add, BatchNorm, Conv2d, Dense, Graph, Neuron, Node
from snnc.passes import PassResult

log = logging.getLogger(__name__)

#: What a neuron or an Add may read on the chip.
SYNAPTIC = (Conv2d, Dense, Add)


def materialize_shortcuts(graph: Graph) -> PassResult:
    """Insert an identity synapse before every non-synaptic input of an Add or a neuron."""
    taken = set(graph.nodes)
    out: list[Node] = []
    notes: list[str] = []
    for node in graph.nodes.values():
        if not isinstance(node, Add | Neuron):
            out.append(node)
            continue
        inserted: dict[str, str] = {}  # src -> its synapse, shared when an Add reads src twice
        for src in dict.fromkeys(node.inputs):
            value = graph[src]
            if isinstance(value, SYNAPTIC):
                continue
            if isinstance(value, BatchNorm):
                notes.append(f"left {node.op} {node.name!r} reading BatchNorm {src!r}: "
                             "fold batch norm first")
                continue
            synapse = identity_synapse(_fresh(f"{node.name}/{src}", taken), value)
            if synapse is None:
                notes.append(f"left {node.op} {node.name!r} reading {value.op} {src!r}: no "
                             f"identity synapse for shape {value.type.shape}; accepted: "
                             "(C, H, W) or (C,)")
                continue
            taken.add(synapse.name)
            inserted[src] = synapse.name
            out.append(synapse)
            notes.append(f"inserted identity {synapse.op} {synapse.name!r} between "
                         f"{value.op} {src!r} and {node.op} {node.name!r}")
        out.append(node.replace(inputs=tuple(inserted.get(i, i) for i in node.inputs))
                   if inserted else node)
    for note in notes:
        log.debug(note)
    if len(out) == len(graph.nodes):
        return PassResult(graph, False, notes)
    return PassResult(Graph.build(out, graph.outputs), True, notes)


def identity_synapse(name: str, value: Node) -> Node | None:
    """A synapse reading `value` whose output equals it, or None for unsupported ranks."""
    shape = value.type.shape
    if len(shape) == 3:
        eye = np.eye(shape[0]).reshape(shape[0], shape[0], 1, 1)
        return Conv2d(name=name, inputs=(value.name,), weight=eye)
    if len(shape) == 1:
        return Dense(name=name, inputs=(value.name,), weight=np.eye(shape[0]))
    return None


def _fresh(name: str, taken: set[str]) -> str:
    """`name`, or `name~2`, `name~3`, ... if a node already uses it."""
    candidate, i = name, 1
    while candidate in taken:
        i += 1
        candidate = f"{name}~{i}"
    return candidate
