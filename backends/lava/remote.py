"""Run the Lava backend in the Lava environment from any environment, as a subprocess.

Lava needs Python 3.10 (`.venv-lava`); the compiler runs on 3.11. Data passes through files.
The run has a timeout, and on timeout, failure or Ctrl-C the whole process group (Lava's
forked workers included) is killed, so nothing is left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from snnc.errors import SnncError

ROOT = Path(__file__).resolve().parents[2]


class LavaRunError(SnncError):
    """The Lava run could not start, failed, or timed out."""


def default_lava_python() -> Path:
    """The project's Lava interpreter: <repository>/.venv-lava/bin/python."""
    return ROOT / ".venv-lava" / "bin" / "python"


PRECISIONS = ("fixed", "float")


def run_lava(artifact: str | os.PathLike, x: np.ndarray, timesteps: int, *,
             python: str | os.PathLike | None = None, timeout: float = 600.0,
             precision: str = "fixed") -> dict[str, np.ndarray]:
    """Per-step records of every neuron layer (`[T + latency, batch, ...]`) from Lava.

    precision "fixed" runs the artifact's graph on Lava fixed_pt; "float" runs its float
    reference graph (the graph itself for a float target) on Lava floating_pt."""
    if precision not in PRECISIONS:
        raise LavaRunError(f"precision must be one of {', '.join(PRECISIONS)}, "
                           f"got {precision!r}")
    python = Path(python) if python else default_lava_python()
    if not python.exists():
        raise LavaRunError(f"Lava interpreter not found at {python}; create it with `make "
                           "envs` (Python 3.10 with lava-nc 0.10) or pass --lava-python")
    with tempfile.TemporaryDirectory(prefix="snnc-lava-") as tmp:
        inputs, output = Path(tmp) / "x.npy", Path(tmp) / "out.npz"
        np.save(inputs, np.asarray(x))
        cmd = [str(python), "-m", "snnc.backends.lava.run", str(artifact), "--input", str(inputs),
               "--timesteps", str(timesteps), "--output", str(output),
               "--precision", precision]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(proc)
            raise LavaRunError(f"the Lava run did not finish within {timeout:g} s and was "
                               "stopped (a misconfigured Lava run can hang)") from None
        except BaseException:
            _kill(proc)
            raise
        if proc.returncode != 0:
            lines = [ln for ln in err.splitlines() if ln.strip() and "warn" not in ln.lower()]
            raise LavaRunError(f"the Lava run failed: {lines[-1] if lines else proc.returncode}")
        with np.load(output) as data:
            return {name: data[name] for name in data.files}


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
