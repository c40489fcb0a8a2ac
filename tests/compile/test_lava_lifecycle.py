"""The Lava run's lifecycle (backends/lava/remote.py): however a run ends, nothing is left.

Real `snnc simulate --backend lava` processes, with Lava in the Lava environment, are stopped
mid-run by Ctrl-C (SIGINT to snnc's process group, as a terminal sends it), SIGTERM, SIGHUP
and --lava-timeout, or run to the end. Each time, afterwards:

- no process of the Lava run's process group is alive (read from /proc);
- none of the run's shared-memory segments exists. The run's segments are found without
  trusting the implementation: every /dev/shm file that a process of the run's group has
  mapped (/proc/PID/maps), collected while it runs. (Comparing all of /dev/shm before and
  after would also count the segments of other Lava runs on the machine at the same time.)
  That they all lie in the run's private namespace, which the parent cleans, is checked too;
- the run's temp folder is gone (snnc runs with its own TMPDIR, so only this run's folders
  can be there; a short one under /tmp: Lava's manager socket lives in the run's folder, and
  pytest's tmp_path is too long for a Unix socket's path).

Bad inputs and interpreters are refused in the parent, before Lava starts, in one line.
"""

from __future__ import annotations

import math
import multiprocessing.shared_memory as shared_memory
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from multiprocessing.managers import SharedMemoryManager
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.artifact import read_artifact
from snnc.backends.lava import remote
from snnc.backends.lava.remote import LavaRunError, run_lava
from snnc.backends.lava.run import use_shm_namespace
from snnc.errors import SimulationInputError, SnncError
from snnc.tools.cli import cli

