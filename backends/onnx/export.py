"""`snnc export --format onnx`: the fixed-point program as an ONNX model of one time step, and
the reader that `snnc check --backend onnx --onnx-model FILE` trusts a file through.

The model (lower.py) is the chip's program in its hardware timing: run it T + latency steps,
every state starting at zero and each `state_next/...` output fed back as `state/...`, the
input frame given each step (the same frame, or frame t of a sequence and zeros after T).

    inputs   <input layer>           float64 [batch, *input_shape] (NCHW for images); the
                                     graded payload clip(round(x * scale)) is computed inside
             state/step              int64 scalar, the step counter
             state/<layer>/<var>     int64 [batch, *shape]: u, v (LIF, CubaLIF), v and m
                                     (CLIF), v (readout)
             state/<node>/delay<k>   [batch, *shape]: the node's value k steps ago
    outputs  <layer>                 uint8 spikes of each spiking layer, int64 v of a readout
             state_next/...          the states after the step

Metadata (`metadata_props`): snnc.format, snnc.version, snnc.target, snnc.timesteps (T),
snnc.latency, snnc.timing ("hardware"), snnc.input_shape, snnc.input_layout, snnc.interface
(JSON: inputs, states, records with their depths), snnc.sha256 (of the serialized graph
and the metadata above: a byte changed in a weight is found when the file is read, not as
mismatches later).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from snnc import __version__
from snnc.artifact import Artifact
from snnc.backends.onnx import OnnxError, require
from snnc.backends.onnx.lower import Interface, lower
from snnc.fileio import write_atomic
from snnc.inputs import open_regular
from snnc.ir import FxInput, Graph, Neuron

FORMAT_NAME = "snnc.onnx/1"
OPSET = 21  # BitwiseXor needs 18; onnxruntime 1.17 and later run 21
IR_VERSION = 10
_REQUIRED_META = ("snnc.format", "snnc.version", "snnc.target", "snnc.timesteps",
                  "snnc.latency", "snnc.timing", "snnc.input_shape", "snnc.input_layout",
                  "snnc.interface", "snnc.sha256")


@dataclass(frozen=True)
class OnnxModel:
    """A model and what it declares: the serialized bytes, its metadata and interface."""

    data: bytes
    meta: dict[str, str]
    interface: Interface


def build_model(graph: Graph, *, target: str = "loihi2", timesteps: int | None = None,
                input_layout: str = "frame") -> OnnxModel:
    """The ONNX step of a fixed-point graph; refuses a float graph, a node type with no
    lowering or a value the integer operators cannot hold, naming the layer."""
    onnx, h = require("onnx"), require("onnx.helper")
    require("onnx.checker")
    if not any(isinstance(n, FxInput) for n in graph):
        raise OnnxError("the ONNX export writes the fixed-point program; this graph is float "
                        "(compile with --target loihi2)")
    lw = lower(graph)

    def info(name: str, dtype: np.dtype, dims: list) -> Any:
        return h.make_tensor_value_info(name, h.np_dtype_to_tensor_dtype(dtype), dims)

    body = h.make_graph(lw.b.nodes, "snnc_step",
                        [info(*i) for i in lw.graph_inputs],
                        [info(*o) for o in lw.graph_outputs], initializer=lw.b.initializers)
    model = h.make_model(body, opset_imports=[h.make_opsetid("", OPSET)],
                         producer_name="snnc", producer_version=__version__,
                         doc_string="snnc fixed-point program: one time step, hardware "
                                    "timing, states as inputs and outputs")
    model.ir_version = IR_VERSION
    inputs = lw.interface.inputs
    meta = {
        "snnc.format": FORMAT_NAME, "snnc.version": __version__, "snnc.target": target,
        "snnc.timesteps": "" if timesteps is None else str(int(timesteps)),
        "snnc.latency": str(lw.interface.latency), "snnc.timing": "hardware",
        "snnc.input_shape": json.dumps({i["name"]: i["shape"] for i in inputs}),
        "snnc.input_layout": f"{input_layout}: each step's frame " + ", ".join(
            f"{i['name']} {i['layout']} float64" for i in inputs),
        "snnc.interface": json.dumps(lw.interface.to_json()),
    }
    meta["snnc.sha256"] = _digest(model.graph, meta)
    h.set_model_props(model, meta)
    onnx.checker.check_model(model)
    return OnnxModel(model.SerializeToString(), meta, lw.interface)


def artifact_model(artifact: Artifact) -> OnnxModel:
    """`build_model` for an artifact's graph with its target, T and input layout."""
    if artifact.target == "float":
        raise OnnxError("the ONNX export writes the fixed-point program; the artifact targets "
                        "float (compile with --target loihi2)")
    return build_model(artifact.graph, target=artifact.target,
                       timesteps=artifact.meta.get("timesteps"),
                       input_layout=str(artifact.meta.get("input_layout", "frame")))


def write_onnx(artifact: Artifact, path: str | os.PathLike[str]) -> None:
    """`snnc export --format onnx`: the whole model, or nothing (built before a byte is
    written)."""
    write_atomic(path, artifact_model(artifact).data)


