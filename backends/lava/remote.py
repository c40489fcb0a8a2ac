"""Run the Lava backend in the Lava environment from any environment, as a subprocess.

Lava needs Python 3.10 (`.venv-lava`); the compiler runs on 3.11. Data passes through files
in a temp folder. `run_lava` is the one lifecycle of such a run, the same for every way it
ends (success, error, timeout, Ctrl-C/SIGINT, SIGTERM, SIGHUP):

1. **Validate first, in this process**: the interpreter (a runnable file, not a directory),
   the timeout (finite, > 0), the timesteps (>= 1), and x against the artifact's input
   (`[N, *shape]` or `[T, N, *shape]`, N >= 1, real, finite). Lava given an empty batch
   hangs, and a bad shape fails deep inside a worker: neither may reach it.
2. **Start the child in its own session** (`start_new_session`): Lava forks its workers,
   its shared-memory manager and multiprocessing's resource tracker from it, so all of them
   share the child's process group, and a terminal's Ctrl-C reaches only snnc, which then
   decides what happens to the group. Its stderr goes to a file in the temp folder, and
   the temp folder is its TMPDIR: what Lava's multiprocessing puts there (a `pymp-*` folder
   for the shared-memory manager's socket, removed only at a clean exit) goes with it.
3. **Wait in short slices** (`POLL_S`) for the child, the deadline or a signal. For the run's
   duration SIGINT, SIGTERM and SIGHUP (each unless it is ignored, e.g. SIGHUP under
   `nohup`) are only recorded, never acted on inside the lifecycle, so no signal can cut the
   clean-up short; the wait loop sees a recorded one within `POLL_S`.
4. **Stop the group, whatever happened**: SIGKILL to the whole group (also after a success,
   for any straggler), then wait until none of its processes is alive. No grace period
   with SIGTERM first: Lava's workers block in channel reads and do not stop cleanly on
   request, and the clean-up below needs nothing from them. SIGKILL cannot be caught or
   ignored, so the group is gone in milliseconds.
5. **Remove the run's shared memory.** Lava's channels are POSIX shared-memory segments
   (`/dev/shm/psm_*`) created by the `multiprocessing` SharedMemoryManager server it forks;
   only that server's orderly shutdown unlinks them, so a killed run used to leave all of
   them (22 for a run of the stbp_custom example). The child names its segments in a
   private namespace (`run.py --shm-prefix`: `psm_snnc<random>_<random>` instead of
   `psm_<random>`), so once the group is dead this process unlinks exactly this run's
   segments: never a concurrent run's, and none missed, since a name is chosen before its
   segment exists. (The child recording the names it created instead would miss a segment
   created just before the kill and not yet recorded.)
6. **Remove the temp folder** (with everything the child wrote into it), then restore the
   previous signal handlers, then report: a timeout raises LavaRunError; a recorded SIGINT
   goes to the previous SIGINT handler (Python's default raises KeyboardInterrupt: Ctrl-C
   behaves as Ctrl-C does elsewhere in snnc); SIGTERM and SIGHUP raise LavaRunError naming
   the signal. The CLI prints that as one line and exits 1, not the conventional
   128 + signal: it is an error like any other (README: exit status 1 on an error), and
   raising lets every clean-up up the caller's stack run as well.

Signal handlers can only be set from the main thread; a run started from another thread
gets steps 1-6 for success, errors and timeouts, and leaves signals to its caller.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from snnc.artifact import read_artifact
from snnc.backends.lava.run import graph_for
from snnc.environments import lava_python
from snnc.errors import SimulationInputError, SnncError
from snnc.ir import Graph

SHM_DIR = Path("/dev/shm")  # where Linux keeps POSIX shared memory
POLL_S = 0.1                # how often the wait loop looks at the child, clock and signals
GONE_WAIT_S = 10.0          # how long to wait for a killed group to disappear
UNIX_PATH_MAX = 108         # Linux's sockaddr_un.sun_path, its final NUL included
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PRECISIONS = ("fixed", "float")

log = logging.getLogger(__name__)


class LavaRunError(SnncError):
    """The Lava run could not start, failed, timed out or was stopped by a signal."""


def default_lava_python() -> Path:
    """The project's Lava interpreter: <repository>/.venv-lava/bin/python."""
    return lava_python()


