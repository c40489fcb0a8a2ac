"""The convolution process (backends/lava/models/conv.py, SnncConv) equals the reference
simulator at every layer and step: fixed_pt bit for bit against the hardware-timed record,
floating_pt spike for spike against the float graph's. Geometries the residual graphs of
test_lava_equivalence.py do not reach: kernels 1 to 5 (even and non-square), strides 1 to 3,
padding 0 to 2, channels that differ in and out, graded input into a strided convolution,
a convolution of spikes with a delay (a shortcut balanced against a longer branch).
"""

from __future__ import annotations

import numpy as np
import pytest

from snnc.backends.lava import lower
from snnc.backends.refsim import simulate
from snnc.ir import LIF, Add, Conv2d, Dense, Graph, Input, Readout
from snnc.targets import LOIHI2
from snnc.tools.pass_runner import compile_graph

pytestmark = pytest.mark.timeout(300)
T = 3

GEOMETRIES = {  # (kernel, stride, padding) of conv a (graded input) and conv b (spikes)
    "k3s2p1-k1s1p0": (((3, 3), (2, 2), (1, 1)), ((1, 1), (1, 1), (0, 0))),
    "k5s1p2-k2s2p0": (((5, 5), (1, 1), (2, 2)), ((2, 2), (2, 2), (0, 0))),
    "k1s3p0-k3s1p1": (((1, 1), (3, 3), (0, 0)), ((3, 3), (1, 1), (1, 1))),
    "k2x3s1p0-k3x1s2p1": (((2, 3), (1, 1), (0, 0)), ((3, 1), (2, 1), (1, 0))),
}


def graph_of(rng: np.random.Generator, a, b, c_in=3, c_mid=4, c_out=5, size=9) -> Graph:
    """x -> conv a -> sn_a -> conv b -> sn_b -> fc -> readout, and conv s (1x1 on sn_a's
    output, the geometry of conv b's output) added at sn_b: a shortcut one hop shorter than
    conv b, so it waits (a delayed SnncConv) when b's kernel keeps the shape."""
    def conv(name, src, cin, cout, geometry):
        (kh, kw), stride, padding = geometry
        return Conv2d(name=name, inputs=(src,), weight=rng.normal(0, 0.6, (cout, cin, kh, kw)),
                      bias=rng.normal(0.15, 0.1, cout), stride=stride, padding=padding)

    nodes = [Input(name="x", shape=(c_in, size, size)), conv("a", "x", c_in, c_mid, a),
             LIF(name="sn_a", inputs=("a",), decay=0.8, threshold=0.5, reset="soft"),
             conv("b", "sn_a", c_mid, c_out, b)]
    g = Graph.build(nodes)
    _, h, w = g["b"].type.shape
    _, ha, wa = g["sn_a"].type.shape
    sum_in = "b"
    if b[1] == (1, 1) and (h, w) == (ha, wa):
        nodes.append(conv("s", "sn_a", c_mid, c_out, ((1, 1), (1, 1), (0, 0))))
        nodes.append(Add(name="sum", inputs=("b", "s")))
        sum_in = "sum"
    nodes += [LIF(name="sn_b", inputs=(sum_in,), decay=0.9, threshold=0.6),
              Dense(name="fc", inputs=("sn_b",), weight=rng.normal(0, 0.5, (4, c_out * h * w)),
                    bias=None),
              Readout(name="out", inputs=("fc",))]
    return Graph.build(nodes)


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_conv_process_matches_the_reference_simulator(name, hardware_record):
    rng = np.random.default_rng(sorted(GEOMETRIES).index(name))
    float_graph = graph_of(rng, *GEOMETRIES[name])
    graph = compile_graph(float_graph, LOIHI2, timesteps=T).graph
    x = rng.random((12, 3, 9, 9))
    expected = hardware_record(graph, x, T)
    got = lower.run_fixed(graph, x, T)
    assert {n: int((got[n] != expected[n]).sum()) for n in expected} == \
        dict.fromkeys(expected, 0)
    assert 0.05 < expected["sn_a"].mean() < 0.95 and 0.05 < expected["sn_b"].mean() < 0.95

    floats = lower.run_float(float_graph, x, T)
    zero = simulate(float_graph, x, T)
    depth = lower.make_plan(float_graph, T, 12).depth
    for layer in ("sn_a", "sn_b"):
        window = floats[layer][depth[layer]:depth[layer] + T]
        assert np.array_equal(window.astype(bool), zero.spikes[layer]), layer


def test_the_process_holds_the_kernel_not_a_dense_matrix():
    """Memory proportional to weights and neurons: a 128-channel 32x32 layer (a ResNet-19
    block) builds with its 147,456 weights, not the 17 G-entry dense matrix."""
    rng = np.random.default_rng(0)
    g = Graph.build([Input(name="x", shape=(128, 32, 32)),
                     Conv2d(name="c", inputs=("x",), weight=rng.normal(size=(128, 128, 3, 3)),
                            bias=None, padding=(1, 1))])
    proc = lower.conv_process(g["c"], g["x"], delay=2)
    assert proc.weights.shape == (128, 128, 3, 3)
    assert proc.a_buff.shape == (128 * 32 * 32, 3)
    assert proc.s_in.shape == (128 * 32 * 32,) and proc.a_out.shape == (128 * 32 * 32,)
