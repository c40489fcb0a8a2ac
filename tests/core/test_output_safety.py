"""Output safety through the real command line (a subprocess, as a user runs it): an output
never replaces an input of the same command, devices are written in place and stay devices,
and every write error is one line naming the path asked for.

Each refused case asserts: exit status 1 or 2, one line on stderr naming the path, no
traceback, and the folder exactly as before (inputs byte for byte, no temporary file).
Runs in both environments (no torch): `snnc compile`'s cases are in tests/compile.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snnc.artifact import Artifact, graph_digest, write_artifact
from snnc.tools.demo import tiny_network


@pytest.fixture
def folder(tmp_path):
    """a.snnc (the demo network), x.npy (inputs), d.npz (labelled data), py (a stand-in for
    the Lava Python), link -> a.snnc, hard (a hard link to a.snnc), sub/ (an empty folder),
    rep/index.html (an artifact that happens to be named like a report's page)."""
    graph = tiny_network()
    art = Artifact(graph, source_hash=graph_digest(graph), meta={"timesteps": 2})
    write_artifact(art, tmp_path / "a.snnc")
    x = np.random.default_rng(0).uniform(0, 1, (2, 1, 8, 8))
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([1, 2]))
    (tmp_path / "py").write_bytes(b"#!/bin/sh\n")
    (tmp_path / "py").chmod(0o755)
    (tmp_path / "link").symlink_to("a.snnc")
    os.link(tmp_path / "a.snnc", tmp_path / "hard")
    (tmp_path / "sub").mkdir()
    (tmp_path / "rep").mkdir()
    write_artifact(art, tmp_path / "rep" / "index.html")
    return tmp_path


def snapshot(root: Path) -> dict[str, object]:
    """Every path under root with its bytes (files), link target or '<folder>'."""
    seen: dict[str, object] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            seen[key] = ("link", os.readlink(path))
        elif path.is_dir():
            seen[key] = "<folder>"
        else:
            seen[key] = path.read_bytes()
    return seen


