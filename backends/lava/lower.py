"""Lower a fixed-point graph to Lava processes and run it, bit-accurate (fixed_pt).

Timing is the reference simulator's hardware timing (backends/refsim/timing.py): each
synapse is one Lava Dense (a Conv2d expanded to its dense matrix on the flattened (C, H, W)
order; Lava's Conv process ignores weight_exp and mis-sizes its first buffer), a shortcut
that must wait is a DelayDense, and an Add is the summing of several Dense into one neuron
port. Samples run back to back, one period each: T + latency steps, then `1 + max delay`
silent steps in which every synapse buffer drains and every neuron returns to zero.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import DelayDense, Dense

from snnc.backends.lava.processes import GradedSource, SnncNeuron
from snnc.backends.refsim.timing import schedule
from snnc.errors import SnncError, UnsupportedNodeError
from snnc.ir import Add, FxCLIF, FxConv2d, FxDense, FxInput, FxLIF, FxNeuron, FxReadout, Graph
from snnc.ir.node import channel_view

log = logging.getLogger(__name__)


class LavaBuildError(SnncError):
    """The graph cannot be lowered to Lava."""


@dataclass
class Plan:
    timesteps: int
    latency: int
    period: int
    samples: int
    depth: dict[str, int]
    delays: dict[tuple[str, str], int]

    @property
    def steps(self) -> int:
        return self.period * self.samples


def conv_matrix(node: FxConv2d, in_shape: tuple[int, int, int]) -> np.ndarray:
    """The convolution as a dense [C_out*Ho*Wo, C_in*H*W] integer matrix (C-order flattening)."""
    c_out, c_in, kh, kw = node.weight.shape
    _, h, w = in_shape
    _, ho, wo = node.type.shape
    (sh, sw), (ph, pw) = node.stride, node.padding
    m = np.zeros((c_out * ho * wo, c_in * h * w), np.int32)
    oi, oj = np.meshgrid(np.arange(ho), np.arange(wo), indexing="ij")
    for p in range(kh):
        for q in range(kw):
            ii, jj = oi * sh - ph + p, oj * sw - pw + q
            ok = (ii >= 0) & (ii < h) & (jj >= 0) & (jj < w)
            rows_pos, cols_pos = (oi * wo + oj)[ok], (ii * w + jj)[ok]
            for o in range(c_out):
                for c in range(c_in):
                    m[o * ho * wo + rows_pos, c * h * w + cols_pos] = node.weight[o, c, p, q]
    return m


def input_frames(node: FxInput, x: np.ndarray, plan: Plan) -> np.ndarray:
    """Integer payload per step for all samples, [steps, n]: the sample's frame during its
    T + latency steps (a sequence: its T frames, then zeros), zeros while buffers drain."""
    lo, hi = node.limits
    n = int(np.prod(node.shape))
    sequence = x.ndim == len(node.shape) + 2
    frames = np.zeros((plan.steps, n), np.int64)
    q = np.clip(np.rint(x * node.scale), lo, hi).astype(np.int64)
    for b in range(plan.samples):
        base = b * plan.period
        if sequence:
            frames[base:base + plan.timesteps] = q[:, b].reshape(plan.timesteps, n)
        else:
            frames[base:base + plan.timesteps + plan.latency] = q[b].reshape(1, n)
    return frames


Lowering = Callable[..., object]


def _synapse(node, graph: Graph, plan: Plan, consumer: str):
    weights = node.weight.reshape(node.weight.shape[0], -1) if isinstance(node, FxDense) else \
        conv_matrix(node, graph[node.inputs[0]].type.shape)
    graded = isinstance(graph[node.inputs[0]], FxInput)
    kwargs = {"weights": weights.astype(np.int32), "weight_exp": int(node.weight_exp),
              "num_weight_bits": 8, "num_message_bits": 24 if graded else 0}
    extra = plan.delays.get((node.name, consumer), 0)
    if extra:
        return DelayDense(delays=int(extra), **kwargs)
    return Dense(**kwargs)


def _neuron(node: FxNeuron, plan: Plan):
    shape = (int(np.prod(node.type.shape)),)
    per_channel = channel_view(np.asarray(node.bias_mant, np.int64), node.type.shape)
    bias = np.broadcast_to(per_channel, node.type.shape).reshape(shape)
    common = {"shape": shape, "steps": plan.steps, "start": plan.depth[node.name],
              "end": plan.timesteps + plan.latency, "period": plan.period, "du": 4095,
              "dv": int(node.dv), "bias_mant": bias.astype(np.int32),
              "bias_exp": np.full(shape, node.bias_exp, np.int32)}
    if isinstance(node, FxLIF):
        return SnncNeuron(kind=node.reset, vth=int(node.vth), reset_sub=int(node.reset_sub),
                          **{**common, "du": int(node.du)})
    if isinstance(node, FxCLIF):
        tables = {k: getattr(node, k) for k in ("sig_lut", "sig_mult", "sig_shift",
                                                 "reset_lut", "m_shift")}
        return SnncNeuron(kind="clif", vth=int(node.vth), reset_sub=int(node.reset_sub),
                          clif=tables, **common)
    return SnncNeuron(kind="readout", vth=(1 << 17) - 1, **common)


LOWERINGS: dict[type, str] = {FxInput: "GradedSource", FxDense: "Dense", FxConv2d: "Dense",
                              Add: "summed ports", FxLIF: "SnncNeuron", FxCLIF: "SnncNeuron",
                              FxReadout: "SnncNeuron"}


def make_plan(graph: Graph, timesteps: int, samples: int) -> Plan:
    for node in graph:
        if type(node) not in LOWERINGS:
            raise UnsupportedNodeError(node.name, node.op, "the Lava backend",
                                       [t.__name__ for t in LOWERINGS])
    s = schedule(graph)
    flush = 1 + max(s.delays.values(), default=0)
    return Plan(timesteps, s.latency, timesteps + s.latency + flush, samples, s.depth, s.delays)


def run_fixed(graph: Graph, x: np.ndarray, timesteps: int) -> dict[str, np.ndarray]:
    """Run on Lava fixed_pt; returns every neuron's per-step output `[T + latency, batch, ...]`
    (spikes, or the readout's v), like the reference simulator's hardware-timing raw record."""
    (inp,) = (n for n in graph if isinstance(n, FxInput))
    batch = x.shape[-len(inp.shape) - 1]
    plan = make_plan(graph, timesteps, batch)
    source = GradedSource(frames=input_frames(inp, x, plan))
    procs: dict[str, object] = {inp.name: source}
    neurons = [n for n in graph if isinstance(n, FxNeuron)]
    for n in neurons:
        procs[n.name] = _neuron(n, plan)
    for n in neurons:
        consumer = graph[n.inputs[0]]
        for syn in graph.sum_terms(n.inputs[0]):
            dense = _synapse(syn, graph, plan, consumer.name if isinstance(consumer, Add)
                             else n.name)
            procs[syn.inputs[0]].s_out.connect(dense.s_in)
            dense.a_out.connect(procs[n.name].a_in)
    first = procs[neurons[0].name]
    try:
        first.run(condition=RunSteps(num_steps=plan.steps),
                  run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        logs = {n.name: procs[n.name].record.get() for n in neurons}
    finally:
        first.stop()
    window = timesteps + plan.latency
    out = {}
    for n in neurons:
        steps = logs[n.name].reshape(batch, plan.period, *n.type.shape)[:, :window]
        out[n.name] = np.swapaxes(steps, 0, 1)
    return out
