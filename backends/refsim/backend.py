"""The reference simulator as a backend: its hardware-timed record of a batch
(`refsim.hardware_record`), in this process."""

from __future__ import annotations

import numpy as np

from snnc.backends import Backend, register
from snnc.backends.refsim.simulator import hardware_record
from snnc.ir import Graph


@register
class RefsimBackend(Backend):
    name = "refsim"
    description = "the reference simulator, in this process (bit-accurate for fixed point)"
    timing = "hardware"
    precisions = ("fixed", "float")
    labels = {"fixed": "refsim hardware timing", "float": "refsim hardware timing"}
    is_reference = True

    def run(self, graph: str | Graph, x: np.ndarray, timesteps: int) -> dict[str, np.ndarray]:
        return hardware_record(self.graph(graph) if isinstance(graph, str) else graph, x,
                               timesteps)
