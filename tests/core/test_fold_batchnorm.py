"""BatchNorm folding: random graphs keep every spike; hand-checked cases pin the formulas.

The random graphs are built from IR nodes by `random_graph(pick, rng)`: `pick` chooses the
structure (hypothesis draws it in the property tests, a seeded generator in the fixed sample
that guards against a generator whose neurons never or always fire), `rng` the numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnc.backends.refsim import simulate
from snnc.errors import GraphError
from snnc.ir import (
    CLIF,
    LIF,
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
from snnc.passes.fold_batchnorm import fold_batchnorm
from snnc.passes.fold_thresholds import fold_thresholds

Pick = Callable[[Sequence], object]



class _Net:
    """Accumulates nodes; every helper returns the new value's (name, shape)."""

    def __init__(self, pick: Pick, rng: np.random.Generator):
        self.pick, self.rng, self.nodes = pick, rng, []

    def add(self, cls, prefix, inputs, shape, **params):
        node = cls(name=f"{prefix}{len(self.nodes)}", inputs=tuple(inputs), **params)
        self.nodes.append(node)
        return node.name, shape

    def syn(self, v, c_out, k=None):
        (src, shape), rng = v, self.rng
        bias = self.pick([None, "bias"]) and rng.normal(0.2, 0.3, c_out)
        if len(shape) == 1:
            w = rng.normal(0, 1.5 / np.sqrt(shape[0]), (c_out, shape[0]))
            return self.add(Dense, "fc", [src], (c_out,), weight=w, bias=bias)
        k = k or self.pick([1, 3])
        w = rng.normal(0, 1.5 / np.sqrt(shape[0] * k * k), (c_out, shape[0], k, k))
        return self.add(Conv2d, "conv", [src], (c_out,) + shape[1:], weight=w, bias=bias,
                        padding=(k // 2, k // 2))

    def bn(self, v):
        (src, shape), rng = v, self.rng
        c = shape[0]
        var = 10 ** rng.uniform(-3, 2, c)
        scale = rng.uniform(0.5, 1.5, c) * np.where(rng.random(c) < 0.3, -1, 1)
        weight = scale * np.sqrt(var + 1e-5)
        wild = rng.random(c) < 0.1  # tiny or huge variance with an arbitrary weight
        var[wild] = rng.choice([1e-9, 1e6], wild.sum())
        weight[wild] = rng.normal(0, 1, wild.sum())
        if self.pick([False] * 9 + [True]):
            weight[rng.integers(c)] = 0.0
        return self.add(BatchNorm, "bn", [src], shape, mean=rng.normal(0, 0.3, c), var=var,
                        weight=weight, bias=rng.normal(0.3, 0.3, c))

    def neuron(self, v):
        (src, shape), pick, rng = v, self.pick, self.rng
        if pick(["lif", "lif", "clif"]) == "clif":
            return self.add(CLIF, "clif", [src], shape, tau=pick([2.0, 3.0]),
                            threshold=pick([0.5, 1.0]), compare=pick([">", ">="]))
        reset, v_reset = pick([("hard", 0.0), ("hard", 0.0), ("hard", -0.1), ("hard", 0.1),
                               ("soft", 0.0)])
        th = pick(["scalar", "channel", "neuron"])
        th_shape = {"scalar": (), "channel": shape[:1], "neuron": shape}[th]
        threshold = rng.uniform(0.3, 1.0, th_shape)
        return self.add(LIF, "lif", [src], shape, decay=rng.uniform(0.3, 1.0),
                        threshold=float(threshold) if th == "scalar" else threshold,
                        compare=pick([">", ">="]), reset=reset, v_reset=v_reset,
                        gain=pick([1.0, 0.5]))

    def bns(self, v, most=2):
        for _ in range(self.pick(range(most + 1))):
            v = self.bn(v)
        return v

    # -- blocks: each maps the current value to a spiking value of the same kind ----------

    def layer(self, v):
        return self.neuron(self.bns(self.syn(v, self.pick([2, 3, 4]))))

    def bn_direct(self, v):  # BN right on spikes or on the analog input
        return self.neuron(self.bns(self.bn(v), 1))

    def residual(self, v):  # post-activation: BN on the branch, Add, maybe BN after the add
        c = v[1][0]
        branch = self.bns(self.syn(self.neuron(self.bn(self.syn(v, c))), c), 1)
        short = self.pick(["identity", "conv", "conv+bn"])
        if short != "identity":
            short_v = self.syn(v, c, k=1)
            v = self.bn(short_v) if short == "conv+bn" else short_v
        terms = [branch, v] + ([self.syn(v, c)] if self.pick([False, True]) else [])
        total = self.add(Add, "add", [t[0] for t in terms], v[1])
        return self.neuron(self.bns(total, 1))

    def preact(self, v):  # pre-activation: each Add feeds the next BN and the next Add
        r = self.syn(v, v[1][0]) if self.pick(["stem", "identity"]) == "stem" else v
        for _ in range(self.pick([1, 2])):
            h = self.syn(self.neuron(self.bn(self.syn(self.neuron(self.bn(r)), r[1][0]))),
                         r[1][0])
            r = self.add(Add, "add", [h[0], r[0]], r[1])
        return self.neuron(self.bn(r))

    def pool(self, v):
        if min(v[1][1:]) < 2:
            return self.layer(v)
        p = self.add(AvgPool2d, "pool", [v[0]], (v[1][0], v[1][1] - 1, v[1][2] - 1),
                     kernel=(2, 2), stride=(1, 1))
        return self.neuron(self.bn(p)) if self.pick([False, True]) else self.layer(p)


def random_graph(pick: Pick, rng: np.random.Generator) -> tuple[Graph, Input]:
    net = _Net(pick, rng)
    conv = pick([True, False])
    shape = (pick([1, 2, 3]), pick([3, 4]), pick([3, 4])) if conv else (pick([3, 5, 8]),)
    x = Input(name="x", shape=shape, encoding=pick(["analog", "analog", "spikes"]))
    net.nodes.append(x)
    v = ("x", shape)
    if pick([False, True]):
        v = net.bn_direct(v)
    blocks = ["layer", "bn_direct", "residual", "preact"] + (["pool"] if conv else [])
    for _ in range(pick([1, 2, 3])):
        v = getattr(net, pick(blocks))(v)
    if conv:
        v = net.add(Flatten, "flat", [v[0]], (int(np.prod(v[1])),))
        for _ in range(pick([0, 1, 2])):
            v = getattr(net, pick(blocks[:-1]))(v)
    out = net.bns(net.syn(v, pick([2, 3])), 1)
    net.add(Readout, "out", [out[0]], out[1])
    return Graph.build(net.nodes), x


def sample_inputs(x: Input, rng: np.random.Generator, timesteps: int) -> np.ndarray:
    if x.encoding == "spikes":
        return (rng.random((timesteps, 6) + x.shape) < 0.5).astype(np.float64)
    return rng.random((6,) + x.shape)


def assert_same_behaviour(before: Graph, after: Graph, inputs, timesteps: int) -> None:
    assert not any(isinstance(n, BatchNorm) for n in after)
    neurons = {n.name for n in before if isinstance(n, LIF | CLIF | Readout)}
    assert neurons <= set(after.nodes)
    r0, r1 = simulate(before, inputs, timesteps), simulate(after, inputs, timesteps)
    assert r0.spikes.keys() == r1.spikes.keys()
    changed = {k: int(np.count_nonzero(r0.spikes[k] != r1.spikes[k])) for k in r0.spikes}
    assert sum(changed.values()) == 0, f"spike changes per layer: {changed}"
    assert r0.readout.keys() == r1.readout.keys()
    for k in r0.readout:
        np.testing.assert_allclose(r1.readout[k], r0.readout[k], rtol=1e-9, atol=1e-9)


def _run(data, passes) -> None:
    graph, x = random_graph(lambda opts: data.draw(st.sampled_from(list(opts))),
                            np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))))
    timesteps = data.draw(st.integers(3, 5))
    inputs = sample_inputs(x, np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))),
                           timesteps)
    folded = graph
    for p in passes:
        folded = p(folded).graph
    assert_same_behaviour(graph, folded, inputs, timesteps)


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(st.data())
def test_fold_batchnorm_keeps_every_spike(data):
    _run(data, [fold_batchnorm])