ROOT = Path(__file__).resolve().parents[2]
SNNC = Path(sys.executable).parent / "snnc"
T = 4


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lifecycle") / "stbp_custom.snnc"
    result = CliRunner().invoke(cli, [
        "compile", str(ROOT / "examples" / "stbp_custom.py:stbp_custom_net"), "--weights",
        str(ROOT / "examples" / "checkpoints" / "stbp_custom.pt"), "-T", str(T),
        "--input-shape", "1,8,8", "--check-data", "digits", "-o", str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, digits) -> dict[str, Path]:
    """.npy inputs: `many` (2,000 digits, the test split six times over: about 20 s on
    Lava, a run to interrupt, well past the 8 s timeout below), `few` (2)."""
    folder = tmp_path_factory.mktemp("inputs")
    files = {"many": np.tile(digits[2], (6, 1, 1, 1))[:2000], "few": digits[2][:2]}
    for name, x in files.items():
        np.save(folder / f"{name}.npy", x)
    return {name: folder / f"{name}.npy" for name in files}


@pytest.fixture
def short_tmp():
    """An empty folder with a short path, for TMPDIR."""
    folder = Path(tempfile.mkdtemp(prefix="snnc-test-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder)


def _processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, process group, state) of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def _alive_in_group(pgid: int) -> list[int]:
    return [pid for pid, (_, group, state) in _processes().items()
            if group == pgid and state not in "ZX"]


def _mapped_shm(pids: list[int]) -> set[str]:
    """Names of the /dev/shm files these processes have mapped and that still have a name
    (multiprocessing's semaphores, `sem.*`, are unlinked as soon as they are created: maps
    then shows them "(deleted)")."""
    names = set()
    for pid in pids:
        try:
            maps = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        for line in maps.splitlines():
            where = line.find("/dev/shm/")
            if where >= 0 and not line.endswith("(deleted)"):
                names.add(line[where + len("/dev/shm/"):].split()[0])
    return names


class Watch:
    """Follows the Lava run of an `snnc` process: its process group, the shared memory its
    processes map, the namespace it was given."""

    def __init__(self, snnc: subprocess.Popen):
        self.snnc = snnc
        self.group: int | None = None
        self.segments: set[str] = set()
        self.namespace: str | None = None

    def look(self) -> None:
        if self.group is None:
            for pid, (ppid, group, _) in _processes().items():
                if ppid == self.snnc.pid and group == pid:  # the Lava child leads its group
                    self.group = pid
                    try:
                        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                    except OSError:
                        argv = []
                    if b"--shm-prefix" in argv:
                        self.namespace = argv[argv.index(b"--shm-prefix") + 1].decode()
        if self.group is not None:
            self.segments |= _mapped_shm(_alive_in_group(self.group))

    def until_running(self, limit: float = 180.0) -> None:
        """Wait until the run's processes map shared memory (Lava's channels: the run is
        under way), then a little longer for the rest of its channels."""
        deadline = time.monotonic() + limit
        while not self.segments:
            assert self.snnc.poll() is None, self.snnc.communicate()
            assert time.monotonic() < deadline, "the Lava run did not start"
            self.look()
            time.sleep(0.05)
        settle = time.monotonic() + 1.0
        while time.monotonic() < settle:
            self.look()
            time.sleep(0.05)

    def until_exit(self, limit: float = 180.0) -> tuple[int, str, str]:
        deadline = time.monotonic() + limit
        while self.snnc.poll() is None:
            assert time.monotonic() < deadline, "snnc did not exit"
            self.look()
            time.sleep(0.05)
        out, err = self.snnc.communicate()
        return self.snnc.returncode, out, err

    def assert_nothing_left(self, tmpdir: Path) -> None:
        assert self.group is not None and self.segments, "the run was not seen under way"
        assert _alive_in_group(self.group) == []
        left = {name for name in self.segments if (Path("/dev/shm") / name).exists()}
        assert left == set(), f"{len(left)} of the run's {len(self.segments)} segments left"
        assert self.namespace is not None
        # Lava's channels (psm_*) are all in the run's namespace. (A semaphore can be seen
        # under glibc's temporary name, sem.XXXXXX, for the instant between its creation and
        # multiprocessing's unlink of it; the check above covers those too.)
        outside = sorted(n for n in self.segments
                         if n.startswith("psm_") and not n.startswith(self.namespace))
        assert outside == [], f"segments outside the namespace {self.namespace!r}"
        assert any(n.startswith(self.namespace) for n in self.segments)
        assert sorted(p.name for p in Path("/dev/shm").glob(f"{self.namespace}*")) == []
        assert sorted(p.name for p in tmpdir.iterdir()) == []


def _start(args: list[str], tmpdir: Path) -> subprocess.Popen:
    return subprocess.Popen([str(SNNC), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "TMPDIR": str(tmpdir)})


def _lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=lambda s: signal.Signals(s).name)
def test_a_signal_mid_run_stops_the_run_and_leaves_nothing(signum, artifact, inputs,
                                                            short_tmp):
    snnc = _start(["simulate", artifact, "--input", inputs["many"], "--backend", "lava"],
                  short_tmp)
    watch = Watch(snnc)
    watch.until_running()
    if signum == signal.SIGINT:
        os.killpg(snnc.pid, signum)  # Ctrl-C: the terminal signals snnc's process group
    else:
        os.kill(snnc.pid, signum)
    code, out, err = watch.until_exit(limit=60)
    watch.assert_nothing_left(short_tmp)
    assert "Traceback" not in err and len(_lines(err)) == 1, err
    if signum == signal.SIGINT:
        assert code in (1, 130), err  # the CLI's Ctrl-C status (tools/cli.py)
    else:
        assert code == 1, err
        name = signal.Signals(signum).name
        assert err.strip() == (f"snnc: error: snnc received {name} during the Lava run, "
                               "which was stopped; its processes, shared memory and temp "
                               "folder were removed")


@pytest.mark.timeout(300)
def test_an_ignored_sighup_stays_ignored(artifact, inputs, short_tmp):
    """Under `nohup` (SIGHUP ignored) a hang-up does not stop the run; SIGTERM still does."""
    tmpdir = short_tmp
    snnc = subprocess.Popen(
        [str(SNNC), "simulate", str(artifact), "--input", str(inputs["many"]), "--backend",
         "lava"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True, env={**os.environ, "TMPDIR": str(tmpdir)},
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    watch = Watch(snnc)
    watch.until_running()
    os.kill(snnc.pid, signal.SIGHUP)
    time.sleep(2.0)
    assert snnc.poll() is None and _alive_in_group(watch.group)
    os.kill(snnc.pid, signal.SIGTERM)
    code, out, err = watch.until_exit(limit=60)
    watch.assert_nothing_left(tmpdir)
    assert code == 1 and "snnc received SIGTERM during the Lava run" in err


@pytest.mark.timeout(300)
def test_a_timeout_mid_run_stops_the_run_and_leaves_nothing(artifact, inputs, short_tmp):
    snnc = _start(["simulate", artifact, "--input", inputs["many"], "--backend", "lava",
                   "--lava-timeout", "8"], short_tmp)
    watch = Watch(snnc)
    code, out, err = watch.until_exit()
    watch.assert_nothing_left(short_tmp)
    assert code == 1
    assert _lines(err) == ["snnc: error: the Lava run did not finish within 8 s and was "
                           "stopped (a misconfigured Lava run can hang)"]


@pytest.mark.timeout(300)
def test_a_run_to_the_end_leaves_nothing(artifact, inputs, short_tmp):
    snnc = _start(["simulate", artifact, "--input", inputs["few"], "--backend", "lava"],
                  short_tmp)
    watch = Watch(snnc)
    code, out, err = watch.until_exit()
    assert code == 0, err
    assert "readout argmax per sample" in out
    watch.assert_nothing_left(short_tmp)


def _fake_python(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fake-python"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_a_failed_run_kills_its_whole_group_and_unlinks_its_namespace(artifact, tmp_path,
                                                                       short_tmp, monkeypatch):
    """The clean-up does not depend on the child: a child that leaves a process running in
    its group and a segment in its namespace, then fails, leaves neither behind."""
    marker = tmp_path / "straggler.pid"
    python = _fake_python(tmp_path, f"""
while [ "$1" != "--shm-prefix" ]; do shift; done
echo straggler > /dev/shm/"$2"fake
sleep 300 &
echo $! > {marker}
echo "it broke" >&2
exit 3
""")
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    with pytest.raises(LavaRunError, match="^the Lava run failed: it broke$"):
        run_lava(artifact, np.zeros((1, 1, 8, 8)), T, python=python)
    straggler = int(marker.read_text())
    assert straggler not in _processes() or _processes()[straggler][2] in "ZX"
    assert list(Path("/dev/shm").glob("psm_snnc*_fake")) == []
    assert list(short_tmp.iterdir()) == []


@pytest.mark.parametrize("body, message", [
    ("exit 0\n", "exited with status 0 without writing the run's output"),
    ("exit 1\n", "exited with status 1 and printed no error message"),
    ("kill -9 $$\n", "was killed by SIGKILL"),
])
def test_a_child_without_output_or_message_is_named(artifact, tmp_path, body, message):
    python = _fake_python(tmp_path, body)
    with pytest.raises(LavaRunError) as info:
        run_lava(artifact, np.zeros((1, 1, 8, 8)), T, python=python)
    assert str(info.value).startswith(f"the Lava interpreter '{python}' ")
    assert message in str(info.value)


@pytest.fixture
def no_start(monkeypatch):
    """Fails the test if the Lava child is started."""
    def refuse(*args, **kwargs):
        raise AssertionError("the Lava child was started")
    monkeypatch.setattr(remote.subprocess, "Popen", refuse)


@pytest.mark.parametrize("x, message", [
    (np.zeros((0, 1, 8, 8)), "input 'input': the batch is empty (shape [0, 1, 8, 8])"),
    (np.zeros((T, 0, 1, 8, 8)), "input 'input': the batch is empty (shape [4, 0, 1, 8, 8])"),
    (np.zeros((2, 1, 9, 8)), "expected an array shaped [batch, 1, 8, 8] or [T=4, batch, "
                             "1, 8, 8], got [2, 1, 9, 8]"),
    (np.zeros((1, 8, 8)), "got [1, 8, 8]"),
    (np.zeros((3, 2, 1, 8, 8)), "has 3 time steps but timesteps=4"),
    (np.zeros((1, 1, 8, 8), complex), "dtype complex128 is not numeric"),
    (np.full((1, 1, 8, 8), "a"), "dtype <U1 is not numeric"),
    (np.full((1, 1, 8, 8), np.nan), "contains NaN or infinite values"),
    (np.full((1, 1, 8, 8), -np.inf), "contains NaN or infinite values"),
])
def test_bad_inputs_are_refused_before_lava_starts(artifact, no_start, x, message):
    assert read_artifact(artifact).graph.inputs == ("input",)
    with pytest.raises(SimulationInputError) as info:
        run_lava(artifact, x, T)
    assert message in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"timeout": 0}, "finite number of seconds > 0, got 0"),
    ({"timeout": -5.0}, "got -5.0"),
    ({"timeout": math.nan}, "got nan"),
    ({"timeout": math.inf}, "got inf"),
    ({"timeout": True}, "got True"),
    ({"timeout": "10"}, "got '10'"),
    ({"timesteps": 0}, "timesteps must be an integer >= 1, got 0"),
    ({"timesteps": 2.5}, "got 2.5"),
    ({"precision": "half"}, "precision must be one of fixed, float, got 'half'"),
])
def test_bad_run_options_are_refused_before_lava_starts(artifact, no_start, kwargs, message):
    args = {"timesteps": T, **kwargs}
    timesteps = args.pop("timesteps")
    with pytest.raises(LavaRunError) as info:
        run_lava(artifact, np.zeros((1, 1, 8, 8)), timesteps, **args)
    assert message in str(info.value)


