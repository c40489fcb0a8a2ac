"""Fixed-point fields outside Lava's widths are refused before any Lava process exists.

Each case takes a valid quantized graph, corrupts one field without going through the IR's
own checks (`Node.replace` does not re-infer, and the graph is assembled without
`Graph.build`), and expects run_fixed to raise LavaBuildError naming the layer, the field,
the bad value and the accepted range. The ranges are the widths documented in lava-nc 0.10
(PyLifModelBitAcc's docstring, weightutils' clip and truncation) and, for weight_exp, the
Loihi 2 target's; they are written out here, not read from the code under test.
"""

from types import MappingProxyType

import numpy as np
import pytest

from snnc.analyses.timing import Schedule
from snnc.backends.lava import lower, validate
from snnc.backends.lava.validate import LavaBuildError, validate_for_lava
from snnc.ir import Graph
from snnc.targets import LOIHI2
from snnc.tools.pass_runner import compile_graph

pytestmark = pytest.mark.timeout(120)
T = 3


@pytest.fixture(scope="module")
def graph(residual_graph):
    """CLIF first, LIF hard and soft, a readout: every fixed-point node type."""
    return compile_graph(residual_graph(np.random.default_rng(5), True, fc_bias=True), LOIHI2,
                         timesteps=T).graph


@pytest.fixture
def no_lava(monkeypatch):
    """Fail the test if any Lava process is created."""
    def started(*args, **kwargs):
        raise AssertionError("a Lava process was built")

    for name in ("GradedSource", "SnncNeuron"):
        monkeypatch.setattr(lower, name, started)
    monkeypatch.setattr(lower.lava_dense, "Dense", started)
    monkeypatch.setattr(lower.lava_dense, "DelayDense", started)


def corrupt(graph: Graph, layer: str, **changes) -> Graph:
    nodes = dict(graph.nodes)
    nodes[layer] = nodes[layer].replace(**changes)
    return Graph(MappingProxyType(nodes), graph.outputs)


def odd_weight(graph):
    w = graph["a"].weight.copy()
    w.flat[0] = 3 if w.min() < 0 < w.max() else 301  # odd in a mixed matrix, or > 255
    return w


CASES = [
    # layer, field, bad value (or a function of the graph), text the message must contain
    ("a", "weight", odd_weight, "is not what Lava's 8-bit Dense keeps unchanged"),
    ("b", "weight", lambda g: g["b"].weight.astype(np.float64), "weight is float64"),
    ("b", "weight_exp", 8, "weight_exp = 8 is outside the Loihi 2 range [-8, 7]"),
    ("b", "weight_exp", 2.0, "weight_exp = 2.0 (float) is not an integer"),
    ("sn_b", "dv", 4096, "dv = 4096 is outside Lava's range [0, 4095]"),
    ("sn_b", "du", -1, "du = -1 is outside Lava's range [0, 4095]"),
    ("sn_b", "vth", 1 << 17, "vth = 131072 is outside Lava's range [0, 131071]"),
    ("sn_c", "bias_mant", np.array([4096, 0, 0]),
     "bias_mant = array in [0, 4096] is outside Lava's range [-4096, 4095]"),
    ("sn_c", "bias_mant", np.array([0.5, 0.0, 0.0]), "bias_mant is an array of float64"),
    ("sn_c", "bias_exp", 8, "bias_exp = 8 is outside Lava's range [0, 7]"),
    ("sn_c", "reset_sub", 1 << 23, "reset_sub = 8388608 is outside Lava's range [0, 8388607]"),
    ("sn_a", "sig_lut", lambda g: np.full_like(g["sn_a"].sig_lut, 5000),
     "sig_lut = array in [5000, 5000] is outside Lava's range [0, 4096]"),
    ("sn_a", "reset_lut", lambda g: g["sn_a"].reset_lut.astype(np.float64),
     "reset_lut is an array of float64"),
    ("sn_a", "sig_shift", 0, "sig_shift = 0 is outside Lava's range [1, 62]"),
    ("sn_a", "m_shift", 25, "m_shift = 25 is outside Lava's range [0, 24]"),
    ("out", "dv", 1.5, "dv = 1.5 (float) is not an integer"),
    ("out", "bias_exp", True, "bias_exp = True (bool) is not an integer"),
    ("x", "bits", 25, "bits = 25 is outside Lava's range [1, 24]"),
]


@pytest.mark.parametrize("layer, field, bad, text", CASES,
                         ids=[f"{c[0]}.{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_a_bad_field_is_named_before_lava_starts(graph, no_lava, layer, field, bad, text):
    value = bad(graph) if callable(bad) else bad
    broken = corrupt(graph, layer, **{field: value})
    with pytest.raises(LavaBuildError) as err:
        lower.run_fixed(broken, np.zeros((1, 3, 5, 5)), T)
    message = str(err.value)
    assert f"layer {layer!r} ({graph[layer].op}): " in message
    assert text in message
    assert len(err.value.problems) == 1


def test_the_valid_graph_and_boundary_values_pass(graph):
    validate_for_lava(graph)
    edge = corrupt(corrupt(graph, "sn_b", dv=4095, du=0, vth=(1 << 17) - 1), "b", weight_exp=-8)
    validate_for_lava(edge)


def test_every_problem_is_listed(graph, no_lava):
    broken = corrupt(corrupt(graph, "sn_b", dv=-3), "fc", weight_exp=99)
    with pytest.raises(LavaBuildError) as err:
        lower.run_fixed(broken, np.zeros((1, 3, 5, 5)), T)
    assert len(err.value.problems) == 2
    assert "'sn_b'" in err.value.problems[0] and "'fc'" in err.value.problems[1]


def test_a_delay_beyond_lava_delaydense_is_refused(graph, monkeypatch, no_lava):
    depth = {name: 0 for name in graph.nodes}
    monkeypatch.setattr(validate, "schedule", lambda g: Schedule(depth, {("s", "sum"): 64}))
    with pytest.raises(LavaBuildError, match=r"layer 's' \(FxConv2d\): delay 64 to its neuron "
                                             r"is outside Lava's DelayDense range \[0, 63\]"):
        validate_for_lava(graph)


def test_a_float_graph_is_refused_by_run_fixed(residual_graph, no_lava):
    float_graph = residual_graph(np.random.default_rng(0))
    with pytest.raises(LavaBuildError, match="layer 'x' \\(Input\\) is not a fixed-point node"):
        lower.run_fixed(float_graph, np.zeros((1, 3, 5, 5)), T)
