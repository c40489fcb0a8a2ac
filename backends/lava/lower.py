"""Lower a graph to Lava processes and run it: a fixed-point graph bit-accurately on Lava's
fixed_pt models (`run_fixed`), a float graph on its floating_pt models (`run_float`).

Timing is the reference simulator's hardware timing (analyses/timing.py): each
synapse is one process with Lava Dense's contract, a Dense for a dense layer (a DelayDense
for a shortcut that must wait) and an SnncConv for a convolution (models/conv.py: the
kernel over sliding windows, memory proportional to weights and neurons; Lava's own Conv
ignores weight_exp and mis-sizes its first buffer), and an Add is the summing of several
synapses into one neuron port. A split fan-in's partial sums are synapses over zero-padded
weights (a FxChannelSlice is routing, a relay its input's ports) summed into one SnncMerge
(models/merge.py), which applies the exponent once, a hop later. Samples run back to back,
one period each: T + latency steps, then silent steps in which every synapse buffer drains
and every neuron returns to rest (`1 + max delay` of them unless stock LIF layers feed each
other, see `period`).

Each node type has a lowering, registered with `@lowering(NodeType, ...)`: it builds the
node's Lava processes, connects them to its inputs' ports and returns the OutPorts that carry
the node's value (an Add returns its inputs' ports, which meet at the neuron's InPort).

Float precision. Lava's floating_pt Dense computes `W @ s` as one matrix-vector product, and
SnncConv one product of the kernel with the input's windows; the reference simulator sums a
convolution tap by tap, and adds each synapse's bias to its own output, where here the
biases (the synapse processes have none) are summed into the neuron and added after the
port has summed the synapses. So the synaptic input may
differ in its last bits, and a spike may differ where a neuron's value lies within those bits
of its threshold. Everything after the synaptic sum is the reference's arithmetic in its
order (processes.PySnncNeuronFloat): when the sums are exact (weights, biases and inputs on a
binary grid coarse enough) the two agree bit for bit.

Stock Lava processes. Dense and DelayDense are Lava's own, and so is the neuron of an FxLIF
that Lava's stock LIF computes exactly (`stock_lif`: hard reset to 0, one vth, du = 4095, no
bias): Lava's `LIFReset` (the stock LIF with its state zeroed every `reset_interval` steps;
model PyLifResetModelBitAcc, the same equations as PyLifModelBitAcc), its spikes kept by a
StepRecorder. Plain `LIF` cannot be exact here: samples run back to back in one Lava run,
and a stock LIF never returns to zero between them (v only decays, by (4096 - dv) / 4096 a
step, never for dv = 0), while LIFReset zeroes u and v at the first step of each period.
Without bias, a layer whose inputs are still zero needs no gating before its first valid
step. What LIFReset lacks is SnncNeuron's silence after the window: it keeps integrating the
products that arrive after it and fires on them, so a stock layer feeding another extends
the silent steps until those late spikes have drained (`period`); without current memory
(du = 4095) it fires only at steps where input arrives, which bounds them. Measured on a
residual graph with two such layers, 20 samples: plain LIF, 39 spike and 40 readout
mismatches; LIFReset with the SnncNeuron-only silent steps, 464 and 16; as here, 0. Soft reset,
CLIF, readouts, biased layers and float graphs stay on SnncNeuron (Lava's float LIF
computes v * (1 - dv) + u + bias, another association of the sums than the reference's).
CubaLIF (snnTorch's reset rule) runs as SnncNeuron's "cuba" kind at both precisions.

(No `from __future__ import annotations` here: Lava's model search executes every module
of this folder again under its bare name, and a dataclass with string annotations fails
to import outside `sys.modules`.)
"""

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense import process as lava_dense
from lava.proc.lif.process import LIFReset

from snnc.analyses.timing import is_synapse, schedule
from snnc.backends.lava.models.conv import SnncConv, exact_in_float64
from snnc.backends.lava.models.merge import SnncMerge
from snnc.backends.lava.models.processes import (
    CUBA_RESETS,
    FixedParams,
    FloatParams,
    GradedSource,
    SnncNeuron,
    StepRecorder,
)
from snnc.backends.lava.validate import (
    LavaBuildError,
    delay_problems,
    synapse_delays,
    validate_for_lava,
)
from snnc.errors import UnsupportedNodeError
from snnc.ir import (
    CLIF,
    LIF,
    Add,
    Conv2d,
    CubaLIF,
    Dense,
    FxChannelSlice,
    FxCLIF,
    FxConv2d,
    FxCubaLIF,
    FxDense,
    FxInput,
    FxLIF,
    FxMerge,
    FxNeuron,
    FxPartialSum,
    FxReadout,
    Graph,
    Input,
    Neuron,
    Node,
    Readout,
)
from snnc.ir.node import channel_view
from snnc.ir.payload import input_payload
from snnc.ir.widths import FORMAT