def test_bad_interpreters_are_refused_before_lava_starts(artifact, no_start, tmp_path):
    x = np.zeros((1, 1, 8, 8))
    with pytest.raises(LavaRunError, match="^Lava interpreter not found at "):
        run_lava(artifact, x, T, python=tmp_path / "nope")
    with pytest.raises(LavaRunError, match=f"^Lava interpreter '{tmp_path}' is a directory"):
        run_lava(artifact, x, T, python=tmp_path)
    (tmp_path / "plain").write_text("")
    with pytest.raises(LavaRunError, match="is not executable \\(mode 644\\)"):
        run_lava(artifact, x, T, python=tmp_path / "plain")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(LavaRunError, match="is not a regular file"):
        run_lava(artifact, x, T, python=tmp_path / "fifo")


# The command line: one line, exit 1 or 2, no Lava started.

def _cli(args: list[str], tmpdir: Path, *, starts: bool = False) -> tuple[int, list[str]]:
    """Exit status and stderr lines of `snnc ARGS`; checks that the Lava child was started
    only when `starts`, and that nothing of a started one is left."""
    snnc = _start(args, tmpdir)
    watch = Watch(snnc)
    code, out, err = watch.until_exit(limit=60)
    if not starts:
        assert watch.group is None, "the Lava child was started"
    elif watch.group is not None:  # (a child that exits at once may never be seen)
        assert _alive_in_group(watch.group) == []
    assert list(tmpdir.iterdir()) == []
    return code, _lines(err)


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "-inf", "soon"])
@pytest.mark.parametrize("verb", ["simulate", "check"])
def test_bad_lava_timeouts_are_usage_errors(artifact, inputs, short_tmp, verb, value):
    args = ([verb, artifact, "--backend", "lava", f"--lava-timeout={value}"]
            + (["--input", inputs["few"]] if verb == "simulate" else []))
    code, lines = _cli(args, short_tmp)
    assert code == 2 and len(lines) == 1, lines
    assert "--lava-timeout" in lines[0] and value in lines[0]


