"""Golden cases for the float reference simulator, one or more per node type.

Expected values are computed independently of the simulator: by hand (worked in the
comments, on dyadic numbers so float arithmetic is exact) or by a plain loop written here.
The neuron hand traces (LIF hard and soft reset, threshold ties, spikingjelly and STBP
formulas, per-channel threshold, CLIF's first step, readouts) are data in tests/cases/, run
on every backend (tests/core/test_golden_cases.py and its siblings in tests/compile and
tests/lava).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from snnc.backends.refsim import RULES, simulate
from snnc.errors import SimulationInputError, UnsupportedNodeError
from snnc.ir import (
    CLIF,
    LIF,
    NODE_TYPES,
    Add,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dense,
    Flatten,
    Graph,
    Input,
    Readout,
)
from snnc.tools.demo import sample_inputs, tiny_network


def neuron_graph(neuron, n=1):
    return Graph.build([Input(name="x", shape=(n,)), neuron])


def test_every_node_type_has_a_float_rule():
    assert set(RULES) == set(NODE_TYPES.values())


# -- neurons --------------------------------------------------------------------------------


def clif_loop(xs, tau, vth):
    """The CLIF equations of Huang et al. 2024, written out with math.exp."""
    def sig(z):
        return 1.0 / (1.0 + math.exp(-z))

    v = m = 0.0
    out = []
    for x in xs:
        h = (1 - 1 / tau) * v + x
        s = 1.0 if h >= vth else 0.0
        m = m * sig(h / tau) + s
        v = h - s * (vth + sig(m))
        out.append((s, v, m))
    return out


def test_clif_matches_the_paper_equations():
    rng = np.random.default_rng(3)
    xs = rng.uniform(-0.5, 2.0, size=(12, 5))
    g = neuron_graph(CLIF(name="n", inputs=("x",), tau=2.5, threshold=1.0), 5)
    res = simulate(g, xs[:, None, :], 12, record_states=True)
    for j in range(5):
        expected = clif_loop(xs[:, j], 2.5, 1.0)
        assert res.spikes["n"][:, 0, j].tolist() == [bool(e[0]) for e in expected]
        np.testing.assert_allclose(res.states["n"]["v"][:, 0, j], [e[1] for e in expected],
                                   rtol=0, atol=1e-12)
        np.testing.assert_allclose(res.states["n"]["m"][:, 0, j], [e[2] for e in expected],
                                   rtol=0, atol=1e-12)
    assert res.spikes["n"].any() and not res.spikes["n"].all()


# -- stateless nodes ------------------------------------------------------------------------


def through(node, x, in_shape):
    """Run one stateless node (then an IF readout of one step) and return its output."""
    g = Graph.build([Input(name="x", shape=in_shape), node,
                     Readout(name="r", inputs=(node.name,), mean=False)])
    return simulate(g, x, 1).readout["r"]


def conv_loop(x, w, b, stride, pad):
    n, c_in, h, wd = x.shape
    c_out, _, kh, kw = w.shape
    xp = np.zeros((n, c_in, h + 2 * pad[0], wd + 2 * pad[1]))
    xp[:, :, pad[0]:pad[0] + h, pad[1]:pad[1] + wd] = x
    ho = (h + 2 * pad[0] - kh) // stride[0] + 1
    wo = (wd + 2 * pad[1] - kw) // stride[1] + 1
    out = np.zeros((n, c_out, ho, wo))
    for s in range(n):
        for o in range(c_out):
            for i in range(ho):
                for j in range(wo):
                    acc = b[o]
                    for c in range(c_in):
                        for p in range(kh):
                            for q in range(kw):
                                pixel = xp[s, c, stride[0] * i + p, stride[1] * j + q]
                                acc += w[o, c, p, q] * pixel
                    out[s, o, i, j] = acc
    return out


@pytest.mark.parametrize("stride, pad", [((1, 1), (0, 0)), ((2, 1), (1, 2)), ((2, 2), (1, 1))])
def test_conv2d_against_a_plain_loop(stride, pad):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (2, 3, 7, 6)).astype(float)
    w = rng.normal(size=(4, 3, 3, 2))
    b = rng.normal(size=4)
    got = through(Conv2d(name="c", inputs=("x",), weight=w, bias=b, stride=stride, padding=pad),
                  x, (3, 7, 6))
    np.testing.assert_allclose(got, conv_loop(x, w, b, stride, pad), rtol=0, atol=1e-12)


def test_dense_against_a_plain_loop():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 5))
    w = rng.normal(size=(4, 5))
    b = rng.normal(size=4)
    expected = [[b[o] + sum(w[o, i] * x[s, i] for i in range(5)) for o in range(4)]
                for s in range(3)]
    got = through(Dense(name="d", inputs=("x",), weight=w, bias=b), x, (5,))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_batch_norm_elementwise():
    x = np.array([[[[1.0, 2.0]], [[3.0, -1.0]]]])  # [1, 2, 1, 2]
    mean, var = np.array([1.0, 0.5]), np.array([3.0, 0.0])
    w, b, eps = np.array([2.0, -1.0]), np.array([0.5, 0.25]), 1.0
    # channel 0: 2*(x-1)/sqrt(4)+.5 -> x=1: .5, x=2: 1.5
    # channel 1: -(x-.5)/1+.25 -> x=3: -2.25, x=-1: 1.75
    got = through(BatchNorm(name="b", inputs=("x",), mean=mean, var=var, weight=w, bias=b, eps=eps),
                  x, (2, 1, 2))
    assert got.tolist() == [[[[0.5, 1.5]], [[-2.25, 1.75]]]]


def test_avg_pool_with_padding_counts_zeros():
    x = np.arange(16, dtype=float).reshape(1, 1, 4, 4)
    got = through(AvgPool2d(name="p", inputs=("x",), kernel=(2, 2), stride=(2, 2), padding=(1, 1)),
                  x, (1, 4, 4))
    # padded grid 6x6; windows at rows 0-1, 2-3, 4-5. Top-left window holds only x[0,0] = 0
    # plus three zeros; the centre window holds x[1:3, 1:3] = 5, 6, 9, 10.
    assert got.shape == (1, 1, 3, 3)
    assert got[0, 0, 0, 0] == 0.0 / 4
    assert got[0, 0, 1, 1] == (5 + 6 + 9 + 10) / 4
    assert got[0, 0, 2, 2] == 15 / 4
    assert got[0, 0, 0, 2] == 3 / 4


def test_flatten_is_row_major():
    x = np.arange(12, dtype=float).reshape(1, 3, 2, 2)
    got = through(Flatten(name="f", inputs=("x",)), x, (3, 2, 2))
    assert got[0].tolist() == [float(c * 4 + i * 2 + j) for c in range(3) for i in range(2)
                               for j in range(2)]


def test_add_sums_all_inputs():
    g = Graph.build([
        Input(name="x", shape=(2,)),
        Dense(name="a", inputs=("x",), weight=np.eye(2)),
        Dense(name="b", inputs=("x",), weight=2 * np.eye(2)),
        Add(name="s", inputs=("a", "b", "x")),
        Readout(name="r", inputs=("s",), mean=False),
    ])
    assert simulate(g, np.array([[1.0, -2.0]]), 1).readout["r"].tolist() == [[4.0, -8.0]]


# -- the simulator as a whole ---------------------------------------------------------------


def test_direct_encoding_equals_the_repeated_frame():
    g = tiny_network()
    x = sample_inputs(6)
    a = simulate(g, x, 5)
    b = simulate(g, np.broadcast_to(x, (5,) + x.shape).copy(), 5)
    for name in a.spikes:
        assert np.array_equal(a.spikes[name], b.spikes[name])
    np.testing.assert_array_equal(a.readout["out"], b.readout["out"])


def test_batched_run_equals_one_sample_at_a_time():
    g = tiny_network()
    x = sample_inputs(5, seed=2)
    batched = simulate(g, x, 4)
    for i in range(5):
        single = simulate(g, x[i : i + 1], 4)
        for name in batched.spikes:
            assert np.array_equal(batched.spikes[name][:, i], single.spikes[name][:, 0]), name


def test_result_shapes_and_spiking_layers():
    res = simulate(tiny_network(), sample_inputs(3), 4, record_states=True)
    assert set(res.spikes) == {"sn1", "sn2"}
    assert res.spikes["sn1"].shape == (4, 3, 4, 8, 8) and res.spikes["sn1"].dtype == bool
    assert res.readout["out"].shape == (3, 10)
    assert res.states["sn1"]["v"].shape == (4, 3, 4, 8, 8)
    assert 0 < res.spikes["sn1"].mean() < 1  # the demo network is neither silent nor saturated


def test_states_are_recorded_for_the_named_layers_only():
    x = sample_inputs(3)
    every = simulate(tiny_network(), x, 4, record_states=True)
    some = simulate(tiny_network(), x, 4, record_states=["sn2", "out"])
    assert set(every.states) == {"sn1", "sn2", "out"} and set(some.states) == {"sn2", "out"}
    for name in some.states:
        for var, values in some.states[name].items():
            np.testing.assert_array_equal(values, every.states[name][var])
    assert not simulate(tiny_network(), x, 4).states


def test_float32_mode_agrees_on_the_demo():
    x = sample_inputs(4)
    a = simulate(tiny_network(), x, 4)
    b = simulate(tiny_network(), x, 4, dtype=np.float32)
    np.testing.assert_allclose(a.readout["out"], b.readout["out"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("inputs, timesteps, message", [
    (np.zeros((2, 1, 8, 7)), 4, r"input 'x': expected an array shaped \[batch, 1, 8, 8\]"),
    (np.zeros((3, 2, 1, 8, 8)), 4, r"input 'x': has 3 time steps but timesteps=4"),
    (np.full((1, 1, 8, 8), np.nan), 4, r"input 'x': contains NaN"),
    (np.zeros((1, 1, 8, 8)), 0, r"timesteps must be a positive integer, got 0"),
    ({"y": np.zeros((1, 1, 8, 8))}, 4, r"the graph's inputs are \['x'\]"),
    (np.array([["a"]]), 4, r"dtype <U1 is not numeric"),
])
def test_bad_inputs_are_named(inputs, timesteps, message):
    with pytest.raises(SimulationInputError, match=message):
        simulate(tiny_network(), inputs, timesteps)


def test_spike_inputs_must_be_binary():
    g = Graph.build([Input(name="x", shape=(2,), encoding="spikes"),
                     LIF(name="n", inputs=("x",), decay=1.0, threshold=0.5)])
    with pytest.raises(SimulationInputError, match="only 0 and 1"):
        simulate(g, np.array([[0.5, 1.0]]), 2)
    assert simulate(g, np.array([[0, 1]]), 2).spikes["n"][:, 0].tolist() == [[False, True]] * 2


def test_unknown_node_type_is_named(monkeypatch):
    monkeypatch.delitem(RULES, Flatten)
    message = r"node 'flat' of type Flatten; supported types: "
    with pytest.raises(UnsupportedNodeError, match=message):
        simulate(tiny_network(), sample_inputs(1), 2)


def test_dense_reads_a_multi_dimensional_input_row_major():
    x = np.arange(12, dtype=float).reshape(1, 3, 2, 2)
    w = np.zeros((1, 12))
    w[0, 7] = 1.0  # element 7 in row-major order: c=1, i=1, j=1 -> value 7
    assert through(Dense(name="d", inputs=("x",), weight=w), x, (3, 2, 2)).tolist() == [[7.0]]