log = logging.getLogger(__name__)

__all__ = ["LOWERINGS", "LavaBuildError", "lowering", "run_fixed", "run_float",
           "validate_for_lava"]


@dataclass
class Plan:
    timesteps: int
    latency: int
    period: int
    samples: int
    depth: dict[str, int]
    delays: dict[str, int]  # synapse -> extra steps to its neuron (validate.synapse_delays)

    @property
    def steps(self) -> int:
        return self.period * self.samples


@dataclass
class Build:
    """What the lowerings share while they build one Lava network."""

    graph: Graph
    plan: Plan
    x: np.ndarray
    records: Path  # the folder the neuron processes save their step records into
    ports: dict[str, list] = field(default_factory=dict)  # node -> OutPorts carrying its value
    #: neuron name -> the process whose `record` holds its steps (SnncNeuron or StepRecorder)
    neurons: dict[str, SnncNeuron | StepRecorder] = field(default_factory=dict)

    def record_file(self, name: str) -> str:
        """Where layer `name`'s process saves its record (one file per layer)."""
        return str(self.records / f"{list(self.graph.nodes).index(name)}.npy")


Lowering = Callable[[Node, Build], list]

#: Node type -> the function that builds its Lava processes (fixed and float graphs alike).
LOWERINGS: dict[type[Node], Lowering] = {}


def lowering(*types: type[Node]) -> Callable[[Lowering], Lowering]:
    """Register the decorated function as the lowering of `types`."""
    def register(fn: Lowering) -> Lowering:
        for t in types:
            if t in LOWERINGS:
                raise TypeError(f"a Lava lowering for {t.__name__} is already registered")
            LOWERINGS[t] = fn
        return fn
    return register


def lowering_for(node: Node) -> Lowering:
    try:
        return LOWERINGS[type(node)]
    except KeyError:
        raise UnsupportedNodeError(node.name, node.op, "the Lava backend",
                                   [t.__name__ for t in LOWERINGS]) from None


# -- inputs ------------------------------------------------------------------------------------

def input_frames(node: Input, x: np.ndarray, plan: Plan) -> np.ndarray:
    """Payload per step for all samples, [steps, n]: the sample's frame during its
    T + latency steps (a sequence: its T frames, then zeros), zeros while buffers drain.
    Integers `clip(round(x * scale))` for an FxInput, the float64 values for a float Input."""
    n = int(np.prod(node.shape))
    sequence = x.ndim == len(node.shape) + 2
    if isinstance(node, FxInput):
        values = input_payload(node, x)
    else:
        values = np.asarray(x, np.float64)
    frames = np.zeros((plan.steps, n), values.dtype)
    for b in range(plan.samples):
        base = b * plan.period
        if sequence:
            frames[base:base + plan.timesteps] = values[:, b].reshape(plan.timesteps, n)
        else:
            frames[base:base + plan.timesteps + plan.latency] = values[b].reshape(1, n)
    return frames


@lowering(FxInput, Input)
def _input(node: Input, build: Build) -> list:
    return [GradedSource(frames=input_frames(node, build.x, build.plan)).s_out]


# -- synapses and sums -------------------------------------------------------------------------

@lowering(FxConv2d, FxDense, Conv2d, Dense)
def _synapse(node: Conv2d | Dense, build: Build) -> list:
    src = build.graph[node.inputs[0]]
    weight = None  # the node's own, unless it reads a slice
    if isinstance(src, FxChannelSlice):  # a partial sum of a split fan-in
        src, weight = build.graph[src.inputs[0]], unsliced_weight(node, src, build.graph)
    if not (isinstance(src, Input) or (isinstance(src, Neuron) and src.spiking)):
        raise LavaBuildError(f"layer {node.name!r} ({node.op}) reads {src.name!r} ({src.op});"
                             " on Lava a synapse reads the input or a spiking layer")
    fixed = isinstance(node, FxConv2d | FxDense)
    delay = build.plan.delays[node.name]
    if isinstance(node, Conv2d):
        syn = conv_process(node, src, delay, weight)
    else:
        weight = node.weight if weight is None else weight
        weights = weight.reshape(weight.shape[0], -1)
        kwargs = {"num_message_bits": FORMAT.message_bits if isinstance(src, Input) else 0}
        if fixed:
            kwargs.update(weights=weights.astype(np.int32), weight_exp=int(node.weight_exp),
                          num_weight_bits=FORMAT.weight_bits)
        else:
            kwargs.update(weights=weights.astype(np.float64))  # its bias goes to the neuron
        syn = lava_dense.DelayDense(delays=delay, **kwargs) if delay else \
            lava_dense.Dense(**kwargs)
    (port,) = build.ports[src.name]
    port.connect(syn.s_in)
    return [syn.a_out]


