"""The shipped examples, quantized for loihi2 and run in fixed point, stay within 1.0
accuracy point of their float versions on all 360 digits test images."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from snnc.analyses.range_analysis import analyze_ranges
from snnc.frontends.torch import trace
from snnc.targets import LOIHI2
from snnc.tools.evaluate import evaluate
from snnc.tools.pass_runner import compile_graph

T = 4
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name, threshold_folding", [
    ("stbp_resnet", False), ("stbp_resnet", True), ("clif_vgg", False),
    ("clif_preact_resnet", False), ("stbp_custom", False), ("stbp_custom", True),
])
def test_quantized_example_within_one_point(name, threshold_folding, load_example, digits):
    model = load_example("models").MODELS[name](timesteps=T)
    state = torch.load(EXAMPLES / "checkpoints" / f"{name}.pt", weights_only=True)
    model.load_state_dict(state.get("net", state))
    graph = trace(model.eval(), torch.zeros(2, 1, 8, 8), T, input_shape=(1, 8, 8))
    compiled = compile_graph(graph, LOIHI2, timesteps=T, debug=True,
                             threshold_folding=threshold_folding)
    result = evaluate(compiled.graph, compiled.reference, digits[2], digits[3], T)
    assert result.samples == 360
    assert result.delta_points <= 1.0, (result.float_accuracy, result.fixed_accuracy)
    assert min(result.agreement.values()) > 0.85, result.agreement
    assert all(r.ok for r in analyze_ranges(compiled.graph, T)), "predicted overflow"


@pytest.mark.parametrize("name", ["stbp_resnet", "clif_vgg", "clif_preact_resnet",
                                  "stbp_custom"])
def test_hardware_timing_equals_trained_timing_in_windows(name, load_example, digits):
    from snnc.backends.refsim import simulate

    model = load_example("models").MODELS[name](timesteps=T)
    state = torch.load(EXAMPLES / "checkpoints" / f"{name}.pt", weights_only=True)
    model.load_state_dict(state.get("net", state))
    traced = trace(model.eval(), torch.zeros(2, 1, 8, 8), T, input_shape=(1, 8, 8))
    compiled = compile_graph(traced, LOIHI2, timesteps=T)
    x = digits[2][:64]
    # traced (batch norm still there: its shift must not leak in before the first valid
    # step), folded float, and fixed point
    for graph in (traced, compiled.reference, compiled.graph):
        zero = simulate(graph, x, T)
        hw = simulate(graph, x, T, timing="hardware")
        for layer, spikes in zero.spikes.items():
            assert (hw.spikes[layer] == spikes).all(), layer
        for out, value in zero.readout.items():
            assert (hw.readout[out] == value).all(), out
