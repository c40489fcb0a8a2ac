"""`snnc compile` on a model written for spikingjelly's legacy `clock_driven` API, from the
compile environment (spikingjelly 2.0, which removed it): the command reruns itself in the
legacy environment (.venv-legacy) and its artifact is checked here like any other. A model
that cannot be helped that way gets one line saying why, and no output file.

The legacy converters themselves are tested against the legacy package in tests/legacy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from snnc.artifact import read_artifact
from snnc.environments import legacy_python
from snnc.frontends.torch.checkpoint import LegacyAPIError, load_model

SNNC = Path(sys.executable).parent / "snnc"

LEGACY_NET = """
    import torch
    from torch import nn
    from spikingjelly.clock_driven import neuron, surrogate


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(64, 32)
            self.sn1 = neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan())
            self.fc2 = nn.Linear(32, 10)
            self.sn2 = neuron.IFNode()

        def forward(self, x):
            return self.sn2(self.fc2(self.sn1(self.fc1(x.flatten(1)))))


    def net():
        return Net()
"""


def weights(path: Path) -> Path:
    """The legacy net's state_dict, made here (its keys are only the two Linear layers')."""
    torch.manual_seed(0)
    fc1, fc2 = nn.Linear(64, 32), nn.Linear(32, 10)
    with torch.no_grad():
        fc1.weight.mul_(4.0)
        fc2.weight.mul_(4.0)
    state = {f"{name}.{k}": v for name, m in (("fc1", fc1), ("fc2", fc2))
             for k, v in m.state_dict().items()}
    torch.save(state, path)
    return path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def snnc(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(SNNC), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def compile_args(model: str, ckpt: Path, out: Path) -> list[str]:
    return ["compile", model, "--weights", str(ckpt), "-T", "4", "--input-shape", "1,8,8",
            "--check-data", "digits", "--check-samples", "16", "-o", str(out)]


@pytest.fixture(scope="module")
def legacy_env():
    python = legacy_python()
    if not python.is_file():
        pytest.fail(f"the legacy environment is missing ({python}); `make envs` creates it")
    return python


def test_compile_reruns_in_the_legacy_environment(tmp_path, legacy_env):
    model = write(tmp_path, "legacy_net.py", LEGACY_NET)
    out = tmp_path / "net.snnc"
    done = snnc(*compile_args(f"{model}:net", weights(tmp_path / "w.pt"), out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"compiling with {legacy_env}" in done.stderr
    assert "wrote" in done.stdout
    art = read_artifact(out)
    check = art.meta["trace_check"]
    assert check["total_mismatches"] == 0 and set(check["layers"]) == {"sn1", "sn2"}
    # the artifact is the same as any other downstream: checked here, in spikingjelly 2.0's
    # environment, by the reference simulator
    checked = snnc("check", str(out), "--data", "digits", "--samples", "32")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_neighbour_importing_the_legacy_api_is_found_too(tmp_path, legacy_env):
    write(tmp_path, "legacy_blocks.py", LEGACY_NET)
    model = write(tmp_path, "uses_blocks.py", """
        from legacy_blocks import Net


        def net():
            return Net()
    """)
    out = tmp_path / "net.snnc"
    done = snnc(*compile_args(f"{model}:net", weights(tmp_path / "w.pt"), out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert read_artifact(out).meta["trace_check"]["total_mismatches"] == 0


def test_without_the_legacy_environment_one_line_and_no_output(tmp_path):
    model = write(tmp_path, "legacy_net.py", LEGACY_NET)
    out = tmp_path / "net.snnc"
    done = snnc(*compile_args(f"{model}:net", weights(tmp_path / "w.pt"), out),
                env={"SNNC_LEGACY_PYTHON": str(tmp_path / "no-such-python")})
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snnc: error: "), done.stderr
    for fragment in ("legacy_net.py imports spikingjelly.clock_driven", "0.0.0.0.12",
                     "no-such-python", "make envs", "SNNC_LEGACY_PYTHON"):
        assert fragment in lines[0], lines[0]
    assert not out.exists() and list(tmp_path.glob(".net.snnc*")) == []


def test_another_missing_module_is_reported_not_rerun(tmp_path):
    model = write(tmp_path, "other.py", """
        import snnc_no_such_module_anywhere


        def net():
            return None
    """)
    out = tmp_path / "net.snnc"
    done = snnc(*compile_args(f"{model}:net", weights(tmp_path / "w.pt"), out))
    assert done.returncode == 1
    assert "compiling with" not in done.stderr
    assert "No module named 'snnc_no_such_module_anywhere'" in done.stderr
    assert not out.exists()


def test_from_python_the_error_names_the_legacy_interpreter(tmp_path):
    model = write(tmp_path, "legacy_net.py", LEGACY_NET)
    with pytest.raises(LegacyAPIError) as err:
        load_model(f"{model}:net")
    assert str(legacy_python()) in str(err.value)
    assert "spikingjelly 2.0.0, which removed it" in str(err.value)


def test_in_process_the_rerun_is_a_child_and_the_caller_survives(tmp_path, legacy_env):
    """snnc's CLI called inside a Python process (here pytest, through click's runner): the
    legacy compile runs as a child process, its status is the command's, and this process
    goes on."""
    from click.testing import CliRunner

    from snnc.tools.cli import cli

    model = write(tmp_path, "legacy_net.py", LEGACY_NET)
    out = tmp_path / "net.snnc"
    result = CliRunner().invoke(cli, compile_args(f"{model}:net", weights(tmp_path / "w.pt"),
                                                  out))
    assert result.exit_code == 0, result.output
    assert read_artifact(out).meta["trace_check"]["total_mismatches"] == 0
    result = CliRunner().invoke(cli, compile_args(f"{model}:missing", weights(tmp_path / "w.pt"),
                                                  tmp_path / "no.snnc"))
    assert result.exit_code == 1  # the child's failure is the command's
    assert not (tmp_path / "no.snnc").exists()
