"""onnxruntime as a backend: the artifact's fixed-point program exported as one ONNX time step
(export.py) and run step by step in onnxruntime on CPU, the states fed back, the batch
vectorised. Its records are the chip's hardware timing, compared by `snnc check` with the
reference simulator's at every step.

Importing this module imports neither onnx nor onnxruntime (the Lava environment has
neither, and its tests import the backend registry): they are imported when a model is
built or run, with a clear error where they are missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from snnc.backends import Backend, BackendOption, register
from snnc.backends.onnx import OnnxError, require
from snnc.inputs import batch_feeds
from snnc.ir import Graph


def _check_model_path(value: Path) -> Path:
    """--onnx-model: an ONNX file snnc wrote, read and checked before the command runs."""
    from snnc.backends.onnx.export import read_onnx

    read_onnx(value)
    return value


@register
class OnnxBackend(Backend):
    name = "onnx"
    description = ("the fixed-point program exported to ONNX (one time step, states as inputs "
                   "and outputs), run in onnxruntime on CPU")
    timing = "hardware"
    precisions = ("fixed",)
    labels = {"fixed": "onnxruntime"}
    needs_fixed_point = True
    options = (
        BackendOption("model", "An .onnx file written by `snnc export --format onnx` to run "
                               "instead of exporting the artifact in memory (checked against "
                               "the artifact).", kind="file", check=_check_model_path),
    )

    def __init__(self, *args, **options) -> None:
        super().__init__(*args, **options)
        self._models: dict[int, object] = {}

    def model(self, graph: Graph):
        """The OnnxModel this run executes: the --onnx-model file, checked against the graph,
        or the graph exported in memory (once per graph)."""
        from snnc.backends.onnx.export import (
            artifact_model,
            build_model,
            check_against,
            read_onnx,
        )

        key = id(graph)
        if key not in self._models:
            path = self.settings["model"]
            if path is not None:
                model = read_onnx(path)
                check_against(model, graph, f"--onnx-model {os.fspath(path)}")
            elif self.artifact is not None and graph is self.artifact.graph:
                model = artifact_model(self.artifact)
            else:
                model = build_model(graph)
            self._models[key] = (graph, model)  # the graph is held: its id stays its own
        return self._models[key][1]

    def run(self, graph: str | Graph, x: np.ndarray, timesteps: int) -> dict[str, np.ndarray]:
        graph = self.graph(graph) if isinstance(graph, str) else graph
        return run_model(self.model(graph), graph, x, timesteps)


def run_model(model, graph: Graph, x, timesteps: int) -> dict[str, np.ndarray]:
    """Run an OnnxModel for T + latency steps on a batch (one onnxruntime session), states
    starting at zero and fed back; returns `{layer: [T + latency, batch, ...]}`: bool spikes
    of each spiking layer, the readout's int64 v (what hardware_record returns)."""
    ort = require("onnxruntime")
    feeds = batch_feeds(graph, x, timesteps, np.dtype(np.float64))  # the simulator's checks
    iface = model.interface
    batch = next(iter(feeds.values())).shape[1]
    steps = timesteps + iface.latency
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(model.data, options, providers=["CPUExecutionProvider"])
    except Exception as err:
        raise OnnxError(f"onnxruntime cannot load the model: {_line(err)}") from None
    states = {s["name"]: np.zeros(([batch] if s["batched"] else []) + list(s["shape"]),
                                  s["dtype"]) for s in iface.states}
    nexts = [s["next"] for s in iface.states]
    layers = [r["layer"] for r in iface.records]
    records = {r["layer"]: np.zeros((steps, batch, *r["shape"]),
                                    bool if r["kind"] == "spikes" else np.int64)
               for r in iface.records}
    for t in range(steps):
        frames = {name: _frame(a, t) for name, a in feeds.items()}
        try:
            out = session.run(layers + nexts, {**frames, **states})
        except Exception as err:
            raise OnnxError(f"onnxruntime failed at step {t}: {_line(err)}") from None
        for layer, value in zip(layers, out, strict=False):
            records[layer][t] = value
        states = dict(zip([s["name"] for s in iface.states], out[len(layers):], strict=True))
    return records


def _frame(feed: np.ndarray, t: int) -> np.ndarray:
    """Step t's frame of a `[T or 1, batch, ...]` feed: the same frame every step, or frame t
    of a sequence and zeros after it (hardware timing's input, analyses/timing.delay)."""
    if feed.shape[0] == 1:
        return feed[0]
    if t < feed.shape[0]:
        return feed[t]
    return np.zeros_like(feed[0])


def _line(err: Exception) -> str:
    return " ".join(str(err).split())[:400]