def check_interpreter(python: str | os.PathLike | None) -> Path:
    """The Lava interpreter to run (None: the project's), checked to be a runnable file."""
    path = default_lava_python() if python is None else Path(python)
    hint = (f"pass the Lava environment's Python (default {default_lava_python()}) with "
            "--lava-python")
    if not path.exists():
        raise LavaRunError(f"Lava interpreter not found at {path}; create it with `make "
                           "envs` (Python 3.10 with lava-nc 0.10) or pass --lava-python")
    if path.is_dir():
        raise LavaRunError(f"Lava interpreter {str(path)!r} is a directory, not a program; "
                           f"{hint}")
    if not path.is_file():
        raise LavaRunError(f"Lava interpreter {str(path)!r} is not a regular file (a device, "
                           f"FIFO or socket); {hint}")
    if not os.access(path, os.X_OK):
        raise LavaRunError(f"Lava interpreter {str(path)!r} is not executable (mode "
                           f"{path.stat().st_mode & 0o777:o}); {hint}")
    return path


def check_timeout(timeout: object) -> float:
    """The Lava run's timeout in seconds: a finite number > 0."""
    ok = (isinstance(timeout, int | float | np.integer | np.floating)
          and not isinstance(timeout, bool | np.bool_)
          and math.isfinite(timeout) and timeout > 0)
    if not ok:
        raise LavaRunError(f"the Lava timeout must be a finite number of seconds > 0, got "
                           f"{timeout!r}")
    return float(timeout)


def check_timesteps(timesteps: object) -> int:
    """Timesteps per sample: an integer >= 1."""
    if (not isinstance(timesteps, int | np.integer) or isinstance(timesteps, bool)
            or timesteps < 1):
        raise LavaRunError(f"timesteps must be an integer >= 1, got {timesteps!r}")
    return int(timesteps)


def check_batch(graph: Graph, x: object, timesteps: int) -> np.ndarray:
    """x checked against the graph's one input: `[N, *shape]` (the same frame every step) or
    `[T, N, *shape]` with T = timesteps; N >= 1; bool, integer or finite floating point."""
    names = graph.inputs
    if len(names) != 1:
        raise SimulationInputError(f"the Lava backend runs graphs with one input; this one "
                                   f"has {list(names)}")
    return graph[names[0]].check_batch(x, timesteps)


def run_lava(artifact: str | os.PathLike, x: np.ndarray, timesteps: int, *,
             python: str | os.PathLike | None = None, timeout: float = 600.0,
             precision: str = "fixed") -> dict[str, np.ndarray]:
    """Per-step records of every neuron layer (`[T + latency, batch, ...]`) from Lava.

    precision "fixed" runs the artifact's graph on Lava fixed_pt; "float" runs its float
    reference graph (the graph itself for a float target) on Lava floating_pt. However the
    run ends, its processes, shared memory and temp folder are gone when this returns or
    raises (see the module docstring)."""
    if precision not in PRECISIONS:
        raise LavaRunError(f"precision must be one of {', '.join(PRECISIONS)}, "
                           f"got {precision!r}")
    python = check_interpreter(python)
    timeout = check_timeout(timeout)
    timesteps = check_timesteps(timesteps)
    x = check_batch(graph_for(read_artifact(artifact), precision), x, timesteps)
    signals = _Signals()
    try:
        with signals, tempfile.TemporaryDirectory(prefix="snnc-lava-") as tmp:
            _check_socket_room(tmp)
            inputs, output = Path(tmp) / "x.npy", Path(tmp) / "out.npz"
            np.save(inputs, x)
            namespace = f"psm_snnc{secrets.token_hex(4)}_"
            cmd = [str(python), "-m", "snnc.backends.lava.run", str(artifact), "--input",
                   str(inputs), "--timesteps", str(timesteps), "--output", str(output),
                   "--precision", precision, "--shm-prefix", namespace]
            with open(Path(tmp) / "stderr.txt", "w+", errors="replace") as stderr:
                try:
                    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=stderr,
                                            start_new_session=True,
                                            env={**os.environ, "TMPDIR": tmp})
                except OSError as err:
                    raise LavaRunError(f"cannot start the Lava interpreter {str(python)!r}: "
                                       f"{err.strerror or err}") from None
                try:
                    ended = _wait(proc, timeout, signals)
                finally:
                    _stop_group(proc, namespace)
                stderr.seek(0)
                messages = stderr.read()
            if ended == "timeout":
                raise LavaRunError(f"the Lava run did not finish within {timeout:g} s and "
                                   "was stopped (a misconfigured Lava run can hang)")
            if ended == "done":
                return _records(proc.returncode, messages, output, python)
    finally:
        signals.raise_received()  # the user's last word: it replaces any other outcome
    raise AssertionError("unreachable: the run ended on a signal, which raise_received "
                         "raises")  # pragma: no cover


