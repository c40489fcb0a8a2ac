"""Graph-to-graph passes. Each lives in its own module and has the signature

    def my_pass(graph: Graph) -> PassResult

returning the new graph, whether anything changed, one log line per change (naming the
nodes involved) and, for a pass that measures what it did (quantize: name -> LayerQuant), a
`report` for the tools to keep. Passes never mutate their input (nodes are frozen); they
build a new graph with `Graph.build`, keeping node names stable so reports point at the
layers users know. `snnc.tools.pass_runner` lists them in order (`float_passes`,
then quantize in `compile_graph`) and runs them, validating the graph after each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from snnc.ir import Graph


@dataclass
class PassResult:
    graph: Graph
    changed: bool
    notes: list[str] = field(default_factory=list)
    report: Any = None


def unchanged(graph: Graph) -> PassResult:
    return PassResult(graph, False, [])
