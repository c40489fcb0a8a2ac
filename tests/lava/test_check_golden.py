"""`snnc check --backend lava` in the Lava environment alone (no torch, no dataset): the
artifact's golden vectors are the reference, and a changed golden value fails the check."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.artifact import Artifact, write_artifact
from snnc.targets import LOIHI2
from snnc.tools.cli import cli
from snnc.tools.golden import make_golden
from snnc.tools.pass_runner import compile_graph

pytestmark = pytest.mark.timeout(600)
T = 3


@pytest.fixture(scope="module")
def artifact(residual_graph, tmp_path_factory):
    rng = np.random.default_rng(11)
    compiled = compile_graph(residual_graph(rng, True, fc_bias=True), LOIHI2, timesteps=T)
    x = rng.random((8, 3, 5, 5))

    def write(golden=None):
        golden = make_golden(compiled.graph, x, T) if golden is None else golden
        path = tmp_path_factory.mktemp("art") / "m.snnc"
        write_artifact(Artifact(compiled.graph, reference=compiled.reference, target="loihi2",
                                meta={"timesteps": T}, golden=golden), path)
        return path

    write.golden = lambda: make_golden(compiled.graph, x, T)
    return write


def test_lava_checks_itself_against_the_golden_vectors(artifact):
    assert "torch" not in __import__("sys").modules
    result = CliRunner().invoke(cli, ["check", str(artifact()), "--backend", "lava",
                                      "--json", "-"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["golden"]["total_mismatches"] == 0 and doc["golden"]["samples"] == 4
    assert doc["total_mismatches"] == 0
    assert sum(doc["golden"]["compared"].values()) > 0


def test_a_changed_golden_value_fails_on_lava(artifact):
    golden = artifact.golden()
    readout = golden["readout/out"].copy()
    readout[3, 2] += 1.0
    golden["readout/out"] = readout
    result = CliRunner().invoke(cli, ["check", str(artifact(golden)), "--backend", "lava",
                                      "--json", "-"])
    assert result.exit_code == 2
    first = json.loads(result.stdout)["golden"]["first_mismatch"]
    assert (first["layer"], first["sample"], first["neuron"]) == ("out", 3, [2])
