"""The reference simulator as a backend: its hardware-timed record of a batch
(`refsim.hardware_record`), in this process, on the engine and device its options name."""

from __future__ import annotations

import re

import numpy as np

from snnc.backends import Backend, BackendError, BackendOption, register
from snnc.backends.refsim.simulator import ENGINES, hardware_record
from snnc.ir import Graph


def _engine(value: str) -> str:
    if value not in ENGINES:
        raise BackendError(f"--refsim-engine {value!r}: expected one of {', '.join(ENGINES)}")
    return value


def _device(value: str) -> str:
    if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
        raise BackendError(f"--refsim-device {value!r}: expected cpu, cuda or cuda:N")
    if value.startswith("cuda"):  # refused now, before any work, if there is no CUDA device
        from snnc.backends.refsim.int_engine import device_of

        device_of(value)
    return value


@register
class RefsimBackend(Backend):
    name = "refsim"
    description = "the reference simulator, in this process (bit-accurate for fixed point)"
    timing = "hardware"
    precisions = ("fixed", "float")
    labels = {"fixed": "refsim hardware timing", "float": "refsim hardware timing"}
    is_reference = True
    options = (
        BackendOption("engine", f"simulator engine: {', '.join(ENGINES)} (int: fixed-point "
                      "graphs, torch integer tensors, on --refsim-device)", default="numpy",
                      check=_engine),
        BackendOption("device", "the int engine's device: cpu or cuda[:N] (default cpu)",
                      check=_device),
    )

    def run(self, graph: str | Graph, x: np.ndarray, timesteps: int) -> dict[str, np.ndarray]:
        return hardware_record(self.graph(graph) if isinstance(graph, str) else graph, x,
                               timesteps, engine=self.settings["engine"],
                               device=self.settings["device"])
