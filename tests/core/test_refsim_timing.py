"""Hardware timing: one step per synaptic hop, branches balanced, bias held off until each
layer's first valid step. Read in the shifted windows it must equal the zero-delay run."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snnc.analyses.timing import schedule
from snnc.backends.refsim import simulate
from snnc.errors import SimulationInputError
from snnc.targets import LOIHI2
from snnc.tools.demo import sample_inputs, tiny_network
from snnc.tools.pass_runner import compile_graph


def test_schedule_by_hand(residual_graph):
    s = schedule(residual_graph(np.random.default_rng(0)))
    # a: 1 hop; b: 2; c: 3; the shortcut s reads sn_a (depth 1) so it arrives at 2 and is
    # delayed one step to meet c at the add; fc is one more hop than sn_c.
    assert s.depth == {"x": 0, "a": 1, "sn_a": 1, "b": 2, "sn_b": 2, "c": 3, "s": 2,
                       "sum": 3, "sn_c": 3, "fc": 4, "out": 4}
    assert s.delays == {("s", "sum"): 1}
    assert s.latency == 4


def check_same(graph, x, timesteps):
    zero = simulate(graph, x, timesteps)
    hw = simulate(graph, x, timesteps, timing="hardware")
    latency = max(hw.offsets.values())
    for name, spikes in zero.spikes.items():
        raw = hw.raw_spikes[name]
        assert raw.shape[0] == timesteps + latency
        assert not raw[: hw.offsets[name]].any(), f"{name} fired before its first valid step"
        assert np.array_equal(hw.spikes[name], spikes), name
    for name, value in zero.readout.items():
        np.testing.assert_array_equal(hw.readout[name], value)
    return zero


def test_demo_network_in_hardware_timing():
    check_same(tiny_network(), sample_inputs(8), 5)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), clif=st.booleans(), quantized=st.booleans(),
       sequence=st.booleans(), timesteps=st.integers(1, 6))
def test_random_residual_graphs(seed, clif, quantized, sequence, timesteps, residual_graph):
    rng = np.random.default_rng(seed)
    graph = residual_graph(rng, clif)
    if quantized:
        graph = compile_graph(graph, LOIHI2, timesteps=timesteps).graph
    shape = (timesteps, 6, 3, 5, 5) if sequence else (6, 3, 5, 5)
    zero = check_same(graph, rng.random(shape), timesteps)
    assert any(s.any() for s in zero.spikes.values())


def test_sample_of_random_graphs_is_not_silent(residual_graph):
    rates = [s.mean() for seed in range(5)
             for s in simulate(residual_graph(np.random.default_rng(seed)),
                               np.random.default_rng(seed).random((6, 3, 5, 5)), 4)
             .spikes.values()]
    assert 0.05 < float(np.mean(rates)) < 0.95


def test_bad_timing_name():
    with pytest.raises(SimulationInputError, match="timing must be 'zero' or 'hardware'"):
        simulate(tiny_network(), sample_inputs(1), 2, timing="chip")
