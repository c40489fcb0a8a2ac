"""Lava from the compile environment, through the subprocess runner.

The shipped examples, compiled here, pass `snnc check --backend lava`: Lava fixed_pt in the
Lava environment equals the reference simulator's hardware-timing record at every layer and
step, 20 samples each.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.artifact import read_artifact
from snnc.backends.lava.remote import LavaRunError, run_lava
from snnc.backends.refsim import simulate
from snnc.tools.cli import cli
from snnc.tools.evaluate import predictions

ROOT = Path(__file__).resolve().parents[2]
T = 4
SPECS = {"stbp_resnet": "models.py:stbp_resnet", "clif_vgg": "models.py:clif_vgg",
         "clif_preact_resnet": "models.py:clif_preact_resnet",
         "stbp_custom": "stbp_custom.py:stbp_custom_net"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("artifacts")
    paths = {}
    for name, spec in SPECS.items():
        path = out / f"{name}.snnc"
        result = CliRunner().invoke(cli, [
            "compile", str(ROOT / "examples" / spec), "--weights",
            str(ROOT / "examples" / "checkpoints" / f"{name}.pt"), "-T", str(T),
            "--input-shape", "1,8,8", "--check-data", "digits", "-o", str(path)])
        assert result.exit_code == 0, result.output
        paths[name] = path
    return paths


@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", list(SPECS))
def test_examples_pass_snnc_check_on_lava(name, compiled, digits, tmp_path):
    """`snnc check --backend lava` on 20 test digits: Lava fixed_pt equals the reference
    simulator's hardware-timed record at every layer and step; floating_pt is counted
    against the float graph; the golden vectors match; accuracy is the trained figure."""
    result = CliRunner().invoke(cli, ["check", str(compiled[name]), "--data", "digits",
                                      "--backend", "lava", "--backend-samples", "20",
                                      "--json", "-"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["total_mismatches"] == 0 and doc["equivalence"]["samples"] == 20
    graph = read_artifact(compiled[name]).graph
    spiking = {n.name for n in graph if getattr(n, "spiking", False)}
    assert spiking <= set(doc["equivalence"]["layers"])
    assert doc["lava_floating_pt"]["total_mismatches"] == 0
    assert doc["golden"]["total_mismatches"] == 0 and doc["golden"]["samples"] == 4
    trained = json.loads((ROOT / "examples/checkpoints/accuracy.json").read_text())[name]
    assert doc["accuracy"]["float"] == pytest.approx(trained["test_accuracy"], abs=1e-12)
    x, y = digits[2][:20], digits[3][:20]
    fixed = predictions(graph, simulate(graph, x, T))
    assert doc["accuracy"]["backend"] == float((fixed == y).mean())


def test_check_with_a_missing_lava_interpreter_is_one_line(compiled, tmp_path):
    result = CliRunner().invoke(cli, ["check", str(compiled["stbp_custom"]), "--backend",
                                      "lava", "--lava-python", str(tmp_path / "python")])
    assert result.exit_code == 1
    assert result.output.strip().startswith("snnc: error: Lava interpreter not found at")
    assert len(result.output.strip().splitlines()) == 1


def test_a_missing_lava_interpreter_is_one_line(compiled, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8)))
    result = CliRunner().invoke(cli, ["simulate", str(compiled["stbp_custom"]), "--input",
                                      str(tmp_path / "x.npy"), "--backend", "lava",
                                      "--lava-python", str(tmp_path / "nope" / "python")])
    assert result.exit_code == 1
    assert result.output.strip().startswith("snnc: error: Lava interpreter not found at")
    assert len(result.output.strip().splitlines()) == 1


def test_a_run_past_its_timeout_is_stopped_with_its_workers(compiled):
    with pytest.raises(LavaRunError, match="did not finish within 0.5 s"):
        run_lava(compiled["stbp_resnet"], np.zeros((2, 1, 8, 8)), T, timeout=0.5)
    left = subprocess.run(["pgrep", "-f", str(compiled["stbp_resnet"])], capture_output=True,
                          text=True).stdout.split()
    assert left == []


@pytest.mark.timeout(300)
def test_simulate_runs_the_float_reference_on_lava_floating_pt(compiled, digits, tmp_path):
    np.save(tmp_path / "x.npy", digits[2][:3])
    out = tmp_path / "lava.npz"
    result = CliRunner().invoke(cli, ["simulate", str(compiled["clif_vgg"]), "--input",
                                      str(tmp_path / "x.npy"), "--backend", "lava",
                                      "--reference", "-o", str(out)])
    assert result.exit_code == 0, result.output
    reference = read_artifact(compiled["clif_vgg"]).reference
    expected = simulate(reference, digits[2][:3], T, timing="hardware").raw_spikes
    with np.load(out) as got:
        for layer, spikes in expected.items():
            np.testing.assert_array_equal(got[f"lava/{layer}"], spikes, err_msg=layer)
