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
from snnc.pass_runner import compile_graph
from snnc.targets import LOIHI2

pytestmark = pytest.mark.timeout(300)  # a Lava run that breaks inside a worker can hang
T = 3


def mismatches(got, expected):
    return {name: int((got[name] != expected[name]).sum()) for name in expected}


@pytest.mark.parametrize("seed, clif, sequence", [(0, False, False), (1, True, False),
                                                  (2, True, True)])
def test_lava_matches_the_reference_simulator(seed, clif, sequence, residual_graph,
                                              hardware_record):
    rng = np.random.default_rng(seed)
    graph = compile_graph(residual_graph(rng, clif, fc_bias=True), LOIHI2, timesteps=T).graph
    x = rng.random((T, 20, 3, 5, 5) if sequence else (20, 3, 5, 5))
    expected = hardware_record(graph, x, T)
    got = lower.run_fixed(graph, x, T)
    assert set(got) == set(expected)
    assert mismatches(got, expected) == dict.fromkeys(expected, 0)
    spikes = [expected[n].mean() for n in ("sn_a", "sn_b", "sn_c")]
    assert 0.02 < float(np.mean(spikes)) < 0.98  # the comparison is not over silent layers


def test_a_corrupted_lowering_is_detected(monkeypatch, residual_graph, hardware_record):
    rng = np.random.default_rng(0)
    graph = compile_graph(residual_graph(rng, False, fc_bias=True), LOIHI2, timesteps=T).graph
    x = rng.random((20, 3, 5, 5))
    original = lower.conv_matrix

    def off_by_one(node, in_shape):  # conv b: every weight one step of the 8-bit grid up
        m = original(node, in_shape)
        if node.name == "b":
            m[m != 0] = m[m != 0] + 2
        return m

    monkeypatch.setattr(lower, "conv_matrix", off_by_one)
    got = lower.run_fixed(graph, x, T)
    bad = mismatches(got, hardware_record(graph, x, T))
    assert bad["sn_a"] == 0 and bad["sn_b"] > 0
