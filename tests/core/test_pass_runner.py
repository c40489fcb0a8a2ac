"""The pass runner: validation after every pass, and debug mode naming a pass that changed
spikes (with the passes before it)."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.errors import GraphError
from snnc.ir import Conv2d, Graph
from snnc.passes import PassResult, unchanged
from snnc.targets import FLOAT, LOIHI2
from snnc.tools.demo import tiny_network
from snnc.tools.pass_runner import PassError, compile_graph, float_passes, run_passes


def scale_conv(graph: Graph) -> PassResult:
    """A wrong 'optimisation': doubles the first conv's weights."""
    nodes = [n.replace(weight=2 * n.weight) if isinstance(n, Conv2d) else n for n in graph]
    return PassResult(Graph.build(nodes, graph.outputs), True, ["doubled conv1"])


def broken(graph: Graph) -> PassResult:
    raise GraphError("node 'x': something impossible")


def test_debug_mode_names_the_pass_that_changed_spikes():
    passes = [("canonicalize", unchanged), ("scale_conv", scale_conv)]
    with pytest.raises(PassError, match=r"pass scale_conv changed \d+ spikes in layer 'sn1' "
                                        r"\(passes before it: canonicalize\)"):
        run_passes(tiny_network(), passes, debug=True)
    graph, records = run_passes(tiny_network(), passes)  # without debug it is not checked
    assert [r.name for r in records] == ["canonicalize", "scale_conv"]


def test_a_failing_pass_is_named_with_its_predecessors():
    with pytest.raises(PassError, match=r"pass broken failed \(passes before it: "
                                        r"canonicalize\): node 'x': something impossible"):
        run_passes(tiny_network(), [("canonicalize", unchanged), ("broken", broken)])


def test_the_float_pipeline_keeps_every_spike_on_the_demo_network():
    graph, records = run_passes(tiny_network(), float_passes(), debug=True)
    assert [r.name for r in records] == ["canonicalize", "fold_batchnorm",
                                         "materialize_shortcuts", "fold_pooling", "cleanup"]
    assert {n.op for n in graph} == {"Input", "Conv2d", "LIF", "Dense", "Readout"}


def test_compile_graph_for_each_target():
    compiled = compile_graph(tiny_network(), FLOAT, timesteps=4)
    assert compiled.graph is compiled.reference and not compiled.layers
    fixed = compile_graph(tiny_network(), LOIHI2, timesteps=4,
                          calibration=np.full((2, 1, 8, 8), 0.5))
    # quantize, then the fan-in split, which has nothing to split on loihi2 here
    assert [r.name for r in fixed.records[-2:]] == ["quantize", "split_fan_in"]
    assert not fixed.records[-1].changed
    assert fixed.graph["x"].scale == 255 / 0.5  # calibrated input range
    assert set(fixed.layers) >= {"conv1", "sn1", "fc1", "sn2", "fc2", "out"}
