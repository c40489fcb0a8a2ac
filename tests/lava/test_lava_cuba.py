"""CubaLIF (snnTorch's Leaky and Synaptic) on Lava: fixed_pt equals the reference simulator bit
for bit, and floating_pt equals the float reference, at every layer and step.

The graphs are what frontends/torch/snntorch.py emits for `Linear -> Leaky/Synaptic` nets
(the Lava environment has no torch, so they are written here as IR), compiled for loihi2 by
the pass runner; inputs strong enough that every reset rule is exercised (a membrane above
twice the threshold, so snnTorch's owed reset fires again the next step).
"""

from __future__ import annotations

import numpy as np
import pytest

from snnc.backends.lava import lower
from snnc.ir import CubaLIF, Dense, Graph, Input, Readout
from snnc.targets import LOIHI2
from snnc.tools.pass_runner import compile_graph

pytestmark = pytest.mark.timeout(300)
T = 5


def cuba_net(rng, alpha: float, reset: str, delay: bool) -> Graph:
    w1 = rng.normal(0, 1.2, (12, 6))
    w2 = rng.normal(0, 0.8, (8, 12))
    return Graph.build([
        Input(name="x", shape=(6,)),
        Dense(name="fc1", inputs=("x",), weight=w1, bias=rng.normal(0, .2, 12)),
        CubaLIF(name="sn1", inputs=("fc1",), decay=0.85, current_decay=alpha, threshold=0.5,
                reset=reset, reset_delay=delay),
        Dense(name="fc2", inputs=("sn1",), weight=w2),
        CubaLIF(name="sn2", inputs=("fc2",), decay=0.7, current_decay=alpha, threshold=0.75,
                reset=reset, reset_delay=delay, compare=">="),
        Dense(name="head", inputs=("sn2",), weight=rng.normal(0, 1, (3, 8))),
        Readout(name="out", inputs=("head",)),
    ])


#: (current_decay, reset, reset_delay): Leaky (0) and Synaptic (alpha) in each reset rule.
KINDS = [(0.0, "subtract", True), (0.0, "subtract", False), (0.0, "zero", True),
         (0.0, "none", True), (0.5, "subtract", True), (0.5, "zero_all", True),
         (0.5, "zero_all", False)]


@pytest.mark.parametrize("alpha, reset, delay", KINDS)
def test_cuba_on_lava_fixed_matches_the_reference_simulator(alpha, reset, delay,
                                                            hardware_record):
    rng = np.random.default_rng(7)
    graph = compile_graph(cuba_net(rng, alpha, reset, delay), LOIHI2, timesteps=T).graph
    x = rng.random((12, 6))
    expected = hardware_record(graph, x, T)
    got = lower.run_fixed(graph, x, T)
    assert {n: int((got[n] != expected[n]).sum()) for n in expected} == dict.fromkeys(expected, 0)
    rate = float(np.mean([expected[n].mean() for n in ("sn1", "sn2")]))
    assert 0.05 < rate < 0.95  # the comparison is not over silent or saturated layers


@pytest.mark.parametrize("alpha, reset, delay", [(0.0, "subtract", True),
                                                 (0.5, "zero_all", False)])
def test_cuba_on_lava_float_matches_the_float_reference(alpha, reset, delay, hardware_record):
    rng = np.random.default_rng(3)
    # Weights and inputs on a coarse binary grid: Lava's sums are exact, so equal bits.
    graph = Graph.build([
        Input(name="x", shape=(4,)),
        Dense(name="fc", inputs=("x",), weight=np.round(rng.normal(0, 1.5, (6, 4)) * 8) / 8),
        CubaLIF(name="sn", inputs=("fc",), decay=0.75, current_decay=alpha, threshold=0.5,
                reset=reset, reset_delay=delay),
    ])
    x = np.round(rng.random((10, 4)) * 4) / 4
    expected = hardware_record(graph, x, T)["sn"]
    got = lower.run_float(graph, x, T)["sn"]
    assert got.shape == expected.shape and int((got != expected).sum()) == 0
    assert 0.05 < float(expected.mean()) < 0.95


def test_a_wrong_owed_reset_on_lava_is_detected(monkeypatch, hardware_record):
    """The comparison sees the reset rule: Lava paying no owed reset differs."""
    from snnc.backends.lava.models import processes

    rng = np.random.default_rng(7)
    graph = compile_graph(cuba_net(rng, 0.0, "subtract", True), LOIHI2, timesteps=T).graph
    x = rng.random((12, 6))
    original = processes.PySnncNeuronFixed._cuba_step

    def forgets(self):
        self.owed_reset = np.zeros_like(self.owed_reset)
        return original(self)

    monkeypatch.setitem(processes.PySnncNeuronFixed.STEPS, processes.KINDS["cuba"], forgets)
    got = lower.run_fixed(graph, x, T)
    expected = hardware_record(graph, x, T)
    assert int((got["sn1"] != expected["sn1"]).sum()) > 0