@pytest.mark.parametrize("kind, message", [
    ("directory", "is a directory, not a program"),
    ("plain file", "is not executable (mode 644)"),
    ("exits 0", "exited with status 0 without writing the run's output"),
    ("/bin/false", "'/bin/false' exited with status 1 and printed no error message"),
])
@pytest.mark.parametrize("verb", ["simulate", "check"])
def test_bad_lava_pythons_are_one_line(artifact, inputs, tmp_path, short_tmp, verb, kind,
                                       message):
    python = {"directory": tmp_path, "/bin/false": Path("/bin/false")}.get(kind)
    if kind == "plain file":
        python = tmp_path / "plain"
        python.write_text("")
    elif kind == "exits 0":
        python = _fake_python(tmp_path, "exit 0\n")
    args = ([verb, artifact, "--backend", "lava", "--lava-python", python]
            + (["--input", inputs["few"]] if verb == "simulate" else []))
    code, lines = _cli(args, short_tmp, starts=kind in ("exits 0", "/bin/false"))
    assert code == 1 and len(lines) == 1, lines
    assert lines[0].startswith("snnc: error: ") and message in lines[0]
    assert str(python) in lines[0]


def test_an_empty_batch_is_refused_at_once(artifact, tmp_path, short_tmp):
    np.save(tmp_path / "empty.npy", np.zeros((0, 1, 8, 8)))
    code, lines = _cli(["simulate", artifact, "--input", tmp_path / "empty.npy",
                           "--backend", "lava"], short_tmp)
    assert code == 1 and len(lines) == 1, lines
    assert "empty" in lines[0] and ("empty.npy" in lines[0] or "'input'" in lines[0])


def test_the_shm_namespace_names_segments_made_by_a_forked_manager(monkeypatch):
    """What run.py relies on: after use_shm_namespace, segments created through a
    SharedMemoryManager server (forked, as Lava's is) carry the prefix."""
    monkeypatch.setattr(shared_memory, "_make_filename", shared_memory._make_filename)
    use_shm_namespace("psm_snncTEST_")
    with SharedMemoryManager() as manager:
        segment = manager.SharedMemory(64)
        assert segment.name.startswith("psm_snncTEST_") and len(segment.name) == 21
        assert (Path("/dev/shm") / segment.name).exists()
        segment.close()
    assert not (Path("/dev/shm") / segment.name).exists()


@pytest.mark.parametrize("prefix", ["", "a/b", "psm snnc", "x" * 21])
def test_a_bad_shm_prefix_is_refused(prefix):
    with pytest.raises(SnncError, match="--shm-prefix must be 1 to 20 letters"):
        use_shm_namespace(prefix)


def test_a_temp_folder_too_long_for_lavas_socket_is_refused(artifact, no_start, tmp_path,
                                                             monkeypatch):
    """Lava's manager socket would be TMPDIR/snnc-lava-X/pymp-X/listener-X, over Linux's
    107 bytes: refused with a line saying so (Lava itself fails with an AttributeError)."""
    long = tmp_path / ("d" * 60)
    long.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long))
    with pytest.raises(LavaRunError, match="too long for the Unix socket of Lava's shared"):
        run_lava(artifact, np.zeros((1, 1, 8, 8)), T)
    assert list(long.iterdir()) == []