@_SETTINGS
@given(st.data())
def test_fold_thresholds_then_batchnorm_keeps_every_spike(data):
    _run(data, [fold_thresholds, fold_batchnorm])


def test_generated_graphs_fire_and_exercise_every_rule():
    rates, alive, notes = [], [], []
    for seed in range(40):
        rng = np.random.default_rng(seed)
        graph, x = random_graph(lambda opts, rng=rng: opts[rng.integers(len(opts))], rng)
        spikes = simulate(graph, sample_inputs(x, rng, 4), 4).spikes
        rates += [s.mean() for s in spikes.values()]
        alive += [0.0 < s.mean() < 1.0 for s in spikes.values()]
        notes += fold_thresholds(graph).notes + fold_batchnorm(graph).notes
    assert 0.05 < np.mean(rates) < 0.95
    assert np.mean(alive) > 0.8
    for rule in ("copies of", "diagonal synapses on", "thresholds of", "scale 0"):
        assert any(rule in n for n in notes), rule


# -- hand-checked cases ---------------------------------------------------------------------


def lif(name, src, **kw):
    return LIF(name=name, inputs=(src,), **{"decay": 0.5, "threshold": 0.5, **kw})


def bn(name, src, mean, var, weight, bias):
    return BatchNorm(name=name, inputs=(src,), mean=np.array(mean, float), eps=0.0,
                     var=np.array(var, float), weight=np.array(weight, float),
                     bias=np.array(bias, float))


