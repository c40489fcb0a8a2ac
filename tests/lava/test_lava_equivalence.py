"""Lava fixed_pt equals the reference simulator, bit for bit, at every layer and step.

The reference is `simulate(..., timing="hardware")`: its raw record covers the pipeline's
fill (T + latency steps). Graphs are quantized here from float IR graphs (the Lava
environment has no torch): residual blocks balanced by a delay, LIF hard and soft reset,
CLIF, biases, graded input, a readout; 20 samples each. Hard-reset layers without bias run
on Lava's stock LIF (LIFReset), the rest on SnncNeuron.
"""

from __future__ import annotations

import numpy as np
import pytest
from lava.proc.lif.process import LIFReset

from snnc.backends.lava import lower
from snnc.ir import Graph
from snnc.targets import LOIHI2
from snnc.tools.pass_runner import compile_graph

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
    original = lower.conv_process

    def off_by_one(node, src, delay, weight=None):  # conv b: every weight one grid step up
        if node.name == "b":
            w = node.weight
            node = node.replace(weight=np.where(w != 0, w + 2, w))
        return original(node, src, delay, weight)

    monkeypatch.setattr(lower, "conv_process", off_by_one)
    got = lower.run_fixed(graph, x, T)
    bad = mismatches(got, hardware_record(graph, x, T))
    assert bad["sn_a"] == 0 and bad["sn_b"] > 0


def _unbiased(graph: Graph, synapses: tuple[str, ...]) -> Graph:
    return Graph.build([n.replace(bias=None) if n.name in synapses else n for n in graph])


@pytest.mark.parametrize("sequence", [False, True])
def test_stock_lava_lif_layers_match_the_reference_simulator(sequence, monkeypatch,
                                                             residual_graph, hardware_record):
    """sn_a and sn_c (hard reset, no bias) run on Lava's stock LIFReset; sn_c reads sn_a
    through the delayed shortcut, so the silent steps must outlast sn_a's late spikes."""
    rng = np.random.default_rng(8)
    float_graph = _unbiased(residual_graph(rng, False, fc_bias=True), ("a", "c", "s"))
    graph = compile_graph(float_graph, LOIHI2, timesteps=T).graph
    built = []
    monkeypatch.setattr(lower, "LIFReset", lambda **kw: built.append(kw) or LIFReset(**kw))
    x = rng.random((T, 20, 3, 5, 5) if sequence else (20, 3, 5, 5))
    expected = hardware_record(graph, x, T)
    got = lower.run_fixed(graph, x, T)
    assert [n.name for n in graph if lower.stock_lif(n)] == ["sn_a", "sn_c"]
    assert len(built) == 2
    assert mismatches(got, expected) == dict.fromkeys(expected, 0)
    spikes = [expected[n].mean() for n in ("sn_a", "sn_b", "sn_c")]
    assert 0.02 < float(np.mean(spikes)) < 0.98


def test_the_silent_steps_outlast_late_spikes_of_stock_layers(residual_graph):
    """Window W = T + latency (4 hops), steps 0 .. W-1 of a sample. SnncNeuron layers only:
    the last products arrive at W (W + 1 through the shortcut's delay of 1), so the next
    sample starts at W + 2. With sn_a on stock LIF, it can fire at step W on the products
    conv a delivers then; the shortcut delivers those at W + 1, delayed to W + 2, so the
    next sample starts at W + 3."""
    rng = np.random.default_rng(8)
    window = T + 4
    biased = compile_graph(residual_graph(rng, False), LOIHI2, timesteps=T).graph
    assert lower.make_plan(biased, T, 1).period == window + 2
    unbiased = compile_graph(_unbiased(residual_graph(rng, False), ("a",)), LOIHI2,
                             timesteps=T).graph
    assert [n.name for n in unbiased if lower.stock_lif(n)] == ["sn_a"]
    assert lower.make_plan(unbiased, T, 1).period == window + 3
