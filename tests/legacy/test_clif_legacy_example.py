"""The shipped legacy-API example (examples/clif_legacy.py: a CLIF ResNet in the CLIF authors'
style, their neuron as a user subclass of the legacy LIFNode with a converter), end to end
in the legacy environment: its neuron is the paper's CLIF, it compiles with the trace check
at 0 mismatches against the legacy package's forward, `snnc check` passes with the float
accuracy the model itself has, and Lava fixed_pt runs it exactly as the reference simulator.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from snnc.artifact import read_artifact
from snnc.datasets import digits_split
from snnc.environments import lava_python
from snnc.tools.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "clif_legacy.py"
CHECKPOINT = ROOT / "examples" / "checkpoints" / "clif_legacy.pt"
T = 4
NEURONS = ["layer1.relu1", "layer1.relu2", "layer2.relu1", "layer2.relu2", "relu"]


@pytest.fixture(scope="module")
def example():
    """examples/clif_legacy.py, imported once as `clif_legacy` (as snnc compile does)."""
    if "clif_legacy" not in sys.modules:
        spec = importlib.util.spec_from_file_location("clif_legacy", EXAMPLE)
        module = importlib.util.module_from_spec(spec)
        sys.modules["clif_legacy"] = module
        spec.loader.exec_module(module)
    return sys.modules["clif_legacy"]


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_the_example_neuron_is_the_papers_clif(example):
    """ComplementaryLIFNeuron, called once per step, against Huang et al. 2024's equations
    written out here in numpy (float64)."""
    tau, vth = 2.0, 0.7
    sn = example.ComplementaryLIFNeuron(tau=tau, v_threshold=vth).double()
    x = np.random.default_rng(5).uniform(-0.5, 1.6, (12, 64))
    with torch.no_grad():
        got = np.stack([sn(torch.from_numpy(xt)).numpy() for xt in x])
    v, m, want = np.zeros(64), np.zeros(64), []
    for xt in x:
        h = (1 - 1 / tau) * v + xt
        s = (h >= vth).astype(float)
        m = m * _sigmoid(h / tau) + s
        v = h - s * (vth + _sigmoid(m))
        want.append(s)
    want = np.stack(want)
    assert 0.2 < want.mean() < 0.8
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(sn.v.numpy(), v, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sn.m.numpy(), m, rtol=0, atol=1e-12)


def test_without_its_converter_the_neuron_is_refused(example):
    """The registry's converter is what makes it compile: without it, the class would be
    taken for its base LIFNode, which snnc refuses."""
    from snnc.frontends.torch import ConversionError, trace_model
    from snnc.frontends.torch.registry import CONVERTERS

    fn = CONVERTERS.pop(example.ComplementaryLIFNeuron)
    try:
        with pytest.raises(ConversionError) as err:
            trace_model(example.clif_legacy_resnet(), torch.zeros(2, 1, 8, 8), T)
    finally:
        CONVERTERS[example.ComplementaryLIFNeuron] = fn
    assert ("subclasses LIFNode and overrides neuronal_charge" in str(err.value))
    assert str(err.value).startswith("module 'layer1.relu1' (ComplementaryLIFNeuron): ")


def test_the_trace_equals_the_legacy_forward_on_all_360_test_digits(example):
    from snnc.frontends.torch.check import check_trace
    from snnc.frontends.torch.tracer import trace_model

    model = example.clif_legacy_resnet()
    model.load_state_dict(torch.load(CHECKPOINT, weights_only=True)["net"])
    result = trace_model(model, torch.zeros(2, 1, 8, 8), T)
    assert result.step_mode == "single"
    report = check_trace(model, result, digits_split()[2], T)
    assert report.samples == 360
    assert report.total_mismatches == 0, report.table()
    assert [a.name for a in report.layers] == NEURONS


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clif_legacy") / "clif_legacy.snnc"
    result = CliRunner().invoke(cli, [
        "compile", f"{EXAMPLE}:clif_legacy_resnet", "--weights", str(CHECKPOINT), "-T", str(T),
        "--input-shape", "1,8,8", "--check-data", "digits", "--check-samples", "64",
        "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "compiling with" not in result.output  # already in the legacy environment
    return out


def test_compiles_with_the_trace_check_at_zero_mismatches(artifact):
    check = read_artifact(artifact).meta["trace_check"]
    assert check["total_mismatches"] == 0
    assert sorted(check["layers"]) == sorted(NEURONS)
    assert check["samples"] == 64


def test_snnc_check_passes_with_the_models_own_float_accuracy(artifact, example):
    """The float accuracy `snnc check` reports (the float IR graph) is the accuracy of the
    legacy model's own forward on the same 360 test digits."""
    result = CliRunner().invoke(cli, ["check", str(artifact), "--data", "digits",
                                      "--json", "-"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["passed"] and doc["golden"]["total_mismatches"] == 0

    _, _, x_test, y_test = digits_split()
    model = example.clif_legacy_resnet()
    model.load_state_dict(torch.load(CHECKPOINT, weights_only=True)["net"])
    model.eval()
    with torch.no_grad():
        pred = example.run(model, torch.from_numpy(x_test), T).argmax(1).numpy()
    torch_correct = int((pred == y_test).sum())
    assert doc["accuracy"]["samples"] == len(y_test) == 360
    assert round(doc["accuracy"]["float"] * 360) == torch_correct
    assert doc["accuracy"]["float"] - doc["accuracy"]["fixed"] <= 0.01


@pytest.mark.timeout(900)
def test_lava_fixed_point_runs_it_exactly_as_the_reference_simulator(artifact):
    result = CliRunner().invoke(cli, ["check", str(artifact), "--data", "digits",
                                      "--backend", "lava", "--backend-samples", "4",
                                      "--lava-python", str(lava_python()), "--json", "-"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["equivalence"]["samples"] == 4
    assert doc["equivalence"]["total_mismatches"] == 0
    assert doc["lava_floating_pt"]["total_mismatches"] == 0
    assert doc["golden"]["total_mismatches"] == 0
