"""canonicalize is dead-node elimination and nothing else: what it removes, what it keeps
(unused inputs, the order of the rest), and that a graph without dead nodes is unchanged."""

from __future__ import annotations

import numpy as np

from snnc.ir import LIF, Dense, Graph, Input
from snnc.passes.canonicalize import canonicalize


def test_canonicalize_removes_only_what_no_output_depends_on():
    w = np.ones((2, 3))
    graph = Graph.build([
        Input(name="x", shape=(3,)),
        Input(name="unused", shape=(3,)),
        Dense(name="dead", inputs=("x",), weight=w),
        LIF(name="dead_sn", inputs=("dead",), decay=0.5, threshold=1.0),
        Dense(name="fc", inputs=("x",), weight=w),
        LIF(name="sn", inputs=("fc",), decay=0.5, threshold=1.0),
    ], outputs=("sn",))
    result = canonicalize(graph)
    assert result.changed and list(result.graph.nodes) == ["x", "unused", "fc", "sn"]
    assert result.notes == ["removed dead, dead_sn (no output depends on them)"]
    again = canonicalize(result.graph)
    assert not again.changed and again.graph is result.graph
