"""Lava as a backend: Lava 0.10's bit-accurate fixed_pt models (and its floating_pt models)
in the Lava environment, through the subprocess runner (`remote.run_lava`).

Importing this module imports no lava-nc: the compile environment reaches Lava through it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from snnc.artifact import Artifact, write_artifact
from snnc.backends import Backend, BackendOption, register
from snnc.backends.lava.remote import check_interpreter, run_lava
from snnc.ir import Graph


@register
class LavaBackend(Backend):
    name = "lava"
    description = ("Lava's fixed_pt (and floating_pt) models, run in the Lava environment "
                   "through a subprocess")
    timing = "hardware"
    precisions = ("fixed", "float")
    labels = {"fixed": "Lava fixed_pt", "float": "Lava floating_pt"}
    needs_fixed_point = True
    float_rung = "lava floating_pt"
    check_samples = 32  # one to two seconds a sample
    check_batch_size = 32  # a run starts Lava (about 3 s): a tenth of 32 small samples
    options = (
        BackendOption("python", "Python of the Lava environment (default: the project's "
                                ".venv-lava).", kind="file", check=check_interpreter),
        BackendOption("timeout", "Seconds before one Lava run is stopped.", 1800.0,
                      kind="seconds"),
    )

    def run(self, graph: str | Graph, x: np.ndarray, timesteps: int) -> dict[str, np.ndarray]:
        if isinstance(graph, str):
            self.graph(graph)  # refuses a precision this artifact cannot run, before Lava
            art, precision, path = self.artifact, graph, self.path
        else:
            precision = self.precision_of(graph)
            art = Artifact(graph, target="loihi2" if precision == "fixed" else "float")
            path = None
        if path is not None:
            return self._run(path, precision, x, timesteps)
        # The subprocess reads an artifact file: write one for an artifact held in memory.
        with tempfile.TemporaryDirectory(prefix="snnc-lava-art-") as tmp:
            return self._run(write_artifact(art, Path(tmp) / "model.snnc"), precision, x,
                             timesteps)

    def _run(self, path, precision: str, x: np.ndarray, timesteps: int
             ) -> dict[str, np.ndarray]:
        return run_lava(path, x, timesteps, python=self.settings["python"],
                        timeout=self.settings["timeout"], precision=precision)
