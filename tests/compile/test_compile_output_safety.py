"""`snnc compile` never writes its artifact over one of its inputs (the checkpoint, the model
file, the --check-data array), checked through the real command line before any work: exit
1, one line naming the option and the path, every file byte for byte as before.
(The other verbs' cases are in tests/core/test_output_safety.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def folder(tmp_path):
    shutil.copy(EXAMPLES / "stbp_custom.py", tmp_path / "model.py")
    shutil.copy(EXAMPLES / "checkpoints" / "stbp_custom.pt", tmp_path / "w.pt")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(0, 1, (2, 1, 8, 8)))
    (tmp_path / "w-link.pt").symlink_to("w.pt")
    return tmp_path


def snapshot(root: Path) -> dict[str, object]:
    return {str(p.relative_to(root)): ("link", os.readlink(p)) if p.is_symlink()
            else p.read_bytes() for p in sorted(root.rglob("*")) if not p.is_dir()}


@pytest.mark.parametrize("output, weights, check_data, fragment", [
    ("w.pt", "w.pt", "random", "-o/--output 'w.pt' would replace the input --weights 'w.pt'"),
    ("w-link.pt", "w.pt", "random",
     "-o/--output 'w-link.pt' would replace the input --weights 'w.pt'"),
    ("model.py", "w.pt", "random",
     "-o/--output 'model.py' would replace the input MODEL 'model.py'"),
    ("x.npy", "w.pt", "x.npy",
     "-o/--output 'x.npy' would replace the input --check-data 'x.npy'"),
])
def test_compile_refuses_an_output_naming_an_input(folder, output, weights, check_data,
                                                   fragment):
    before = snapshot(folder)
    proc = subprocess.run([sys.executable, "-m", "snnc.tools.cli", "compile",
                           "model.py:stbp_custom_net", "--weights", weights, "-T", "4",
                           "--input-shape", "1,8,8", "--check-data", check_data,
                           "-o", output], cwd=folder, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert "traced" not in proc.stdout  # refused before any work
    assert snapshot(folder) == before
