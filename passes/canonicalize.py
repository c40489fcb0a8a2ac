"""Dead-node elimination: drop every node that no graph output depends on.

That is all the pipeline's `canonicalize` step does; the step keeps its name (pass
records, artifacts' metadata and `snnc compile --dump-ir` cite it). It runs first, on the
traced graph, and again as `cleanup` after folding, which orphans the batch norms, pooling
and shortcut nodes it folded away. Inputs stay even when unused, so the graph keeps the
signature it was traced with. Nothing else changes: no node is reordered, renamed, merged
or simplified.
"""

from __future__ import annotations

from snnc.ir import Graph, Input
from snnc.passes import PassResult, unchanged


def canonicalize(graph: Graph) -> PassResult:
    """`graph` without the non-Input nodes no output depends on, the others in their order."""
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