def _digest(graph, meta: dict[str, str]) -> str:
    """SHA-256 of the serialized graph and the other snnc metadata: a byte changed anywhere
    that matters (a weight, the interface) is found when the file is read."""
    h = hashlib.sha256(graph.SerializeToString())
    h.update(json.dumps({k: v for k, v in meta.items() if k != "snnc.sha256"},
                        sort_keys=True).encode())
    return h.hexdigest()


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def read_onnx(path: str | os.PathLike[str]) -> OnnxModel:
    """Read and check an exported model: a damaged or truncated file, a model ONNX's checker
    refuses, or one without snnc's metadata and interface is one error line naming the file
    and the node or field."""
    onnx = require("onnx")
    require("onnx.checker")
    where = f"--onnx-model {os.fspath(path)}"
    with open_regular(path, where, OnnxError) as f:
        data = f.read()
    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:  # protobuf's DecodeError, or a message it cannot parse
        raise OnnxError(f"{where}: not an ONNX model, the protobuf cannot be parsed "
                        f"({_one_line(err) or type(err).__name__})") from None
    try:
        onnx.checker.check_model(model)
    except Exception as err:  # onnx.checker.ValidationError, and the C++ checker's others
        raise OnnxError(f"{where}: ONNX's checker refuses it: {_one_line(err)[:400]}") from None
    meta = {p.key: p.value for p in model.metadata_props}
    odd = [k for k, v in meta.items() if not (isinstance(k, str) and isinstance(v, str))]
    if odd:
        raise OnnxError(f"{where}: field metadata_props[{odd[0]!r}] is not UTF-8 text "
                        "(damaged)")
    missing = [k for k in _REQUIRED_META if k not in meta]
    if missing:
        raise OnnxError(f"{where}: field metadata_props[{missing[0]!r}] is missing; not a model "
                        "written by snnc export --format onnx")
    if meta["snnc.format"] != FORMAT_NAME:
        raise OnnxError(f"{where}: field metadata_props['snnc.format'] = "
                        f"{meta['snnc.format']!r}; this snnc reads {FORMAT_NAME!r}")
    if _digest(model.graph, meta) != meta["snnc.sha256"]:
        raise OnnxError(f"{where}: the graph or metadata is not what snnc wrote: the SHA-256 "
                        "differs from field metadata_props['snnc.sha256'] (damaged, or changed "
                        "after export)")
    try:
        doc = json.loads(meta["snnc.interface"])
        interface = Interface(list(doc["inputs"]), list(doc["states"]), list(doc["records"]),
                              int(doc["latency"]))
        for entries, keys in ((interface.inputs, ("name",)),
                              (interface.states, ("name", "next", "batched")),
                              (interface.records, ("layer", "kind", "depth"))):
            for entry in entries:
                np.dtype(entry["dtype"]), list(entry["shape"]), [entry[k] for k in keys]
    except (ValueError, KeyError, TypeError) as err:
        raise OnnxError(f"{where}: field metadata_props['snnc.interface'] is not the interface "
                        f"snnc writes ({_one_line(err)})") from None
    _check_io(where, model, interface)
    return OnnxModel(data, meta, interface)


def _check_io(where: str, model: Any, interface: Interface) -> None:
    """Every input, state and record the interface names is a graph input or output of the
    declared element type."""
    h = require("onnx.helper")

    def types(values) -> dict[str, np.dtype | None]:
        out = {}
        for v in values:
            elem = v.type.tensor_type.elem_type
            out[v.name] = h.tensor_dtype_to_np_dtype(elem) if elem else None
        return out

    ins, outs = types(model.graph.input), types(model.graph.output)
    wanted = [(ins, i["name"], i["dtype"], "input") for i in interface.inputs]
    wanted += [(ins, s["name"], s["dtype"], "input") for s in interface.states]
    wanted += [(outs, s["next"], s["dtype"], "output") for s in interface.states]
    wanted += [(outs, r["layer"], r["dtype"], "output") for r in interface.records]
    for table, name, dtype, kind in wanted:
        if name not in table:
            raise OnnxError(f"{where}: graph {kind} {name!r}, named in "
                            "metadata_props['snnc.interface'], is missing")
        if table[name] != np.dtype(dtype):
            raise OnnxError(f"{where}: graph {kind} {name!r} is {table[name]}; the interface "
                            f"declares {dtype}")


def check_against(model: OnnxModel, graph: Graph, where: str) -> None:
    """The model is the program of this graph: the same inputs, neuron layers and latency
    (what a run compares layer by layer)."""
    from snnc.analyses.timing import schedule

    iface = model.interface
    inputs = {i["name"]: tuple(i["shape"]) for i in iface.inputs}
    expected = {n: tuple(graph[n].type.shape) for n in graph.inputs}
    if inputs != expected:
        raise OnnxError(f"{where}: field metadata input shapes {inputs} differ from the "
                        f"artifact's inputs {expected}")
    records = {r["layer"]: tuple(r["shape"]) for r in iface.records}
    layers = {n.name: tuple(n.type.shape) for n in graph if isinstance(n, Neuron)}
    if records != layers:
        extra = sorted(set(records) ^ set(layers)) or sorted(
            k for k in layers if records[k] != layers[k])
        raise OnnxError(f"{where}: its records do not match the artifact's neuron layers "
                        f"(first difference: layer {extra[0]!r}); export the model from this "
                        "artifact")
    latency = schedule(graph).latency
    if iface.latency != latency:
        raise OnnxError(f"{where}: field metadata_props['snnc.latency'] = {iface.latency}; "
                        f"the artifact's pipeline has latency {latency}")
