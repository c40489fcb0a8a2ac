"""Lava from the compile environment, through the subprocess runner.

The shipped examples, compiled here, run on Lava fixed_pt in the Lava environment and equal
the reference simulator's hardware-timing record at every layer and step, 20 samples each.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.artifact import read_artifact
from snnc.backends.lava.remote import LavaRunError, run_lava
from snnc.cli import cli

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
            "--input-shape", "1,8,8", "-o", str(path)])
        assert result.exit_code == 0, result.output
        paths[name] = path
    return paths


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(SPECS))
def test_examples_on_lava_equal_the_reference_simulator(name, compiled, digits,
                                                        hardware_record):
    graph = read_artifact(compiled[name]).graph
    x = digits[2][:20]
    got = run_lava(compiled[name], x, T)
    expected = hardware_record(graph, x, T)
    assert set(got) == set(expected)
    for layer, value in expected.items():
        assert got[layer].shape == value.shape
        assert int((got[layer] != value).sum()) == 0, layer


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