def unsliced_weight(node: FxConv2d | FxDense, sliced: FxChannelSlice, graph: Graph) -> np.ndarray:
    """The weights of a synapse that reads channels [start, stop) of a value, as weights
    over the whole value, zero on the other channels: Lava ports carry whole values, and
    every product with a zero weight adds exactly 0."""
    shape = graph[sliced.inputs[0]].type.shape
    w = node.weight
    if isinstance(node, FxConv2d):
        full = np.zeros((w.shape[0], shape[0], *w.shape[2:]), w.dtype)
        full[:, sliced.start:sliced.stop] = w
        return full
    per = int(np.prod(shape[1:]))
    full = np.zeros((w.shape[0], shape[0], per), w.dtype)
    full[:, sliced.start:sliced.stop] = w.reshape(w.shape[0], -1, per)
    return full.reshape(w.shape[0], -1)


def conv_process(node: Conv2d, src: Node, delay: int,
                 weight: np.ndarray | None = None) -> SnncConv:
    """A Conv2d as one SnncConv process (models/conv.py): its kernel (or `weight`, the same
    over the whole input), never a dense matrix. Its bias goes to the neuron, as for a Dense."""
    fixed = isinstance(node, FxConv2d)
    weights = (node.weight if weight is None else weight).astype(
        np.int32 if fixed else np.float64)
    if fixed:
        largest = (1 << FORMAT.message_bits) if isinstance(src, Input) else 1
        fan_in = int(np.prod(weights.shape[1:]))
        if not exact_in_float64(weights, largest, fan_in):
            raise LavaBuildError(f"layer {node.name!r} ({node.op}): sums of up to {fan_in} "
                                 f"products of weights to {int(np.abs(weights).max())} and "
                                 f"inputs to {largest} may not be exact in float64")
    extra = {"weight_exp": int(node.weight_exp), "num_weight_bits": FORMAT.weight_bits} \
        if fixed else {}
    return SnncConv(weights=weights, in_shape=src.type.shape, out_shape=node.type.shape,
                    stride=node.stride, padding=node.padding, delay=delay, **extra)


@lowering(FxChannelSlice, FxPartialSum)
def _pass_through(node: FxChannelSlice | FxPartialSum, build: Build) -> list:
    """A split fan-in's routing: a synapse reads a FxChannelSlice through zero weights on the
    other channels (`unsliced_weight`), and a relay sends its partial sum on as it arrives,
    so both are their input's ports."""
    if isinstance(node, FxPartialSum) and not isinstance(build.graph[node.inputs[0]],
                                                         FxConv2d | FxDense):
        src = build.graph[node.inputs[0]]
        raise LavaBuildError(f"layer {node.name!r} (FxPartialSum) relays {src.name!r} "
                             f"({src.op}); on Lava a relay relays one partial-sum synapse")
    return build.ports[node.inputs[0]]


@lowering(FxMerge)
def _merge(node: FxMerge, build: Build) -> list:
    relays = [build.graph[r] for r in node.inputs]
    late = [r.name for r in relays if not isinstance(r, FxPartialSum)
            or build.plan.depth[r.name] != build.plan.depth[relays[0].name]]
    if late:
        raise LavaBuildError(f"layer {node.name!r} (FxMerge) merges {late}, which are not "
                             "relays (FxPartialSum) of one depth")
    merge = SnncMerge(shape=(int(np.prod(node.type.shape)),), weight_exp=node.weight_exp,
                      delay=build.plan.delays[node.name])
    for relay in relays:
        for port in build.ports[relay.name]:
            port.connect(merge.a_in)
    return [merge.a_out]


