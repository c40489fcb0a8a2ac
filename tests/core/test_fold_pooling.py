"""Tests for fold_pooling and materialize_shortcuts: hand-checked folds, then random networks
simulated before and after each pass (no spike may change, readouts agree to 1e-9)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snnc.backends.refsim import simulate
from snnc.backends.refsim.kernels import conv2d
from snnc.ir import (
    LIF,
    Add,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dense,
    Flatten,
    Graph,
    Input,
    Neuron,
    Readout,
)
from snnc.passes.fold_pooling import fold_pooling
from snnc.passes.shortcuts import materialize_shortcuts


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


def pool(name, src, k=2, s=None, p=0):
    """AvgPool2d; k, s, p are numbers (square) or (rows, columns) pairs."""
    return AvgPool2d(name=name, inputs=(src,), kernel=pair(k), stride=pair(s or k), padding=pair(p))


def lif(name, src, gain=1.0):
    return LIF(name=name, inputs=(src,), decay=0.7, threshold=1.0, gain=gain)


def assert_equivalent(before: Graph, after: Graph, x: np.ndarray, steps: int) -> None:
    a, b = simulate(before, x, steps), simulate(after, x, steps)
    assert a.spikes.keys() == b.spikes.keys()
    for name in a.spikes:
        assert np.array_equal(a.spikes[name], b.spikes[name]), name
    for name in a.readout:
        np.testing.assert_allclose(b.readout[name], a.readout[name], rtol=1e-9, atol=1e-9)


# -- fold_pooling, hand-checked ----------------------------------------------------------------

#: Pool 2 then weights [[1, 2], [3, 4]]: pooled (a, b) averages input rows 2a..2a+1 and
#: columns 2b..2b+1, so each of those inputs gets weight w[a, b] / 4.
BLOCKS = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]) / 4


@pytest.mark.parametrize("size, pool_args, expected", [
    (4, (2,), BLOCKS.reshape(1, 16)),
    # Kernel 3, stride 1, padding 1 on 2x2: every window covers all 4 inputs, so each pooled
    # value is sum(x) / 9 and every input gets (1 + 2 + 3 + 4) / 9.
    (2, (3, 1, 1), np.full((1, 4), 10 / 9)),
])
def test_pool_into_dense_by_hand(size, pool_args, expected):
    g = Graph.build([Input(name="x", shape=(1, size, size)), pool("pool", "x", *pool_args),
                     Flatten(name="flat", inputs=("pool",)),
                     Dense(name="fc", inputs=("flat",), weight=np.array([[1.0, 2, 3, 4]]))])
    res = fold_pooling(g)
    assert res.changed and list(res.graph.nodes) == ["x", "fc"]
    assert res.graph["fc"].inputs == ("x",) and res.graph["fc"].weight.dtype == np.float64
    np.testing.assert_allclose(res.graph["fc"].weight, expected, rtol=1e-15)
    assert res.notes[0].startswith("removed Flatten 'flat'") and "'pool'" in res.notes[1]


@pytest.mark.parametrize("pad", [0, 1])
def test_pool2_into_conv_by_hand(pad):
    w = np.array([1.0, 2, 3, 4]).reshape(1, 1, 2, 2)
    g = Graph.build([Input(name="x", shape=(1, 4, 4)), pool("pool", "x"),
                     Conv2d(name="conv", inputs=("pool",), weight=w, bias=np.array([0.5]),
                            padding=(pad, pad))])
    conv = fold_pooling(g).graph["conv"]
    np.testing.assert_array_equal(conv.weight[0, 0], BLOCKS)
    assert (conv.stride, conv.padding, conv.inputs) == ((2, 2), (2 * pad, 2 * pad), ("x",))
    np.testing.assert_array_equal(conv.bias, [0.5])


def test_odd_size_into_padded_conv_is_left():
    # On 5x5 the pool drops row and column 4. The fold formula (kernel 6, stride 2, padding 2)
    # would read them: with ones everywhere, output (1, 1) is 25/4, not the true 4.
    g = Graph.build([Input(name="x", shape=(1, 5, 5)), pool("pool", "x"),
                     Conv2d(name="conv", inputs=("pool",), weight=np.ones((1, 1, 3, 3)),
                            padding=(1, 1)), Readout(name="out", inputs=("conv",))])
    res = fold_pooling(g)
    assert not res.changed and "past the last window" in res.notes[0]
    ones = np.ones((1, 1, 5, 5))
    assert simulate(g, ones, 1).readout["out"][0, 0, 1, 1] == 4.0
    assert conv2d(ones, np.full((1, 1, 6, 6), 0.25), (2, 2), (2, 2))[0, 0, 1, 1] == 6.25


AXIS_POOLS = [(2, 2, 0), (3, 3, 0), (2, 1, 0), (3, 1, 1), (3, 2, 1), (2, 2, 1), (4, 2, 1)]
#: (rows, columns) of (kernel, stride, padding): square pools and mixed ones.
POOLS = [(a, AXIS_POOLS[(i + j) % len(AXIS_POOLS)])
         for j in (0, 3) for i, a in enumerate(AXIS_POOLS)]


def test_folds_are_exact_over_small_configurations():
    rng = np.random.default_rng(0)
    folds = cases = 0
    for (rows, cols), size, (kc, sc, pc) in itertools.product(
            POOLS, range(4, 8), itertools.product([1, 2, 3], [1, 2], [0, 1])):
        # Columns get kernel 4 - kc, stride 3 - sc and padding 1 - pc: non-square convs.
        in_shape = (2, size, size + 1)
        axes = [(size, rows, (kc, sc, pc)), (size + 1, cols, (4 - kc, 3 - sc, 1 - pc))]
        if any((n + 2 * p - k) // s + 1 + 2 * c[2] < c[0] for n, (k, s, p), c in axes):
            continue
        ksp = tuple(zip(rows, cols, strict=True))  # (kernel, stride, padding) pairs
        g = Graph.build([Input(name="x", shape=in_shape), pool("p_fc", "x", *ksp),
                         Flatten(name="flat", inputs=("p_fc",)), pool("p_conv", "x", *ksp),
                         Conv2d(name="conv", inputs=("p_conv",), stride=(sc, 3 - sc),
                                padding=(pc, 1 - pc), weight=rng.normal(size=(3, 2, kc, 4 - kc))),
                         Readout(name="out_conv", inputs=("conv",))])
        g = Graph.build([*g, Dense(name="fc", inputs=("flat",),
                                   weight=rng.normal(size=(3, g["flat"].type.size))),
                         Readout(name="out_fc", inputs=("fc",))])
        after = fold_pooling(g).graph
        assert "p_fc" not in after.nodes and "flat" not in after.nodes
        # Each axis folds if the conv has no padding there, or if the pool tiles the input.
        if all(c[2] == 0 or (s == k and p == 0 and n % k == 0) for n, (k, s, p), c in axes):
            assert "p_conv" not in after.nodes, axes
        folds += "p_conv" not in after.nodes
        cases += 1
        assert_equivalent(g, after, rng.random((3, *in_shape)), 1)
    assert 100 < folds < cases - 100  # both outcomes are exercised


def test_pool_read_by_several_synapses_folds_into_each():
    g = Graph.build([Input(name="x", shape=(1, 4, 4)), pool("p1", "x"), pool("p2", "p1"),
                     Flatten(name="flat", inputs=("p2",)),
                     Dense(name="fc", inputs=("flat",), weight=np.ones((1, 1))),
                     Dense(name="fc2", inputs=("flat",), weight=np.ones((1, 1))),
                     Conv2d(name="conv", inputs=("p1",), weight=np.ones((1, 1, 1, 1)))])
    res = fold_pooling(g)
    assert list(res.graph.nodes) == ["x", "fc", "fc2", "conv"]
    assert res.notes[0] == "removed Flatten 'flat': Dense 'fc', 'fc2' now read 'p2'"
    np.testing.assert_array_equal(res.graph["fc"].weight, np.full((1, 16), 1 / 16))
    np.testing.assert_array_equal(res.graph["fc2"].weight, np.full((1, 16), 1 / 16))
    np.testing.assert_array_equal(res.graph["conv"].weight, np.full((1, 1, 2, 2), 1 / 4))


def test_pools_not_followed_by_synapses_are_left():
    bn = BatchNorm(name="bn", inputs=("p3",), mean=np.zeros(1), var=np.ones(1),
                   weight=np.ones(1), bias=np.zeros(1))
    g = Graph.build([Input(name="x", shape=(1, 8, 8)), pool("p1", "x"), lif("sn", "p1"),
                     pool("p2", "sn"), pool("p3", "x"), bn,
                     Flatten(name="flat", inputs=("bn",)), lif("sn2", "flat"),
                     Conv2d(name="conv", inputs=("p3",), weight=np.ones((1, 1, 3, 3)))],
                    outputs=["p2", "sn2", "conv"])
    res = fold_pooling(g)
    assert not res.changed and res.graph is g
    assert sorted(n.split("'")[1] for n in res.notes) == ["flat", "p1", "p2", "p3"]
    assert any("graph output" in n for n in res.notes)


# -- materialize_shortcuts, by hand --------------------------------------------------------------

def test_identity_synapses_for_adds_and_neurons():
    g = Graph.build([Input(name="x", shape=(2, 3, 3)), lif("sn0", "x"),
                     Conv2d(name="conv", inputs=("sn0",), weight=np.ones((2, 2, 3, 3)),
                            padding=(1, 1)),
                     Add(name="add", inputs=("conv", "sn0", "sn0")), lif("sn1", "add"),
                     Flatten(name="flat", inputs=("sn1",)), Readout(name="out", inputs=("flat",))])
    res = materialize_shortcuts(g)
    new = res.graph
    assert new["sn0"].inputs == ("sn0/x",) and new["add"].inputs == ("conv", "add/sn0", "add/sn0")
    assert new["out"].inputs == ("out/flat",)
    np.testing.assert_array_equal(new["add/sn0"].weight[:, :, 0, 0], np.eye(2))
    np.testing.assert_array_equal(new["out/flat"].weight, np.eye(18))
    assert [n.split("'")[1] for n in res.notes] == ["sn0/x", "add/sn0", "out/flat"]
    assert not materialize_shortcuts(new).changed
    assert_equivalent(g, new, np.random.default_rng(1).random((4, 2, 3, 3)) * 3, 4)


def test_shortcuts_left_alone_or_renamed():
    bn = BatchNorm(name="bn", inputs=("x",), mean=np.zeros(2), var=np.ones(2),
                   weight=np.ones(2), bias=np.zeros(2))
    g = Graph.build([Input(name="x", shape=(2,)), bn, lif("sn", "bn"), lif("sn_x", "x"),
                     Dense(name="sn_x/x", inputs=("x",), weight=np.eye(2)),
                     Input(name="y", shape=(2, 3)), lif("sn_y", "y")])
    res = materialize_shortcuts(g)
    assert res.graph["sn_x"].inputs == ("sn_x/x~2",) and res.graph["sn"].inputs == ("bn",)
    assert [n.split(" ")[0] for n in res.notes] == ["left", "inserted", "left"]
    assert "BatchNorm 'bn'" in res.notes[0] and "shape (2, 3)" in res.notes[2]


# -- random networks -------------------------------------------------------------------------------

def build_net(seed: int, pooling: str | None, conv2: tuple[int, int] | None, res1: bool,
              res2: bool, head: str, c_in: int = 2, c: int = 3, h: int = 7,
              w: int = 8) -> tuple[Graph, np.ndarray]:
    """x -> conv -> LIF [-> residual block] [-> pool] [-> conv (padding, stride) -> LIF, with a
    residual Add if res2 and it keeps the shape] -> flatten -> dense -> head. Pooling "k2" is
    kernel 2, stride 2; "k3" is kernel 3, stride 1, padding 1. A LIF also reads x directly.
    Returns the graph and a batch of 6 inputs, uniform in [0, 1)."""
    rng = np.random.default_rng(seed)

    def weights(*shape):
        # Each output sums about 1.5 x its mean input (spike rate or analog value).
        return rng.normal(1.0, 1.5, shape) * 1.5 / np.prod(shape[1:])

    def conv(name, src, c_in, padding=1, stride=1):
        return Conv2d(name=name, inputs=(src,), weight=weights(c, c_in, 3, 3),
                      bias=rng.normal(0.1, 0.1, c), padding=(padding,) * 2, stride=(stride,) * 2)

    nodes = [Input(name="x", shape=(c_in, h, w)), lif("sn_in", "x"), conv("conv1", "x", c_in),
             lif("sn1", "conv1")]
    cur = "sn1"
    if res1:
        nodes += [conv("conv_r", cur, c), Add(name="add1", inputs=("conv_r", cur)),
                  lif("sn_r", "add1", 0.6)]
        cur = "sn_r"
    if pooling:
        nodes.append(pool("pool", cur) if pooling == "k2" else pool("pool", cur, 3, 1, 1))
        cur = "pool"
    if conv2:
        nodes.append(conv("conv2", cur, c, *conv2))
        if res2 and conv2 == (1, 1):
            nodes += [Add(name="add2", inputs=("conv2", cur)), lif("sn2", "add2", 0.6)]
        else:
            nodes.append(lif("sn2", "conv2"))
        cur = "sn2"
    size = Graph.build([*nodes, Flatten(name="flat", inputs=(cur,))])["flat"].type.size
    nodes += [Flatten(name="flat", inputs=(cur,)),
              Dense(name="fc", inputs=("flat",), weight=weights(5, size), bias=np.full(5, 0.1))]
    if head != "readout":
        nodes.append(lif("sn_fc", "fc"))
    if head != "lif":
        nodes.append(Readout(name="out", inputs=("sn_fc" if head == "lif+readout" else "fc",)))
    return Graph.build(nodes), rng.random((6, c_in, h, w))


CONFIGS = st.fixed_dictionaries({
    "seed": st.integers(0, 2**16), "pooling": st.sampled_from([None, "k2", "k3"]),
    "conv2": st.sampled_from([None, (0, 1), (1, 1), (1, 2)]), "res1": st.booleans(),
    "res2": st.booleans(), "head": st.sampled_from(["lif", "readout", "lif+readout"]),
    "c_in": st.integers(1, 2), "c": st.integers(2, 3), "h": st.integers(6, 9),
    "w": st.integers(6, 9)})


@settings(deadline=None, max_examples=200)
@given(CONFIGS, st.integers(3, 5))
def test_passes_keep_spikes_on_random_networks(cfg: dict, steps: int):
    g, x = build_net(**cfg)
    neurons = {n.name: (n.op, n.params()) for n in g if isinstance(n, Neuron)}
    folded = fold_pooling(g).graph
    shortcut = materialize_shortcuts(g).graph
    both = fold_pooling(shortcut).graph
    for after in (folded, shortcut, both):
        assert_equivalent(g, after, x, steps)
        assert {n.name: (n.op, n.params()) for n in after if isinstance(n, Neuron)} == neurons
    for after in (folded, both):
        assert not any(isinstance(n, Flatten) for n in after)
    if not cfg["pooling"] or cfg["conv2"]:  # no pool right before the flatten: same weights
        np.testing.assert_array_equal(folded["fc"].weight, g["fc"].weight)
    for after in (shortcut, both):
        for node in after:
            if isinstance(node, Add | Neuron):
                assert all(isinstance(after[i], Conv2d | Dense | Add) for i in node.inputs)
    padded = bool(cfg["conv2"] and cfg["conv2"][0])
    feeds_add = cfg["res2"] and cfg["conv2"] == (1, 1)  # only materialize_shortcuts fixes that
    if cfg["pooling"] == "k3" and padded:  # overlapping windows under the conv's padding
        assert "pool" in folded.nodes and "pool" in both.nodes
    elif cfg["pooling"] and not (padded and (cfg["h"] % 2 or cfg["w"] % 2)):
        assert "pool" not in both.nodes and ("pool" in folded.nodes) == feeds_add


def test_random_networks_are_not_vacuous():
    """On a fixed sample, neurons fire neither almost never nor almost always."""
    configs = itertools.product([None, "k2", "k3"], [None, (1, 1), (1, 2)], [False, True])
    rates = []
    for seed, (pool_kind, conv2, res) in enumerate(configs):
        spikes = simulate(*build_net(seed, pool_kind, conv2, res, res, "lif"), 4).spikes
        rates += [s.mean() for s in spikes.values()]
    assert 0.05 < np.mean(rates) < 0.95
    assert np.mean([0.05 < r < 0.95 for r in rates]) > 0.9, rates  # nearly every layer too
