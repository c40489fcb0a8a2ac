"""Graph-to-graph passes. Each lives in its own module and has the signature

    def my_pass(graph: Graph) -> PassResult

returning the new graph, whether anything changed, and one log line per change (naming the
nodes involved). Passes never mutate their input (nodes are frozen); they build a new graph
with `Graph.build`, keeping node names stable so reports point at the layers users know.
The pipeline that lists them in order is `snnc.tools.pipeline`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snnc.ir import Graph


@dataclass
class PassResult:
    graph: Graph
    changed: bool
    notes: list[str] = field(default_factory=list)


def unchanged(graph: Graph) -> PassResult:
    return PassResult(graph, False, [])
