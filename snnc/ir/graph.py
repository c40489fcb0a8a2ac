"""The graph: nodes keyed by stable names, in topological order, with explicit edges."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import networkx as nx

from snnc.errors import GraphError, ShapeError
from snnc.ir.io import Input
from snnc.ir.node import Node
from snnc.ir.structure import Add
from snnc.ir.types import TensorType


@dataclass(frozen=True, eq=False)
class Graph:
    """An immutable dataflow graph of IR nodes.

    `nodes` maps name -> node in a topological order; each node's `inputs` are its edges.
    `outputs` names the values the graph produces (by default, every node nobody reads).
    Build graphs with `Graph.build`, which orders nodes, infers every type and validates.
    """

    nodes: Mapping[str, Node]
    outputs: tuple[str, ...]

    @classmethod
    def build(cls, nodes: Iterable[Node], outputs: Sequence[str] | None = None) -> Graph:
        """Order `nodes` topologically (stable), infer their output types, and validate.

        A node whose `type` is already set must agree with the inferred one.
        """
        by_name: dict[str, Node] = {}
        for node in nodes:
            if not isinstance(node, Node):
                raise GraphError(f"graph members must be IR nodes, got {type(node).__name__}")
            if node.name in by_name:
                raise GraphError(f"duplicate node name {node.name!r}")
            by_name[node.name] = node
        _check_edges(by_name)
        typed: dict[str, Node] = {}
        for name in _topological(by_name):
            node = by_name[name]
            inferred = _infer(node, [typed[i].type for i in node.inputs])
            if node.type is not None and node.type != inferred:
                raise ShapeError(f"node {name!r} ({node.op}): declared output type "
                                 f"{node.type} but its inputs imply {inferred}")
            typed[name] = node if node.type == inferred else node.replace(type=inferred)
        if outputs is None:
            read = {i for n in typed.values() for i in n.inputs}
            outputs = [n for n in typed if n not in read]
        graph = cls(MappingProxyType(typed), tuple(outputs))
        graph.validate()
        return graph

    def validate(self) -> None:
        """Check names, edges, order, arity and every declared type against its inference."""
        _check_edges(self.nodes)
        seen: dict[str, TensorType] = {}
        for name, node in self.nodes.items():
            if name != node.name:
                raise GraphError(f"node {node.name!r} is stored under the key {name!r}")
            for edge in node.inputs:
                if edge not in seen:
                    raise GraphError(f"edge {edge!r} -> {name!r}: {edge!r} comes after "
                                     f"{name!r}; nodes must be in topological order")
            inferred = _infer(node, [seen[i] for i in node.inputs])
            if node.type != inferred:
                raise ShapeError(f"node {name!r} ({node.op}): declared output type "
                                 f"{node.type} but its inputs imply {inferred}")
            seen[name] = inferred
        if not any(isinstance(n, Input) for n in self.nodes.values()):
            raise GraphError("the graph has no Input node")
        for out in self.outputs:
            if out not in self.nodes:
                raise GraphError(f"output {out!r} is not a node of the graph")

    # -- queries ------------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise GraphError(f"no node named {name!r}; nodes: {', '.join(self.nodes)}") from None

    def __iter__(self):
        return iter(self.nodes.values())

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes.values() if isinstance(n, Input))

    def consumers(self) -> dict[str, list[str]]:
        """name -> names of the nodes that read it, in graph order."""
        readers: dict[str, list[str]] = {name: [] for name in self.nodes}
        for node in self.nodes.values():
            for edge in node.inputs:
                readers[edge].append(node.name)
        return readers

    def sum_terms(self, name: str) -> list[Node]:
        """The nodes whose values sum into `name`: down through Add nodes, their non-Add
        inputs in order (a neuron's synapses, when its input is a sum of synapses)."""
        node = self[name]
        if isinstance(node, Add):
            return [t for i in node.inputs for t in self.sum_terms(i)]
        return [node]

    def to_networkx(self) -> nx.DiGraph:
        g = nx.DiGraph()
        for node in self.nodes.values():
            g.add_node(node.name, node=node)
            g.add_edges_from((edge, node.name) for edge in node.inputs)
        return g

    def text(self) -> str:
        from snnc.ir.printer import format_graph

        return format_graph(self)

    def __str__(self) -> str:
        return self.text()


def _check_edges(nodes: Mapping[str, Node]) -> None:
    for name, node in nodes.items():
        if node.arity is None and len(node.inputs) < 2:
            raise GraphError(f"node {name!r} ({node.op}) takes two or more inputs, "
                             f"got {len(node.inputs)}: {list(node.inputs)}")
        if node.arity is not None and len(node.inputs) != node.arity:
            raise GraphError(f"node {name!r} ({node.op}) takes {node.arity} input(s), "
                             f"got {len(node.inputs)}: {list(node.inputs)}")
        for edge in node.inputs:
            if edge not in nodes:
                raise GraphError(f"edge {edge!r} -> {name!r}: no node named {edge!r}")


def _topological(nodes: Mapping[str, Node]) -> list[str]:
    g = nx.DiGraph()
    order = {name: i for i, name in enumerate(nodes)}
    g.add_nodes_from(nodes)
    g.add_edges_from((edge, n.name) for n in nodes.values() for edge in n.inputs)
    try:
        return list(nx.lexicographical_topological_sort(g, key=order.__getitem__))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(g)
        path = " -> ".join([u for u, _ in cycle] + [cycle[0][0]])
        raise GraphError(f"the graph has a cycle: {path}") from None


def _infer(node: Node, in_types: list[TensorType | None]) -> TensorType:
    try:
        return node.infer(in_types)
    except ShapeError as err:
        edges = ", ".join(f"{e!r} {t}" for e, t in zip(node.inputs, in_types, strict=True))
        raise ShapeError(f"{err} (inputs: {edges})" if edges else str(err)) from None
