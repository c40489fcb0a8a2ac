"""The command line: verbs, one-line errors, exit codes, no tracebacks without --debug."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.artifact import FORMAT_VERSION, read_artifact
from snnc.tools.cli import cli


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def artifact(runner, tmp_path):
    path = tmp_path / "tiny.snnc"
    result = runner.invoke(cli, ["demo", "-o", str(path), "--batch", "2"])
    assert result.exit_code == 0, result.output
    return path


def test_help_lists_the_verbs(runner):
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1].split()
    for verb in ("demo", "compile", "inspect", "simulate", "check"):
        assert verb in commands


@pytest.mark.parametrize("verb", ["demo", "compile", "inspect", "simulate", "check"])
def test_every_verb_has_help(runner, verb):
    result = runner.invoke(cli, [verb, "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output


def test_demo_writes_a_loadable_artifact_and_simulates(runner, artifact):
    art = read_artifact(artifact)
    assert art.meta["timesteps"] == 4
    assert list(art.graph.nodes)[-1] == "out"


def test_inspect_prints_metadata_and_ir(runner, artifact):
    result = runner.invoke(cli, ["inspect", str(artifact)])
    assert result.exit_code == 0
    assert f"format        {FORMAT_VERSION}" in result.output
    assert "%sn1 : b1[4,8,8] = LIF(%bn1)" in result.output


def test_simulate_writes_spikes(runner, artifact, tmp_path):
    x = np.random.default_rng(0).uniform(0, 1, (3, 1, 8, 8))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "res" / "out.npz"
    result = runner.invoke(cli, ["simulate", str(artifact), "--input", str(tmp_path / "x.npy"),
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out) as data:
        assert data["spikes/sn1"].shape == (4, 3, 4, 8, 8)
        assert data["readout/out"].shape == (3, 10)


def one_line_error(result, *fragments):
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("snnc: error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_corrupt_artifact_is_one_line(runner, artifact):
    data = bytearray(artifact.read_bytes())
    data[-5] ^= 0xFF
    artifact.write_bytes(bytes(data))
    one_line_error(runner.invoke(cli, ["inspect", str(artifact)]), "corrupt", "checksum")


def test_missing_artifact_is_one_line(runner, tmp_path):
    one_line_error(runner.invoke(cli, ["inspect", str(tmp_path / "nope.snnc")]), "no such file")


def test_not_an_artifact_is_one_line(runner, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros(3))
    one_line_error(runner.invoke(cli, ["inspect", str(path)]), "not an snnc artifact")


def test_bad_simulation_input_is_one_line(runner, artifact, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 3)))
    result = runner.invoke(cli, ["simulate", str(artifact), "--input", str(tmp_path / "x.npy")])
    one_line_error(result, "input 'x'", "[batch, 1, 8, 8]")


def test_pickled_input_is_refused(runner, artifact, tmp_path):
    np.save(tmp_path / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    result = runner.invoke(cli, ["simulate", str(artifact), "--input", str(tmp_path / "x.npy")])
    one_line_error(result, "not a plain .npy array")


def test_missing_input_file_is_one_line(runner, artifact, tmp_path):
    result = runner.invoke(cli, ["simulate", str(artifact), "--input", str(tmp_path / "x.npy")])
    one_line_error(result, "x.npy: no such file")


def test_debug_shows_the_traceback(runner, tmp_path):
    result = runner.invoke(cli, ["--debug", "inspect", str(tmp_path / "nope.snnc")])
    assert result.exit_code == 1
    assert "Traceback" in result.output


def test_bad_option_value_is_a_usage_error(runner):
    result = runner.invoke(cli, ["demo", "--timesteps", "0"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def _newer_version(path):
    import hashlib
    import struct
    import zlib

    from snnc.artifact import FORMAT_VERSION

    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, 8, FORMAT_VERSION + 1)
    struct.pack_into("<I", data, 24, zlib.crc32(bytes(data[:24])))
    body = bytes(data[:-32])
    path.write_bytes(body + hashlib.sha256(body).digest())


VERB_ARGS = {"inspect": [], "simulate": ["--input", "x.npy"], "check": []}


@pytest.mark.parametrize("verb", list(VERB_ARGS))
def test_every_verb_refuses_a_newer_artifact_and_a_missing_file(runner, artifact, tmp_path,
                                                                 verb, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8)))
    one_line_error(runner.invoke(cli, [verb, str(tmp_path / "nope.snnc"), *VERB_ARGS[verb]]),
                   "nope.snnc")
    _newer_version(artifact)
    one_line_error(runner.invoke(cli, [verb, str(artifact), *VERB_ARGS[verb]]),
                   "newer snnc")


@pytest.mark.parametrize("args, fragment", [
    (["check", "m.snnc", "--backend", "chip"], "'chip' is not one of 'refsim', 'lava'"),
    (["check", "m.snnc", "--max-mismatches", "-1"], "--max-mismatches"),
    (["check"], "Missing argument 'ARTIFACT'"),
    (["simulate", "m.snnc"], "Missing option '--input'"),
    (["compile", "m.py:f", "--weights", "w.pt", "-T", "4", "-o", "o.snnc",
      "--input-shape", "1,x"], "expected positive integers"),
    (["inspect", "m.snnc", "--cost-samples", "0"], "--cost-samples"),
    (["frobnicate"], "No such command 'frobnicate'"),
])
def test_bad_arguments_are_one_line_usage_errors(args, fragment):
    import subprocess
    import sys

    # A real process: click's standalone handling (and its exit status) as a user sees it.
    proc = subprocess.run([sys.executable, "-m", "snnc.tools.cli", *args], capture_output=True,
                          text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "--help" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