def conv_bn_lif(neuron=None):
    # a = weight / sqrt(var) = [1/2, -1.5/0.5] = [0.5, -3]
    return Graph.build([
        Input(name="x", shape=(1, 3, 3)),
        Conv2d(name="conv1", inputs=("x",), bias=np.array([0.5, -1.0]),
               weight=np.array([[[[1.0, 2.0], [3.0, 4.0]]], [[[-1.0, 0.0], [0.5, 2.0]]]])),
        bn("bn1", "conv1", mean=[1.0, -2.0], var=[4.0, 0.25], weight=[1.0, -1.5],
           bias=[0.25, 1.0]),
        neuron or lif("sn1", "bn1"),
    ])


def test_one_batchnorm_into_one_conv_by_hand():
    g = conv_bn_lif()
    res = fold_batchnorm(g)
    conv = res.graph["conv1"]
    # W' = a W: 0.5 * [[1,2],[3,4]] and -3 * [[-1,0],[.5,2]]
    assert conv.weight.tolist() == [[[[0.5, 1.0], [1.5, 2.0]]], [[[3.0, 0.0], [-1.5, -6.0]]]]
    # b' = a (b - mean) + beta: 0.5 * (0.5 - 1) + 0.25 = 0;  -3 * (-1 + 2) + 1 = -2
    assert conv.bias.tolist() == [0.0, -2.0]
    assert conv.weight.dtype == np.float64 and res.graph["sn1"].inputs == ("conv1",)
    assert res.changed and res.notes == ["folded bn1 into conv1"]
    assert_same_behaviour(g, res.graph, np.random.default_rng(0).random((6, 1, 3, 3)), 4)


def test_negative_scale_goes_into_the_weights_magnitude_into_the_threshold():
    g = conv_bn_lif(lif("sn1", "bn1", reset="soft", threshold=np.array([0.5, 0.75])))
    res = fold_thresholds(g)
    conv, sn = res.graph["conv1"], res.graph["sn1"]
    assert "bn1" not in res.graph.nodes and sn.inputs == ("conv1",)
    assert sn.threshold.tolist() == [0.5 / 0.5, 0.75 / 3]  # th / |a|
    assert sn.gain == 1.0 and sn.decay == 0.5
    assert conv.weight[0].tolist() == g["conv1"].weight[0].tolist()
    assert conv.weight[1].tolist() == (-g["conv1"].weight[1]).tolist()
    # b'' = sign(a) (b - mean) + beta / |a|: (0.5 - 1) + 0.25 / 0.5 = 0;  -(-1 + 2) + 1/3
    assert conv.bias.tolist() == [0.0, -1.0 + 1.0 / 3.0]
    x = np.random.default_rng(1).random((6, 1, 3, 3))
    assert_same_behaviour(g, res.graph, x, 5)
    # The trap docs/semantics.md section 3 warns of: W, b - mean + beta / a and th / a with
    # the signed a flip channel 1's comparison, and this check sees it.
    wrong = dict(res.graph.nodes, conv1=conv.replace(
        weight=g["conv1"].weight, bias=np.array([0.0, 1.0 + 1.0 / -3.0])),
        sn1=sn.replace(threshold=np.array([0.5 / 0.5, 0.75 / -3.0])))
    spikes = simulate(Graph.build(wrong.values()), x, 5).spikes["sn1"]
    assert np.any(spikes[..., 1, :, :] != simulate(g, x, 5).spikes["sn1"][..., 1, :, :])


@pytest.mark.parametrize("neuron", [
    CLIF(name="sn1", inputs=("bn1",)),
    lif("sn1", "bn1", v_reset=-0.1),
])
def test_thresholds_are_never_folded_into_clif_or_a_nonzero_reset(neuron):
    res = fold_thresholds(conv_bn_lif(neuron))
    assert not res.changed and "bn1" in res.graph.nodes


def test_a_zero_scale_is_left_for_fold_batchnorm():
    g = Graph.build([*list(conv_bn_lif())[:2], bn("bn1", "conv1", [0.0, 0.0], [1.0, 1.0],
                                                  [1.0, 0.0], [0.0, 0.6]), lif("sn1", "bn1")])
    res = fold_thresholds(g)
    assert not res.changed and "bn1" in res.graph.nodes and "scale 0" in res.notes[0]
    folded = fold_batchnorm(res.graph).graph
    assert folded["conv1"].weight[1].tolist() == [[[0.0, 0.0], [0.0, 0.0]]]
    assert_same_behaviour(g, folded, np.random.default_rng(2).random((6, 1, 3, 3)), 4)


