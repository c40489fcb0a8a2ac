"""Drop nodes that no graph output depends on (what folding leaves behind)."""

from __future__ import annotations

from snnc.ir import Graph, Input
from snnc.passes import PassResult, unchanged


def canonicalize(graph: Graph) -> PassResult:
    live: set[str] = set()
    stack = list(graph.outputs)
    while stack:
        name = stack.pop()
        if name not in live:
            live.add(name)
            stack.extend(graph[name].inputs)
    dead = [n for n, node in graph.nodes.items()
            if n not in live and not isinstance(node, Input)]
    if not dead:
        return unchanged(graph)
    kept = [node for n, node in graph.nodes.items() if n not in dead]
    return PassResult(Graph.build(kept, graph.outputs), True,
                      [f"removed {', '.join(dead)} (no output depends on them)"])
