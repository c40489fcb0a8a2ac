"""A NIR graph as one flat, ordered list of leaf nodes: nested NIRGraph nodes inlined, edges
checked, cycles refused, every node's input shape inferred from the Input node.

NIR sums the values on a node's incoming edges (nirtorch does the same); a subgraph is
entered through its one Input node and left through its one Output node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from snnc.frontends.nir.reader import NirError, NirNode

#: A subgraph's own Input and Output nodes, kept as pass-throughs once inlined.
PASS = "_pass"


@dataclass
class Flat:
    """Leaf nodes by dotted path in topological order, what each reads, the top Input and
    the nodes feeding the top Output nodes, and each node's input shape."""

    nodes: dict[str, NirNode]
    reads: dict[str, list[str]]
    input: str
    outputs: list[str]
    readers: dict[str, list[str]] = field(default_factory=dict)


def flatten(top: NirNode) -> Flat:
    nodes: dict[str, NirNode] = {}
    edges: list[tuple[str, str]] = []
    _inline(top, "", nodes, edges, top=True)
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    for a, b in edges:
        g.add_edge(a, b)
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise NirError(f"the NIR graph has a cycle: {path}; recurrent connections have no "
                       "IR form (each node reads only earlier values of the same step)")
    order = {n: i for i, n in enumerate(nodes)}
    topo = list(nx.lexicographical_topological_sort(g, key=order.__getitem__))
    reads = {n: [a for a, b in edges if b == n] for n in topo}
    readers = {n: [b for a, b in edges if a == n] for n in topo}
    inputs = [n for n in topo if nodes[n].type == "Input"]
    roots = [n for n in topo if not reads[n]]
    if not inputs and len(roots) == 1:  # no Input node: the root reads the graph's input,
        name = "input"                  # shaped by --input-shape
        while name in nodes:
            name += "_"
        nodes[name] = NirNode(name, "Input")
        topo.insert(0, name)
        reads[name], readers[name] = [], [roots[0]]
        reads[roots[0]] = [name]
        inputs = [name]
    if len(inputs) != 1:
        raise NirError(f"the NIR graph has {len(inputs)} Input nodes "
                       f"({', '.join(map(repr, inputs)) or 'none'}); snnc compiles graphs "
                       "with exactly one")
    for n in topo:
        if nodes[n].type != "Input" and not reads[n]:
            raise NirError(f"{nodes[n].where()} has no incoming edge; every node but the "
                           "Input must read another")
        if nodes[n].type == "Input" and reads[n]:
            raise NirError(f"{nodes[n].where()} has incoming edges")
    outputs = [n for n in topo if nodes[n].type == "Output"]
    if not outputs:
        raise NirError("the NIR graph has no Output node")
    for n in outputs:
        if readers[n]:
            raise NirError(f"{nodes[n].where()} is read by {readers[n][0]!r}")
    return Flat({n: nodes[n] for n in topo}, reads, inputs[0], outputs, readers)


def _inline(graph: NirNode, prefix: str, nodes: dict[str, NirNode],
            edges: list[tuple[str, str]], top: bool) -> tuple[str, str]:
    """Add `graph`'s leaves under `prefix`; return (entry, exit) paths of a subgraph."""
    entry: dict[str, str] = {}
    exit_: dict[str, str] = {}
    for key, node in graph.nodes.items():
        path = f"{prefix}{key}"
        if node.type == "NIRGraph":
            entry[key], exit_[key] = _inline(node, f"{path}.", nodes, edges, top=False)
            continue
        if not top and node.type in ("Input", "Output"):
            node = NirNode(node.path, PASS, node.fields)
        if path in nodes:
            raise NirError(f"{node.where()}: its path {path!r} is also a node inside a "
                           "subgraph; rename one of them")
        nodes[path] = node
        entry[key] = exit_[key] = path
    for a, b in graph.edges:
        for end in (a, b):
            if end not in graph.nodes:
                raise NirError(f"edge ({a!r}, {b!r}) in {graph.where()}: no node {end!r}; "
                               f"nodes: {', '.join(graph.nodes)}")
        edges.append((exit_[a], entry[b]))
    if top:
        return "", ""
    ins = [k for k, n in graph.nodes.items() if n.type == "Input"]
    outs = [k for k, n in graph.nodes.items() if n.type == "Output"]
    if len(ins) != 1 or len(outs) != 1:
        raise NirError(f"subgraph {graph.where()} has {len(ins)} Input and {len(outs)} "
                       "Output nodes; a nested graph needs exactly one of each")
    return f"{prefix}{ins[0]}", f"{prefix}{outs[0]}"


def declared_shape(node: NirNode, key: str) -> tuple[int, ...] | None:
    """A shape field as a tuple of positive ints, or None when absent or empty."""
    value = node.fields.get(key)
    if isinstance(value, dict):
        value = value.get("input")
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.ndim > 1:
        raise NirError(f"{node.where(key)}: expected a list of sizes, got {value!r}")
    if arr.size == 0:
        return None
    dims = tuple(int(d) for d in arr.ravel())
    if any(d <= 0 or d != v for d, v in zip(dims, arr.ravel(), strict=True)):
        raise NirError(f"{node.where(key)}: expected positive integer sizes, got {list(arr)}")
    return dims