@lowering(Add)
def _add(node: Add, build: Build) -> list:
    for name in node.inputs:
        term = build.graph[name]
        if not (is_synapse(term) or isinstance(term, Add)):
            raise LavaBuildError(f"layer {node.name!r} (Add) sums {name!r} ({term.op}); on Lava "
                                 "an Add sums synaptic inputs (Conv2d, Dense) at a neuron port")
    return [port for name in node.inputs for port in build.ports[name]]


# -- neurons -----------------------------------------------------------------------------------

def per_neuron(value, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A scalar, per-channel `(C,)` or per-neuron parameter as one value per neuron, flat."""
    per_channel = channel_view(np.asarray(value, dtype), shape)
    return np.broadcast_to(per_channel, shape).reshape(-1).copy()


def _check_synaptic_input(node: Neuron, build: Build) -> None:
    src = build.graph[node.inputs[0]]
    if not (is_synapse(src) or isinstance(src, Add)):
        raise LavaBuildError(f"layer {node.name!r} ({node.op}) reads {src.name!r} ({src.op}); "
                             "on Lava a neuron reads synapses (Conv2d, Dense) or their Add")


def _neuron(node: Neuron, build: Build, kind: str, params: FixedParams | FloatParams) -> list:
    src = build.graph[node.inputs[0]]
    plan = build.plan
    proc = SnncNeuron(shape=(int(np.prod(node.type.shape)),), steps=plan.steps, kind=kind,
                      start=plan.depth[node.name], end=plan.timesteps + plan.latency,
                      period=plan.period, params=params,
                      record_file=build.record_file(node.name))
    for port in build.ports[src.name]:
        port.connect(proc.a_in)
    build.neurons[node.name] = proc
    return [proc.s_out]


def _fx_lif(node: FxLIF, common: dict) -> tuple[str, FixedParams]:
    return node.reset, FixedParams(du=int(node.du), vth=int(node.vth),
                                   reset_sub=int(node.reset_sub), **common)


def _fx_clif(node: FxCLIF, common: dict) -> tuple[str, FixedParams]:
    tables = {k: getattr(node, k) for k in ("sig_lut", "sig_mult", "sig_shift", "reset_lut",
                                             "m_shift")}
    return "clif", FixedParams(du=FORMAT.decay_max, vth=int(node.vth),
                               reset_sub=int(node.reset_sub), **tables, **common)


def _fx_cuba_lif(node: FxCubaLIF, common: dict) -> tuple[str, FixedParams]:
    return "cuba", FixedParams(du=int(node.du), vth=int(node.vth),
                               reset_sub=int(node.reset_sub),
                               cuba_reset=CUBA_RESETS[node.reset],
                               reset_delay=int(node.reset_delay), **common)


def _fx_readout(node: FxReadout, common: dict) -> tuple[str, FixedParams]:
    return "readout", FixedParams(du=FORMAT.decay_max, vth=FORMAT.vth_max, **common)


#: Fixed-point neuron type (exact) -> the SnncNeuron kind and integer parameters it runs as
#: (processes.PySnncNeuronFixed; an FxLIF that stock Lava runs exactly goes to `_stock_lif`).
FIXED_NEURONS: dict[type[Node], Callable[[Node, dict], tuple[str, FixedParams]]] = {
    FxLIF: _fx_lif,
    FxCLIF: _fx_clif,
    FxCubaLIF: _fx_cuba_lif,
    FxReadout: _fx_readout,
}


def neuron_rule(table: dict, node: Node, where: str) -> Callable:
    """The entry of a neuron table for the node's exact type, or UnsupportedNodeError naming
    the node, its type and the types the table knows."""
    try:
        return table[type(node)]
    except KeyError:
        raise UnsupportedNodeError(node.name, node.op, where,
                                   [t.__name__ for t in table]) from None


@lowering(FxLIF, FxCLIF, FxCubaLIF, FxReadout)
def _fixed_neuron(node: FxLIF | FxCLIF | FxCubaLIF | FxReadout, build: Build) -> list:
    rule = neuron_rule(FIXED_NEURONS, node, "the Lava fixed_pt neuron model")
    _check_synaptic_input(node, build)
    shape = node.type.shape
    common = {"dv": int(node.dv), "bias_mant": per_neuron(node.bias_mant, shape, np.int32),
              "bias_exp": np.full(int(np.prod(shape)), node.bias_exp, np.int32)}
    if stock_lif(node):
        return _stock_lif(node, build)
    kind, params = rule(node, common)
    return _neuron(node, build, kind, params)


def stock_lif(node: Node) -> bool:
    """Whether Lava's stock LIF (as LIFReset) runs this layer exactly: an FxLIF with hard reset
    to 0, no current memory (du = 4095: it fires only at steps with input) and no bias (no
    need to hold a bias off before the layer's first valid step). See the module docstring."""
    return (isinstance(node, FxLIF) and node.reset == "hard" and node.du == FORMAT.decay_max
            and not np.any(node.bias_mant))


def _stock_lif(node: FxLIF, build: Build) -> list:
    """Lava's LIFReset, reset at the first step of every sample's period, its spikes kept by a
    StepRecorder on its s_out."""
    shape = (int(np.prod(node.type.shape)),)
    lif = LIFReset(shape=shape, du=FORMAT.decay_max, dv=int(node.dv), vth=int(node.vth),
                   bias_mant=0, bias_exp=0, reset_interval=build.plan.period, reset_offset=1)
    recorder = StepRecorder(shape=shape, steps=build.plan.steps,
                            record_file=build.record_file(node.name))
    lif.s_out.connect(recorder.a_in)
    for port in build.ports[node.inputs[0]]:
        port.connect(lif.a_in)
    build.neurons[node.name] = recorder
    return [lif.s_out]


def synapse_bias(node: Neuron, build: Build) -> np.ndarray:
    """The sum of the biases of the synapses feeding `node`, one per neuron (float graphs)."""
    shape = node.type.shape
    total = np.zeros(int(np.prod(shape)))
    for syn in build.graph.sum_terms(node.inputs[0]):
        if syn.bias is not None:
            total = total + per_neuron(syn.bias, shape, np.float64)
    return total


def _lif(node: LIF, threshold: np.ndarray, bias: np.ndarray) -> tuple[str, FloatParams]:
    return node.reset, FloatParams(
        threshold=threshold, bias=bias, decay=node.decay, gain=node.gain,
        v_reset=node.v_reset if node.reset == "hard" else 0.0, strict=node.compare == ">")


def _clif(node: CLIF, threshold: np.ndarray, bias: np.ndarray) -> tuple[str, FloatParams]:
    return "clif", FloatParams(threshold=threshold, bias=bias, decay=node.decay, tau=node.tau,
                               strict=node.compare == ">")


def _cuba_lif(node: CubaLIF, threshold: np.ndarray, bias: np.ndarray
              ) -> tuple[str, FloatParams]:
    return "cuba", FloatParams(threshold=threshold, bias=bias, decay=node.decay,
                               current_decay=node.current_decay, strict=node.compare == ">",
                               cuba_reset=CUBA_RESETS[node.reset],
                               reset_delay=int(node.reset_delay))


def _readout(node: Readout, threshold: None, bias: np.ndarray) -> tuple[str, FloatParams]:
    return "readout", FloatParams(threshold=np.zeros_like(bias), bias=bias, decay=node.decay)


#: Float neuron type (exact) -> the SnncNeuron kind and float parameters it runs as
#: (processes.PySnncNeuronFloat), given its per-neuron threshold (None for a readout) and
#: the summed bias of its synapses.
FLOAT_NEURONS: dict[type[Node], Callable[..., tuple[str, FloatParams]]] = {
    LIF: _lif,
    CLIF: _clif,
    CubaLIF: _cuba_lif,
    Readout: _readout,
}


@lowering(LIF, CLIF, CubaLIF, Readout)
def _float_neuron(node: LIF | CLIF | CubaLIF | Readout, build: Build) -> list:
    rule = neuron_rule(FLOAT_NEURONS, node, "the Lava floating_pt neuron model")
    _check_synaptic_input(node, build)
    bias = synapse_bias(node, build)
    threshold = per_neuron(node.threshold, node.type.shape, np.float64) if node.spiking \
        else None
    kind, params = rule(node, threshold, bias)
    return _neuron(node, build, kind, params)


# -- running -----------------------------------------------------------------------------------

def check_supported(graph: Graph) -> None:
    """Every node has a lowering (UnsupportedNodeError naming the first that has none)."""
    for node in graph:
        lowering_for(node)


def make_plan(graph: Graph, timesteps: int, samples: int) -> Plan:
    s = schedule(graph)
    delays = synapse_delays(graph, s.delays)
    problems = delay_problems(graph, delays)
    if problems:
        raise LavaBuildError("; ".join(problems), problems)
    window = timesteps + s.latency
    return Plan(timesteps, s.latency, period(graph, delays, window), samples, s.depth, delays)


def period(graph: Graph, delays: dict[str, int], window: int) -> int:
    """Steps per sample: the window, then silent steps until no value sent for this sample
    can still reach a neuron. `late[n]` is the last step (counted from the sample's first)
    at which n's value can be nonzero: the input and SnncNeuron layers stop at the window's
    end; a synapse delivers one step (plus its delay) after its source; a stock LIF fires at
    most at the last step its input arrives (du = 4095). The next sample starts after every
    neuron's input has drained: with SnncNeuron layers only, window + 1 + max delay."""
    late: dict[str, int] = {}
    for name, node in graph.nodes.items():
        if is_synapse(node):
            late[name] = max(late[i] for i in node.inputs) + 1 + delays[name]
        elif isinstance(node, Add | FxChannelSlice | FxPartialSum):
            late[name] = max(late[i] for i in node.inputs)
        elif stock_lif(node):
            late[name] = late[node.inputs[0]]
        else:
            late[name] = window - 1
    inputs = [late[n.inputs[0]] for n in graph if isinstance(n, Neuron)]
    return 1 + max(inputs, default=window - 1)


def run_fixed(graph: Graph, x: np.ndarray, timesteps: int) -> dict[str, np.ndarray]:
    """Run a quantized graph on Lava fixed_pt; returns every neuron's per-step output
    `[T + latency, batch, ...]` (spikes, or the readout's v), like the reference simulator's
    hardware-timing raw record. The graph is checked against Lava's widths first."""
    check_supported(graph)
    validate_for_lava(graph)
    return _run(graph, x, timesteps, "fixed_pt")


def run_float(graph: Graph, x: np.ndarray, timesteps: int) -> dict[str, np.ndarray]:
    """Run a float graph (folded: Input, Conv2d, Dense, Add, LIF, CLIF, CubaLIF, Readout) on Lava
    floating_pt, with the same timing and record as `run_fixed`."""
    check_supported(graph)
    fixed = [n for n in graph if isinstance(n, FxInput | FxConv2d | FxDense | FxNeuron)]
    if fixed:
        raise LavaBuildError(f"layer {fixed[0].name!r} ({fixed[0].op}) is fixed-point; "
                             "run_float runs float graphs (quantized graphs run with run_fixed)")
    return _run(graph, x, timesteps, "floating_pt")


def _run(graph: Graph, x: np.ndarray, timesteps: int, tag: str) -> dict[str, np.ndarray]:
    inp = _single_input(graph)
    x = inp.check_batch(x, timesteps)
    batch = x.shape[-len(inp.shape) - 1]
    with tempfile.TemporaryDirectory(prefix="snnc-lava-records-") as records:
        build = Build(graph, make_plan(graph, timesteps, batch), x, Path(records))
        for node in graph:
            build.ports[node.name] = lowering_for(node)(node, build)
        if not build.neurons:
            raise LavaBuildError("the graph has no neuron layer to run")
        first = next(iter(build.neurons.values()))
        try:
            first.run(condition=RunSteps(num_steps=build.plan.steps),
                      run_cfg=Loihi2SimCfg(select_tag=tag))
        finally:
            first.stop()
        logs = {name: _read_record(build, name) for name in build.neurons}
    plan = build.plan
    window = timesteps + plan.latency
    out = {}
    for name, rec in logs.items():
        node = graph[name]
        steps = rec.reshape(batch, plan.period, *node.type.shape)[:, :window]
        steps = np.swapaxes(steps, 0, 1)
        out[name] = steps.astype(bool) if node.spiking else steps
    return out


def _read_record(build: Build, name: str) -> np.ndarray:
    """A layer's step record, saved by its process after the last step (models/processes.py:
    `Var.get` would send it one value at a time)."""
    path = build.record_file(name)
    try:
        return np.load(path)
    except OSError as err:
        raise LavaBuildError(f"layer {name!r}: the Lava run left no record of its steps "
                             f"({path}: {err.strerror or err})") from None


def _single_input(graph: Graph) -> Input:
    inputs = [n for n in graph if isinstance(n, Input)]
    if len(inputs) != 1:
        raise LavaBuildError(f"the Lava backend runs graphs with one input; this one has "
                             f"{[n.name for n in inputs]}")
    return inputs[0]


