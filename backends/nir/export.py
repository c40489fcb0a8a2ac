"""`snnc export M.snnc --format nir -o M.nir`: the artifact's folded float reference graph as a
NIR graph, every node typed (so `nir.read` type-checks it), written whole or not at all.

Time constants are written for dt = `snnc.discretise.EXPORT_DT` (1e-4 s, the step snnTorch's
importer assumes), through `snnc.discretise.to_continuous`: tau = dt / (1 - decay),
r = gain * tau / dt. What NIR cannot express exactly is refused naming the layer and the
reason before anything is written (docs/semantics.md §7): a soft reset, firing on equality
(`>=`), CLIF, a CubaLIF whose reset is delayed or subtracts, a nonzero v_reset, batch norm
left unfolded. Add nodes dissolve into edges (NIR sums a node's incoming values).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from snnc.artifact import Artifact
from snnc.discretise import EXPORT_DT, to_continuous
from snnc.errors import SnncError
from snnc.fileio import write_atomic
from snnc.ir import LIF, Add, AvgPool2d, Conv2d, CubaLIF, Dense, Flatten, Graph, Input, Readout


class NirExportError(SnncError):
    """The graph holds something NIR cannot express exactly."""


def write_nir(artifact: Artifact, path: Path) -> None:
    graph = to_nir(_float_graph(artifact), meta=artifact.meta)
    import nir

    buffer = io.BytesIO()
    nir.write(buffer, graph)
    write_atomic(path, buffer.getvalue())


def _float_graph(artifact: Artifact) -> Graph:
    if artifact.reference is not None:
        return artifact.reference
    if artifact.target == "float":
        return artifact.graph
    raise NirExportError(f"the artifact (target {artifact.target}) keeps no float reference "
                         "graph to export")


def to_nir(graph: Graph, meta=None):
    """The NIRGraph of a float IR graph (nodes keyed by the IR names)."""
    import nir

    refuse = _refusal(graph)
    if refuse:
        raise NirExportError(refuse)
    nodes: dict[str, object] = {}
    edges: list[tuple[str, str]] = []
    sources: dict[str, list[str]] = {}  # IR value -> the NIR nodes whose values sum to it
    for node in graph:
        if isinstance(node, Add):
            sources[node.name] = [s for i in node.inputs for s in sources[i]]
            continue
        key = _free(node.name.replace("/", "_"), nodes)  # "/" separates HDF5 groups
        head = key
        if isinstance(node, Dense) and len(graph[node.inputs[0]].type.shape) != 1:
            head = _free(f"{key}.flatten", nodes)  # NIR's Affine reads a 1-D value
            shape = graph[node.inputs[0]].type.shape
            nodes[head] = _typed(nir.Flatten(input_type={"input": np.array(shape)},
                                             start_dim=0, end_dim=-1), shape,
                                 (int(np.prod(shape)),))
            edges.append((head, key))
        into = [s for i in node.inputs for s in sources[i]]
        if len(set(into)) != len(into):
            raise NirExportError(f"layer {node.name!r} ({node.op}) adds a value to itself; "
                                 "NIR sums distinct edges, and one edge cannot appear twice")
        edges.extend((s, head) for s in into)
        nodes[key] = _node(node, graph)
        sources[node.name] = [key]
    for i, out in enumerate(graph.outputs):
        key = _free(f"output{'' if i == 0 else i}", nodes)
        shape = graph[out].type.shape
        nodes[key] = nir.Output(output_type={"output": np.array(shape)})
        edges.extend((s, key) for s in sources[out])
    metadata = {"source": "snnc", "dt": EXPORT_DT}
    if meta and "timesteps" in meta:
        metadata["timesteps"] = int(meta["timesteps"])
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)


def _refusal(graph: Graph) -> str | None:
    """The first node NIR cannot express, with the reason; None when every one can."""
    for node in graph:
        where = f"layer {node.name!r} ({node.op})"
        if isinstance(node, LIF):
            if node.reset == "soft":
                return (f"{where}: soft reset (v - threshold after a spike); NIR's neurons "
                        "reset to v_reset, so it cannot be exported exactly")
            if node.compare != ">":
                return (f"{where}: fires on v >= threshold; NIR's neurons fire on "
                        "v > v_threshold")
            if node.v_reset != 0.0:
                return (f"{where}: v_reset = {node.v_reset:g}; the IR leaks toward and starts "
                        "at v_reset, NIR leaves the initial state open: only 0 is exact")
        elif isinstance(node, CubaLIF):
            if node.compare != ">":
                return f"{where}: fires on v >= threshold; NIR's CubaLIF fires on v > v_threshold"
            if node.reset not in ("zero", "zero_all") or node.reset_delay:
                return (f"{where}: reset {node.reset!r} with reset_delay={node.reset_delay}; "
                        "NIR's CubaLIF resets v to v_reset at the spike's own step (reset "
                        "'zero', reset_delay False)")
            if node.decay == 1.0 or node.current_decay == 1.0:
                return f"{where}: a decay of 1 needs an infinite NIR time constant"
        elif not isinstance(node, Readout | Input | Dense | Conv2d | AvgPool2d | Flatten | Add):
            return f"{where}: {REASONS.get(node.op, 'has no NIR node')}"
    return None


REASONS = {
    "CLIF": "CLIF's reset depends on a second state (M) and a sigmoid; NIR has no such neuron",
    "BatchNorm": "batch norm left unfolded; NIR has no batch norm node",
}


def _node(node, graph: Graph):
    import nir

    shape = node.type.shape
    if isinstance(node, Input):
        return nir.Input(input_type={"input": np.array(shape)})
    in_shape = graph[node.inputs[0]].type.shape
    if isinstance(node, Dense):
        bias = np.zeros(node.weight.shape[0]) if node.bias is None else node.bias
        return nir.Affine(weight=_f32(node.weight), bias=_f32(bias))
    if isinstance(node, Conv2d):
        bias = np.zeros(node.weight.shape[0]) if node.bias is None else node.bias
        return nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=_f32(node.weight),
                          stride=node.stride, padding=node.padding, dilation=(1, 1), groups=1,
                          bias=_f32(bias))
    if isinstance(node, AvgPool2d):
        return _typed(nir.AvgPool2d(kernel_size=np.array(node.kernel),
                                    stride=np.array(node.stride),
                                    padding=np.array(node.padding)), in_shape, shape)
    if isinstance(node, Flatten):
        return _typed(nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0,
                                  end_dim=-1), in_shape, shape)
    full = np.ones(shape)
    if isinstance(node, LIF):
        tau, r = to_continuous(node.decay, node.gain)
        thr = _per_neuron(node.threshold, shape)
        if tau is None:
            return nir.IF(r=full * r, v_threshold=thr, v_reset=0 * full)
        return nir.LIF(tau=full * tau, r=full * r, v_leak=0 * full, v_threshold=thr,
                       v_reset=0 * full)
    if isinstance(node, CubaLIF):
        tau_mem, r = to_continuous(node.decay, 1.0)
        tau_syn, w_in = to_continuous(node.current_decay, 1.0)
        return nir.CubaLIF(tau_syn=full * tau_syn, tau_mem=full * tau_mem, r=full * r,
                           v_leak=0 * full, v_threshold=_per_neuron(node.threshold, shape),
                           v_reset=0 * full, w_in=full * w_in)
    if isinstance(node, Readout):
        tau, r = to_continuous(node.decay, 1.0)
        if tau is None:
            return nir.I(r=full * r)
        return nir.LI(tau=full * tau, r=full * r, v_leak=0 * full)
    raise NirExportError(f"layer {node.name!r} ({node.op}) has no NIR node")


def _per_neuron(threshold, shape: tuple[int, ...]) -> np.ndarray:
    t = np.asarray(threshold, dtype=np.float64)
    if t.ndim == 1 and len(shape) > 1:
        t = t.reshape((-1,) + (1,) * (len(shape) - 1))
    return np.broadcast_to(t, shape).copy()


def _typed(node, in_shape, out_shape):
    node.input_type = {"input": np.array(in_shape)}
    node.output_type = {"output": np.array(out_shape)}
    return node


def _f32(a: np.ndarray) -> np.ndarray:
    """The reference graph holds float32 values in float64 arrays: stored as float32, the
    precision NIR's readers load weights in, without changing a value."""
    out = np.asarray(a, dtype=np.float32)
    return out if np.array_equal(out.astype(np.float64), a) else np.asarray(a, np.float64)


def _free(name: str, taken) -> str:
    while name in taken:
        name = f"{name}_"
    return name