def test_preactivation_blocks_fold_into_copies_and_keep_the_originals():
    rng = np.random.default_rng(3)
    c = 2

    def conv(name, src):
        return Conv2d(name=name, inputs=(src,), weight=rng.normal(0, 0.7, (c, c, 3, 3)),
                      bias=rng.normal(0, 0.2, c), padding=(1, 1))

    def stats(name, src):
        return bn(name, src, rng.normal(0, 0.2, c), rng.uniform(0.5, 2, c),
                  [0.8, -1.2], rng.normal(0.4, 0.2, c))

    g = Graph.build([
        Input(name="x", shape=(c, 4, 4)), conv("stem", "x"),
        stats("b1.bn1", "stem"), lif("b1.sn1", "b1.bn1"), conv("b1.conv1", "b1.sn1"),
        Add(name="b1.add", inputs=("b1.conv1", "stem")),
        stats("b2.bn1", "b1.add"), lif("b2.sn1", "b2.bn1"), conv("b2.conv1", "b2.sn1"),
        Add(name="b2.add", inputs=("b2.conv1", "b1.add")), lif("sn", "b2.add"),
    ])
    res = fold_batchnorm(g)
    f = res.graph
    assert res.notes[1] == "folded b2.bn1 into copies of b1.conv1, stem, b1.add"
    for name in ("stem", "b1.conv1", "b1.add", "b2.conv1", "b2.add"):  # originals untouched
        assert f[name] is g[name]
    assert f["b1.sn1"].inputs == ("b1.bn1/stem",) and f["b2.sn1"].inputs == ("b2.bn1/b1.add",)
    assert f["b2.bn1/b1.add"].inputs == ("b2.bn1/b1.conv1", "b2.bn1/stem")
    a = g["b1.bn1"].scale()
    np.testing.assert_allclose(f["b1.bn1/stem"].weight, a[:, None, None, None] * g["stem"].weight)
    assert_same_behaviour(g, f, rng.random((6, c, 4, 4)), 4)


def test_bn_after_add_with_identity_shortcut_makes_a_diagonal_synapse():
    g = Graph.build([
        Input(name="x", shape=(2, 3, 3)),
        Conv2d(name="conv", inputs=("x",), weight=np.full((2, 2, 1, 1), 0.5)),
        lif("s", "conv"),
        Conv2d(name="conv2", inputs=("s",), weight=np.full((2, 2, 1, 1), 0.25)),
        Add(name="add", inputs=("s", "conv2")),
        bn("bn", "add", [0.5, 0.0], [1.0, 4.0], [2.0, -1.0], [0.0, 0.25]),  # a = [2, -0.5]
        lif("out", "bn"),
    ])
    f = fold_batchnorm(g).graph
    diag = f["bn/s"]
    assert f["add"].inputs == ("bn/s", "conv2") and f["out"].inputs == ("add",)
    assert diag.weight[:, :, 0, 0].tolist() == [[2.0, 0.0], [0.0, -0.5]]
    assert diag.bias.tolist() == [-1.0, 0.25]  # c = beta - a mean, on the first term only
    assert f["conv2"].bias is None and f["s"] is g["s"]
    assert_same_behaviour(g, f, np.random.default_rng(4).random((6, 2, 3, 3)), 4)


def test_an_add_reading_one_synapse_twice_gets_two_copies():
    g = Graph.build([
        Input(name="x", shape=(3,)),
        Dense(name="fc", inputs=("x",), weight=np.eye(3), bias=np.ones(3)),
        Add(name="add", inputs=("fc", "fc")),
        bn("bn", "add", [0.5] * 3, [1.0] * 3, [1.0, -2.0, 0.5], [0.0] * 3),
        lif("sn", "bn"),
    ])
    f = fold_batchnorm(g).graph
    assert f["add"].inputs == ("bn/fc", "bn/fc~2") and "fc" in f.nodes
    assert_same_behaviour(g, f, np.random.default_rng(5).random((6, 3)), 3)


def test_a_bn_on_a_value_no_synapse_can_take_is_refused():
    g = Graph.build([Input(name="x", shape=(2, 3)),
                     bn("bn", "x", [0.0] * 2, [1.0] * 2, [1.0] * 2, [0.0] * 2), lif("s", "bn")])
    with pytest.raises(GraphError, match="'bn'.*\\(C, H, W\\)"):
        fold_batchnorm(g)
