"""Lava fixed_pt equals the reference simulator, bit for bit, at every layer and step.

The reference is `simulate(..., timing="hardware")`: its raw record covers the pipeline's
fill (T + latency steps). Graphs are quantized here from float IR graphs (the Lava
environment has no torch): residual blocks balanced by a delay, LIF hard and soft reset,
CLIF, biases, graded input, a readout; 20 samples each.
"""

from __future__ import annotations

import numpy as np
import pytest

from snnc.backends.lava import lower
from snnc.backends.refsim import simulate
from snnc.ir import CLIF, LIF, Add, Conv2d, Dense, Graph, Input, Readout
from snnc.pass_runner import compile_graph
from snnc.targets import LOIHI2

pytestmark = pytest.mark.timeout(300)  # a Lava run that breaks inside a worker can hang
T = 3


def residual(rng, clif: bool, c: int = 3) -> Graph:
    def conv(name, src, k=3):
        return Conv2d(name=name, inputs=(src,), weight=rng.normal(0, 0.7, (c, c, k, k)),
                      bias=rng.normal(0.1, 0.1, c), padding=(k // 2, k // 2))

    def neuron(name, src, kind):
        if kind == "clif":
            return CLIF(name=name, inputs=(src,), tau=2.0, threshold=0.6)
        return LIF(name=name, inputs=(src,), decay=0.5, threshold=0.6, compare=">=",
                   reset=kind)

    kinds = ["clif", "hard", "soft"] if clif else ["hard", "soft", "hard"]
    return Graph.build([
        Input(name="x", shape=(c, 5, 5)),
        conv("a", "x"), neuron("sn_a", "a", kinds[0]),
        conv("b", "sn_a"), neuron("sn_b", "b", kinds[1]),
        conv("c", "sn_b"), conv("s", "sn_a", 1), Add(name="sum", inputs=("c", "s")),
        neuron("sn_c", "sum", kinds[2]),
        Dense(name="fc", inputs=("sn_c",), weight=rng.normal(0, 0.3, (4, c * 25)),
              bias=rng.normal(0, 0.1, 4)),
        Readout(name="out", inputs=("fc",)),
    ])


def reference(graph, x):
    ref = simulate(graph, x, T, timing="hardware", record_states=True)
    return {**ref.raw_spikes,
            **{n: s["v"] for n, s in ref.states.items() if n not in ref.raw_spikes}}


def mismatches(got, expected):
    return {name: int((got[name] != expected[name]).sum()) for name in expected}


@pytest.mark.parametrize("seed, clif, sequence", [(0, False, False), (1, True, False),
                                                  (2, True, True)])
def test_lava_matches_the_reference_simulator(seed, clif, sequence):
    rng = np.random.default_rng(seed)
    graph = compile_graph(residual(rng, clif), LOIHI2, timesteps=T).graph
    x = rng.random((T, 20, 3, 5, 5) if sequence else (20, 3, 5, 5))
    expected = reference(graph, x)
    got = lower.run_fixed(graph, x, T)
    assert set(got) == set(expected)
    assert mismatches(got, expected) == dict.fromkeys(expected, 0)
    spikes = [expected[n].mean() for n in ("sn_a", "sn_b", "sn_c")]
    assert 0.02 < float(np.mean(spikes)) < 0.98  # the comparison is not over silent layers


def test_a_corrupted_lowering_is_detected(monkeypatch):
    rng = np.random.default_rng(0)
    graph = compile_graph(residual(rng, False), LOIHI2, timesteps=T).graph
    x = rng.random((20, 3, 5, 5))
    original = lower.conv_matrix

    def off_by_one(node, in_shape):  # conv b: every weight one step of the 8-bit grid up
        m = original(node, in_shape)
        if node.name == "b":
            m[m != 0] = m[m != 0] + 2
        return m

    monkeypatch.setattr(lower, "conv_matrix", off_by_one)
    got = lower.run_fixed(graph, x, T)
    bad = mismatches(got, reference(graph, x))
    assert bad["sn_a"] == 0 and bad["sn_b"] > 0