def _check_socket_room(tmp: str) -> None:
    """Lava's shared-memory manager listens on a Unix socket in the child's TMPDIR (this
    run's folder): `TMP/pymp-XXXXXXXX/listener-XXXXXXXX`, at most UNIX_PATH_MAX - 1 bytes.
    A longer one fails inside Lava with a message that names neither."""
    longest = len(os.fsencode(tmp)) + len("/pymp-12345678/listener-12345678")
    if longest > UNIX_PATH_MAX - 1:
        raise LavaRunError(f"the Lava run's temp folder {tmp!r} is {longest - UNIX_PATH_MAX + 1} "
                           "bytes too long for the Unix socket of Lava's shared-memory manager "
                           f"(at most {UNIX_PATH_MAX - 1} bytes with the socket's name); set "
                           "TMPDIR to a folder with a shorter path")


def _wait(proc: subprocess.Popen, timeout: float, signals: _Signals) -> str:
    """"done" (the child exited), "timeout" or "signal", whichever comes first. Waits for
    the child itself, not for its output pipes to close: its stderr goes to a file, because
    a worker left running by a failed child would hold a pipe open until the timeout."""
    deadline = time.monotonic() + timeout
    while signals.received is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout"
        try:
            proc.wait(timeout=min(POLL_S, left))
            return "done"
        except subprocess.TimeoutExpired:
            pass
    return "signal"


def _records(returncode: int, err: str, output: Path, python: Path) -> dict[str, np.ndarray]:
    lines = [ln for ln in err.splitlines() if ln.strip() and "warn" not in ln.lower()]
    last = lines[-1].removeprefix("snnc: error: ") if lines else ""
    if returncode == 0:
        if not output.is_file():
            raise LavaRunError(f"the Lava interpreter {str(python)!r} exited with status 0 "
                               "without writing the run's output; is it the Python of a Lava "
                               "environment (lava-nc 0.10 with snnc installed)?")
        with np.load(output) as data:
            return {name: data[name] for name in data.files}
    if returncode < 0:
        how = f"was killed by {_signal_name(-returncode)}"
        raise LavaRunError(f"the Lava interpreter {str(python)!r} {how}"
                           + (f"; its last message: {last}" if last else ""))
    if last:
        raise LavaRunError(f"the Lava run failed: {last}")
    raise LavaRunError(f"the Lava interpreter {str(python)!r} exited with status "
                       f"{returncode} and printed no error message")


def _stop_group(proc: subprocess.Popen, namespace: str) -> None:
    """Kill the run's process group, wait until it is gone, unlink its shared memory."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # every process of the group has already exited
        pass
    proc.wait()
    deadline = time.monotonic() + GONE_WAIT_S
    while _group_alive(proc.pid):
        if time.monotonic() > deadline:
            log.warning("process group %d of the Lava run is still alive %g s after SIGKILL",
                        proc.pid, GONE_WAIT_S)
            break
        time.sleep(0.01)
    if SHM_DIR.is_dir():
        for entry in SHM_DIR.glob(f"{namespace}*"):
            try:
                entry.unlink()
            except FileNotFoundError:
                pass
            except OSError as err:
                log.warning("cannot remove the Lava run's shared memory %s: %s", entry, err)


def _group_alive(pgid: int) -> bool:
    """Whether a process of group `pgid` is still running (zombies, which hold no memory and
    await their reaper, do not count). Reads /proc where there is one."""
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class _Signals:
    """While entered (in the main thread), SIGINT, SIGTERM and SIGHUP are recorded instead of
    acted on; `raise_received` then delivers the first one: to the previous handler for a
    Python-level one (SIGINT's default raises KeyboardInterrupt), and as LavaRunError."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                previous = signal.getsignal(signum)
                if previous in (signal.SIG_IGN, None):  # ignored (nohup), or set outside Python
                    continue
                self._previous[signum] = signal.signal(signum, self._record)
        return self

    def _record(self, signum: int, frame: object) -> None:
        if self.received is None:
            self.received = signum

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    def raise_received(self) -> None:
        if self.received is None:
            return
        previous = self._previous.get(self.received)
        if callable(previous):
            previous(self.received, None)
        raise LavaRunError(f"snnc received {_signal_name(self.received)} during the Lava run, "
                           "which was stopped; its processes, shared memory and temp folder "
                           "were removed")
