"""The torch and int engines give the same integers as the numpy engine (the definition)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snnc.backends.refsim import simulate
from snnc.errors import SimulationInputError
from snnc.frontends.torch import trace
from snnc.targets import LOIHI2
from snnc.tools.pass_runner import compile_graph

T = 4
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["stbp_resnet", "clif_vgg", "clif_preact_resnet",
                                  "stbp_custom"])
@pytest.mark.parametrize("timing", ["zero", "hardware"])
def test_engines_agree_bit_for_bit(name, timing, load_example, digits):
    model = load_example("models").MODELS[name](timesteps=T)
    state = torch.load(EXAMPLES / "checkpoints" / f"{name}.pt", weights_only=True)
    model.load_state_dict(state.get("net", state))
    graph = compile_graph(trace(model.eval(), torch.zeros(2, 1, 8, 8), T,
                                input_shape=(1, 8, 8)), LOIHI2, timesteps=T).graph
    x = digits[2][:48]
    a = simulate(graph, x, T, timing=timing, record_states=True)
    for engine in ("torch", "int"):
        b = simulate(graph, x, T, timing=timing, record_states=True, engine=engine)
        assert a.spikes.keys() == b.spikes.keys(), engine
        for layer in a.spikes:
            assert np.array_equal(a.spikes[layer], b.spikes[layer]), (engine, layer)
        for layer, states in a.states.items():
            for var, value in states.items():
                assert np.array_equal(value, b.states[layer][var]), (engine, layer, var)
        for out in a.readout:
            assert np.array_equal(a.readout[out], b.readout[out]), engine


def test_engines_agree_on_wide_layers(load_example):
    """ResNet-19-width convolutions (128 to 512 channels, strides 1 and 2, a split fan-in)."""
    import sys

    sys.path.insert(0, str(EXAMPLES.parent / "benchmarks"))
    from resnet19 import ResNet19

    graph = compile_graph(trace(ResNet19(T).eval(), torch.zeros(2, 3, 32, 32), T,
                                input_shape=(3, 32, 32)), LOIHI2, timesteps=T).graph
    x = np.random.default_rng(0).random((2, 3, 32, 32))
    a = simulate(graph, x, T)
    for engine in ("torch", "int"):
        b = simulate(graph, x, T, engine=engine)
        assert all(np.array_equal(a.spikes[k], b.spikes[k]) for k in a.spikes)
        assert all(np.array_equal(a.readout[k], b.readout[k]) for k in a.readout)
    assert np.mean([s.mean() for s in a.spikes.values()]) > 0.05


def test_unknown_engine():
    from snnc.tools.demo import sample_inputs, tiny_network

    with pytest.raises(SimulationInputError,
                       match="engine must be one of 'numpy', 'torch', 'int', got 'jax'"):
        simulate(tiny_network(), sample_inputs(1), 2, engine="jax")
