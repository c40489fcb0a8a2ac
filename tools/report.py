"""The per-layer table of a compiled artifact: shapes, fixed-point fields, quantization
error and predicted overflow (from `analyses/range_analysis.py`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from snnc.analyses.range_analysis import analyze_ranges
from snnc.artifact import Artifact
from snnc.errors import SnncError
from snnc.ir import FxConv2d, FxDense, FxNeuron
from snnc.ir.printer import escape, format_name
from snnc.targets import get_target

log = logging.getLogger(__name__)


@dataclass
class LayerRow:
    name: str
    op: str
    shape: str
    neurons: int | None = None
    synapses: int | None = None
    cores: int | None = None
    weight_exp: int | None = None
    weight_bits: int | None = None
    max_weight_error: float | None = None
    vth: int | None = None
    dv: int | None = None
    bias_exp: int | None = None
    overflow: str = ""


def layer_rows(artifact: Artifact) -> list[LayerRow]:
    graph = artifact.graph
    quant = artifact.meta.get("quantization", {})
    timesteps = int(artifact.meta.get("timesteps", 1))
    ranges = {}
    if artifact.target != "float":
        ranges = {r.name: r for r in analyze_ranges(graph, timesteps,
                                                    get_target(artifact.target))}
    cores = {}
    if artifact.target != "float":
        from snnc.analyses.mapping import map_to_cores

        try:
            cores = {k: len(v.cores) for k, v in map_to_cores(
                graph, get_target(artifact.target)).layers.items()}
        except SnncError as err:  # shown in the table as no cores; `snnc check` fails on it
            log.warning("core mapping failed: %s", err)
    rows = []
    for node in graph:
        if not isinstance(node, FxConv2d | FxDense | FxNeuron):
            continue
        q = quant.get(node.name, {})
        row = LayerRow(node.name, node.op, "x".join(map(str, node.type.shape)))
        if isinstance(node, FxConv2d | FxDense):
            row.synapses = synapse_count(graph, node)
            row.weight_exp = node.weight_exp
            row.weight_bits = q.get("weight_bits_used")
            row.max_weight_error = q.get("max_weight_error")
        else:
            row.neurons = int(np.prod(node.type.shape))
            row.cores = cores.get(node.name)
            row.vth = getattr(node, "vth", None)
            row.dv, row.bias_exp = node.dv, node.bias_exp
            r = ranges.get(node.name)
            if r is not None:
                row.overflow = "; ".join(sorted(set(r.chip_overflow + r.lava_overflow))) or "none"
        rows.append(row)
    return rows


def synapse_count(graph, node: FxConv2d | FxDense) -> int:
    """Connections a synapse layer makes: weights times the output positions each reaches
    (a convolution's taps that fall inside the padded input only)."""
    if isinstance(node, FxDense):
        return int(node.weight.size)
    c_out, c_in, kh, kw = node.weight.shape
    _, h, w = graph[node.inputs[0]].type.shape
    _, ho, wo = node.type.shape

    def inside(k, n_in, n_out, stride, pad):
        pos = np.arange(n_out)[:, None] * stride - pad + np.arange(k)[None, :]
        return int(((pos >= 0) & (pos < n_in)).sum())

    return c_out * c_in * inside(kh, h, ho, node.stride[0], node.padding[0]) * \
        inside(kw, w, wo, node.stride[1], node.padding[1])


def format_rows(rows: list[LayerRow]) -> str:
    def cell(v, fmt="{}"):
        return "-" if v is None else fmt.format(v)

    lines = [f"{'layer':<26} {'op':<10} {'shape':<10} {'neurons':>7} {'synapses':>9} "
             f"{'cores':>5} {'w_exp':>5} {'w_bits':>6} "
             f"{'max_w_err':>9} {'vth':>6} {'dv':>5} {'b_exp':>5}  overflow"]
    for r in rows:
        lines.append(f"{format_name(r.name):<26} {r.op:<10} {r.shape:<10} "
                     f"{cell(r.neurons, '{:,}'):>7} "
                     f"{cell(r.synapses, '{:,}'):>9} {cell(r.cores):>5} "
                     f"{cell(r.weight_exp):>5} "
                     f"{cell(r.weight_bits):>6} {cell(r.max_weight_error, '{:.2e}'):>9} "
                     f"{cell(r.vth):>6} {cell(r.dv):>5} {cell(r.bias_exp):>5}  "
                     f"{escape(r.overflow) or '-'}")
    return "\n".join(lines)


def resources(artifact: Artifact) -> str:
    """The core map of a quantized artifact (cores per layer, chips), as text."""
    from snnc.analyses.mapping import format_core_map, map_to_cores

    return format_core_map(map_to_cores(artifact.graph, get_target(artifact.target)))


def cost(artifact: Artifact, x, timesteps: int) -> str:
    """Cost-model estimate (cycles, latency, energy) for running the artifact on `x`."""
    import numpy as np

    from snnc.analyses.mapping import map_to_cores
    from snnc.backends.refsim import simulate
    from snnc.tools.cost import estimate_cost, format_cost

    target = get_target(artifact.target)
    spikes = simulate(artifact.graph, x, timesteps).sent
    spikes[artifact.graph.inputs[0]] = np.asarray(x)
    report = estimate_cost(artifact.graph, map_to_cores(artifact.graph, target), spikes,
                           timesteps, target)
    return format_cost(report)