def snnc(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snnc.tools.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def assert_refused(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode in (1, 2), (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


SAME_FILE = [
    # (arguments, the output option, the output path, the input it would have replaced)
    (["simulate", "a.snnc", "--input", "x.npy", "-o", "a.snnc"], "-o/--output", "a.snnc",
     "ARTIFACT 'a.snnc'"),
    (["simulate", "a.snnc", "--input", "x.npy", "-o", "x.npy"], "-o/--output", "x.npy",
     "--input 'x.npy'"),
    (["simulate", "a.snnc", "--input", "x.npy", "-o", "link"], "-o/--output", "link",
     "ARTIFACT 'a.snnc'"),
    (["simulate", "a.snnc", "--input", "x.npy", "-o", "hard"], "-o/--output", "hard",
     "ARTIFACT 'a.snnc'"),
    (["simulate", "a.snnc", "--input", "x.npy", "-o", "sub/../a.snnc"], "-o/--output",
     "sub/../a.snnc", "ARTIFACT 'a.snnc'"),
    (["simulate", "a.snnc", "--input", "x.npy", "--lava-python", "py", "-o", "py"],
     "-o/--output", "py", "--lava-python 'py'"),
    (["check", "a.snnc", "--json", "a.snnc"], "--json", "a.snnc", "ARTIFACT 'a.snnc'"),
    (["check", "a.snnc", "--json", "link"], "--json", "link", "ARTIFACT 'a.snnc'"),
    (["check", "hard", "--json", "a.snnc"], "--json", "a.snnc", "ARTIFACT 'hard'"),
    (["check", "a.snnc", "--data", "d.npz", "--json", "d.npz"], "--json", "d.npz",
     "--data 'd.npz'"),
    (["check", "rep/index.html", "--report", "rep"], "--report", "rep/index.html",
     "ARTIFACT 'rep/index.html'"),
    (["check", "a.snnc", "--lava-python", "py", "--json", "py"], "--json", "py",
     "--lava-python 'py'"),
]


@pytest.mark.parametrize("args, option, path, replaced", SAME_FILE,
                         ids=[" ".join(case[0]) for case in SAME_FILE])
def test_an_output_naming_an_input_is_refused_before_any_work(folder, args, option, path,
                                                                replaced):
    before = snapshot(folder)
    line = assert_refused(snnc(folder, *args), f"{option} {path!r} would replace the input "
                                               f"{replaced}")
    assert line.startswith("snnc: error: ")
    assert snapshot(folder) == before


@pytest.mark.parametrize("args, fragments", [
    (["check", "a.snnc", "--json", "r", "--report", "r"], ("--json 'r'", "--report 'r'",
                                                           "name the same file")),
    (["check", "a.snnc", "--json", "r/index.html", "--report", "r"],
     ("--json 'r/index.html'", "--report 'r/index.html'", "name the same file")),
    (["check", "a.snnc", "--json", ""], ("--json", "''", "empty path")),
    (["demo", "-o", ""], ("--output", "''", "empty path")),
    (["simulate", "a.snnc", "--input", "x.npy", "-o", ""], ("--output", "''", "empty path")),
    (["check", "a.snnc", "--json", "sub"], ("--json", "'sub'", "is a directory")),
    (["demo", "-o", "sub"], ("--output", "'sub'", "is a directory")),
    (["check", "a.snnc", "--report", "a.snnc"], ("--report", "'a.snnc'", "is a file")),
    (["check", "a.snnc", "--report", "/dev/full"], ("--report", "'/dev/full'",
                                                    "not a folder")),
    (["simulate", "a.snnc", "--input", "x.npy", "-o", "a.snnc/x.npz"],
     ("-o/--output", "a.snnc/x.npz", "is not a folder")),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_outputs_that_cannot_be_right_are_refused(folder, args, fragments):
    before = snapshot(folder)
    assert_refused(snnc(folder, *args), *fragments)
    assert snapshot(folder) == before


def is_char_device(path: str) -> bool:
    return stat.S_ISCHR(os.lstat(path).st_mode)


def no_temporary_in_dev(name: str) -> bool:
    return not any(p.startswith(f".{name}.") for p in os.listdir("/dev"))


def test_dev_full_is_one_line_naming_it_and_stays_a_device(folder):
    before = snapshot(folder)
    assert_refused(snnc(folder, "simulate", "a.snnc", "--input", "x.npy", "-o", "/dev/full"),
                   "cannot write '/dev/full': No space left on device")
    assert is_char_device("/dev/full") and no_temporary_in_dev("full")
    assert snapshot(folder) == before


def test_dev_null_stays_a_device(folder):
    proc = snnc(folder, "simulate", "a.snnc", "--input", "x.npy", "-o", "/dev/null")
    assert proc.returncode == 0, proc.stderr
    assert "wrote /dev/null" in proc.stdout
    assert is_char_device("/dev/null") and no_temporary_in_dev("null")


def test_an_unwritable_folder_is_named(folder):
    # sysfs refuses new files even to root; as another user the check refuses it earlier.
    before = snapshot(folder)
    assert_refused(snnc(folder, "simulate", "a.snnc", "--input", "x.npy", "-o",
                        "/sys/snnc-test.npz"), "'/sys/snnc-test.npz'")
    assert not os.path.lexists("/sys/snnc-test.npz")
    assert snapshot(folder) == before


def test_check_writes_devices_in_place_and_names_a_full_one(folder):
    ok = snnc(folder, "check", "a.snnc", "--data", "random", "--samples", "2",
              "--json", "/dev/null")
    assert ok.returncode in (0, 2), ok.stderr  # 2: a rung failed, the JSON was written
    assert is_char_device("/dev/null")
    before = snapshot(folder)
    assert_refused(snnc(folder, "check", "a.snnc", "--data", "random", "--samples", "2",
                        "--json", "/dev/full"),
                   "cannot write '/dev/full': No space left on device")
    assert is_char_device("/dev/full") and no_temporary_in_dev("full")
    assert snapshot(folder) == before


def test_a_report_that_cannot_be_written_leaves_nothing(folder):
    before = snapshot(folder)
    assert_refused(snnc(folder, "check", "a.snnc", "--data", "random", "--samples", "2",
                        "--report", "/sys/snnc-report"), "'/sys/snnc-report")
    assert not os.path.lexists("/sys/snnc-report")
    assert snapshot(folder) == before
