"""The fixed-point graph as one ONNX time step of the chip's program (hardware timing).

One lowering per node type (`LOWERINGS`), each the ONNX form of its rule in
backends/refsim/fixed_ops.py; the walk over the graph lives in `lower` alone. A type without a
lowering is refused by name.

The step is the chip's, as analyses/timing.py schedules it: every synapse delivers at step t
what it computed at step t - 1, and an edge the schedule delays by d steps reads its source d
steps late. So the model carries, besides the neurons' states, the past values of every node
read late: `state/<node>/delay<k>`, its value k steps ago, for k up to the longest lag any
reader takes (1 for a synapse read on time).

A neuron does not update before its depth (the step its first valid input arrives; its bias
is held off). Gating its bias alone is enough, and is what the model does (`state/step`, the
step counter, against the depth): before its depth every node's value is 0, by induction in
graph order. An input's depth is 0. A synapse delivers at t what it computed at t - 1 from
its input read at t - 1 - d (d its edge's delay), before that input's depth: 0, and
conv(0) << e = 0. An Add or a merge reads each input delayed to its own depth, a slice or a
relay passes its input on: 0. A neuron with input 0, state 0 and no bias stays at 0 in every
rule (decay(0) = 0, wrap and clip of 0 are 0, and 0 > vth << 6 never holds since vth >= 0;
CLIF's M gets (0 * g) >> 12 = 0), so it sends no spike. Hence an ungated neuron before its
depth computes what the reference simulator's held neuron holds.

Integers: the synapses run ConvInteger / MatMulInteger on 8-bit operands with int32
accumulation (spikes and graded inputs as uint8 or int8, a wider graded input cut into byte
planes; the weights as int8 or uint8 times a factor of 1, -1 or 2, since Loihi's weights are
8-bit magnitudes or even values in [-256, 254]); a sum that could pass 2^31 is refused at
export. The rest is int64 arithmetic (`ops.Builder`), exact for the format's words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from snnc.analyses.timing import is_synapse, schedule
from snnc.backends.onnx import OnnxError
from snnc.backends.onnx.ops import Builder
from snnc.errors import UnsupportedNodeError
from snnc.ir import (
    Add,
    FxChannelSlice,
    FxCLIF,
    FxConv2d,
    FxCubaLIF,
    FxDense,
    FxInput,
    FxLIF,
    FxMerge,
    FxPartialSum,
    FxReadout,
    Graph,
    Node,
)
from snnc.ir.fixed import width_problems
from snnc.ir.node import channel_view
from snnc.ir.widths import FORMAT

_ACT, _VTH, _FRAC = FORMAT.act_shift, FORMAT.vth_shift, FORMAT.sigmoid_frac_bits
_ACC = 1 << 31  # ConvInteger's and MatMulInteger's int32 accumulator
_WRAP = 1 << (FORMAT.state_bits - 1)


@dataclass(frozen=True)
class Value:
    """A tensor of the step, `[batch, *shape]`: its ONNX name, element type and, for a
    synapse's operand (spikes, a graded payload), the range of its integers (what bounds the
    synapse's accumulator, and how a payload wider than 8 bits is cut into bytes); for a
    synaptic input, a bound on its magnitude from the weights (None: unknown), which lets a
    neuron leave out a 24-bit wrap that cannot happen."""

    name: str
    dtype: np.dtype
    limits: tuple[int, int] | None = None
    bound: int | None = None


@dataclass
class Interface:
    """What a runner needs: the inputs, the states (each starts at zero; feed `next` back as
    `name`), and the records (each neuron layer's spikes, or a readout's v) with their
    depths. Stored in the model's metadata (`snnc.interface`)."""

    inputs: list[dict] = field(default_factory=list)
    states: list[dict] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    latency: int = 0

    def to_json(self) -> dict:
        return {"inputs": self.inputs, "states": self.states, "records": self.records,
                "latency": self.latency}


class Lowering:
    """One graph's walk: the builder, each node's current value, the delay lines."""

    def __init__(self, graph: Graph) -> None:
        self.graph, self.b = graph, Builder()
        plan = schedule(graph)
        self.depth, self.delays = plan.depth, plan.delays
        self.values: dict[str, Value] = {}
        self.past: dict[str, Value] = {}  # a node read late: its value (kind, bounds)
        self.interface = Interface(latency=plan.latency)
        self.graph_inputs: list[tuple[str, np.dtype, list]] = []
        self.graph_outputs: list[tuple[str, np.dtype, list]] = []
        self._gates: dict[int, str] = {}
        # The longest lag each node is read with: a synapse's value arrives one step late.
        self.lines: dict[str, int] = {}
        for node in graph:
            for i in node.inputs:
                lag = self.lag(i, node.name)
                if lag:
                    self.lines[i] = max(self.lines.get(i, 0), lag)
        self.step = self.state("step", [], np.int64, batched=False)

    def lag(self, source: str, reader: str) -> int:
        return int(is_synapse(self.graph[source])) + self.delays.get((source, reader), 0)

    def state(self, name: str, shape: list, dtype, *, batched: bool = True,
              layer: str | None = None) -> str:
        """Declare a state input `state/<name>`; its next value is output `state_next/...`."""
        key = f"state/{name}"
        dims = (["batch"] if batched else []) + list(shape)
        self.graph_inputs.append((key, np.dtype(dtype), dims))
        self.graph_outputs.append((f"state_next/{name}", np.dtype(dtype), dims))
        self.interface.states.append({"name": key, "next": f"state_next/{name}",
                                      "shape": list(shape), "dtype": np.dtype(dtype).name,
                                      "batched": batched, "layer": layer})
        return key

    def read(self, source: str, reader: str) -> Value:
        """`source`'s value as `reader` sees it this step: now, or from its delay line."""
        lag = self.lag(source, reader)
        if not lag:
            return self.values[source]
        return dataclasses.replace(self.past[source], name=f"state/{source}/delay{lag}")

    def gate(self, node: Node) -> str:
        """True from the node's depth on: before it, the neuron's bias is held off."""
        d = self.depth[node.name]
        if d not in self._gates:
            self._gates[d] = self.b.op("GreaterOrEqual", self.step, self.b.const(d))
        return self._gates[d]

    def fail(self, node: Node, what: str) -> OnnxError:
        return OnnxError(f"layer {node.name!r} ({node.op}): {what}")

    def run(self) -> None:
        for node in self.graph:
            lower_node = LOWERINGS.get(type(node))
            if lower_node is None:
                raise UnsupportedNodeError(node.name, node.op, "the ONNX exporter",
                                           [t.__name__ for t in LOWERINGS])
            problems = width_problems(node, FORMAT)
            if problems:
                raise self.fail(node, "; ".join(problems))
            self.b.layer = node.name
            value = lower_node(self, node, [self.read(i, node.name) for i in node.inputs])
            if node.name in self.lines:
                self._push(node, value)
            if not is_synapse(node):
                self.values[node.name] = value

    def _push(self, node: Node, value: Value) -> None:
        """The node's past values move one step back: delay1 <- this step's, delay<k> <-
        delay<k-1>."""
        self.past[node.name] = value
        for k in range(1, self.lines[node.name] + 1):
            self.state(f"{node.name}/delay{k}", list(node.type.shape), value.dtype,
                       layer=node.name)
            newer = value.name if k == 1 else f"state/{node.name}/delay{k - 1}"
            self.b.op("Identity", newer, out=f"state_next/{node.name}/delay{k}")

    def record(self, node: Node, value: str, dtype, kind: str) -> None:
        self.b.op("Identity", value, out=node.name)
        self.graph_outputs.append((node.name, np.dtype(dtype),
                                   ["batch", *node.type.shape]))
        self.interface.records.append({"layer": node.name, "kind": kind,
                                       "shape": list(node.type.shape),
                                       "dtype": np.dtype(dtype).name,
                                       "depth": self.depth[node.name]})


# -- lowerings: (lowering, node, input values) -> the node's value this step ------------------

def _fx_input(lw: Lowering, node: FxInput, ins: list[Value]) -> Value:
    b = lw.b
    shape = ["batch", *node.shape]
    lw.graph_inputs.append((node.name, np.dtype(np.float64), shape))
    lw.interface.inputs.append({"name": node.name, "shape": list(node.shape),
                                "dtype": "float64", "layout": "[batch, " + ", ".join(
                                    map(str, node.shape)) + "]", "encoding": node.encoding,
                                "scale": node.scale, "bits": node.bits,
                                "signed": node.signed})
    lo, hi = node.limits
    payload = b.op("Clip", b.op("Round", b.op("Mul", node.name, b.const(node.scale,
                                                                           np.float64))),
                   b.const(lo, np.float64), b.const(hi, np.float64))
    dtype = np.dtype(np.int64)
    if node.bits <= 8:
        dtype = np.dtype(np.int8 if node.signed else np.uint8)
    return Value(b.cast(payload, dtype), dtype, (lo, hi))


def _weights8(node: FxConv2d | FxDense) -> tuple[np.ndarray, int]:
    """w = factor * w8 with w8 in int8 or uint8: Loihi's magnitudes [0, 255] (or negated)
    and its even mixed-sign values in [-256, 254] (halved) fit one of them."""
    w = np.asarray(node.weight, np.int64)
    lo, hi = int(w.min(initial=0)), int(w.max(initial=0))
    if -128 <= lo and hi <= 127:
        return w.astype(np.int8), 1
    if lo >= 0 and hi <= 255:
        return w.astype(np.uint8), 1
    if hi <= 0 and lo >= -255:
        return (-w).astype(np.uint8), -1
    if not np.any(w % 2) and -256 <= lo and hi <= 254:
        return (w // 2).astype(np.int8), 2
    raise OnnxError(f"layer {node.name!r} ({node.op}): weights in [{lo}, {hi}] are not 8-bit "
                    "values times 1, -1 or 2; accepted: [-128, 127], [0, 255], [-255, 0] or "
                    "even values in [-256, 254]")


def _planes(lw: Lowering, node: Node, x: Value) -> list[tuple[str, int, int]]:
    """The synapse's input as 8-bit operands: (tensor, its largest magnitude, its weight),
    x = sum of weight * plane. An 8-bit value is one plane; a graded payload of more bits is
    cut into bytes, x = sum_k 256^k b_k with b_k = (x >> 8k) & 255 below the top byte and the
    top byte x >> 8(n-1) (floor shifts: exact for negative payloads, and zero padding stays
    zero in every plane), each plane's product summed in int64."""
    if x.limits is None:
        raise lw.fail(node, f"its input {node.inputs[0]!r} is not spikes or a graded payload "
                      f"({x.dtype}); a synapse reads neurons' spikes or the input")
    lo, hi = x.limits
    if x.dtype in (np.dtype(np.uint8), np.dtype(np.int8)):
        return [(x.name, max(abs(lo), abs(hi)), 1)]
    b, n = lw.b, 1
    while not (-(1 << (8 * n - 1)) <= lo and hi < (1 << (8 * n - (1 if lo < 0 else 0)))):
        n += 1
    planes = []
    for k in range(n):
        part = b.floor_shift(x.name, 8 * k)
        if k < n - 1:
            planes.append((b.cast(b.op("BitwiseAnd", part, b.const(255)), np.uint8), 255,
                           1 << (8 * k)))
        else:
            top_lo, top_hi = lo >> (8 * k), hi >> (8 * k)
            planes.append((b.cast(part, np.int8 if lo < 0 else np.uint8),
                           max(abs(top_lo), abs(top_hi)), 1 << (8 * k)))
    return planes


def _accumulate(lw: Lowering, node: Node, x: Value, w8: np.ndarray, product) -> str:
    """sum over the input's planes of weight * product(plane) in int64, each product an
    int32 accumulation that is refused when it could overflow."""
    rows = int(np.abs(w8.astype(np.int64)).reshape(w8.shape[0], -1).sum(axis=1).max(initial=0))
    terms = []
    for plane, bound, weight in _planes(lw, node, x):
        if rows * bound >= _ACC:
            raise lw.fail(node, f"a weighted sum could reach {rows * bound}, beyond the int32 "
                          "accumulator of ConvInteger/MatMulInteger (2^31)")
        terms.append(lw.b.mul(lw.b.cast(product(plane), np.int64), weight))
    return lw.b.add(*terms)


def _shifted_bound(bound: int | None, exp: int) -> int | None:
    """A bound on |y << exp| (a floor shift for exp < 0) from one on |y|."""
    if bound is None:
        return None
    return bound << exp if exp >= 0 else (bound >> -exp) + 1


def _synaptic(lw: Lowering, node: FxConv2d | FxDense, x: Value, acc: str, factor: int
              ) -> Value:
    b, exp = lw.b, node.weight_exp
    w = np.abs(np.asarray(node.weight, np.int64)).reshape(node.weight.shape[0], -1)
    lo, hi = x.limits  # type: ignore[misc]  # checked by _planes
    bound = int(w.sum(axis=1).max(initial=0)) * max(abs(lo), abs(hi))
    return Value(b.shift(b.mul(acc, factor), exp), np.dtype(np.int64),
                 bound=_shifted_bound(bound, exp))


def _fx_conv2d(lw: Lowering, node: FxConv2d, ins: list[Value]) -> Value:
    w8, factor = _weights8(node)
    (ph, pw), (sh, sw) = node.padding, node.stride
    w = lw.b.const(w8, w8.dtype)
    acc = _accumulate(lw, node, ins[0], w8, lambda x: lw.b.op(
        "ConvInteger", x, w, pads=[ph, pw, ph, pw], strides=[sh, sw]))
    return _synaptic(lw, node, ins[0], acc, factor)


def _fx_dense(lw: Lowering, node: FxDense, ins: list[Value]) -> Value:
    w8, factor = _weights8(node)
    w = lw.b.const(np.ascontiguousarray(w8.T), w8.dtype)
    acc = _accumulate(lw, node, ins[0], w8, lambda x: lw.b.op(
        "MatMulInteger", lw.b.op("Reshape", x, lw.b.const([0, -1])), w))
    return _synaptic(lw, node, ins[0], acc, factor)


def _synaptic_inputs(lw: Lowering, node: Node, ins: list[Value]) -> list[str]:
    for edge, x in zip(node.inputs, ins, strict=True):
        if x.dtype != np.dtype(np.int64):
            raise lw.fail(node, f"input {edge!r} is {x.dtype}, not a synaptic input (int64)")
    return [x.name for x in ins]


def _sum_bound(ins: list[Value]) -> int | None:
    return None if any(x.bound is None for x in ins) else sum(x.bound for x in ins)


def _add(lw: Lowering, node: Add, ins: list[Value]) -> Value:
    return Value(lw.b.add(*_synaptic_inputs(lw, node, ins)), np.dtype(np.int64),
                 bound=_sum_bound(ins))


def _fx_merge(lw: Lowering, node: FxMerge, ins: list[Value]) -> Value:
    total = lw.b.add(*_synaptic_inputs(lw, node, ins))
    return Value(lw.b.shift(total, node.weight_exp), np.dtype(np.int64),
                 bound=_shifted_bound(_sum_bound(ins), node.weight_exp))


def _channel_slice(lw: Lowering, node: FxChannelSlice, ins: list[Value]) -> Value:
    b = lw.b
    part = b.op("Slice", ins[0].name, b.const([node.start]), b.const([node.stop]),
                b.const([1]))
    return Value(part, ins[0].dtype, ins[0].limits)


def _fx_partial_sum(lw: Lowering, node: FxPartialSum, ins: list[Value]) -> Value:
    return ins[0]  # the relay sends its synaptic input unchanged


# -- neurons ----------------------------------------------------------------------------------

class _Neuron:
    """A neuron's states and records: each state variable read from `state/<layer>/<var>`
    and written to `state_next/<layer>/<var>`; its bias held off before the layer's depth
    (the module docstring says why that is all the holding needed)."""

    def __init__(self, lw: Lowering, node, ins: list[Value]) -> None:
        self.lw, self.node, self.b = lw, node, lw.b
        (self.a,) = _synaptic_inputs(lw, node, ins)
        self.a_bound = ins[0].bound
        self.shape = list(node.type.shape)
        bias = channel_view(np.asarray(node.bias_mant, np.int64), node.type.shape)
        bias = np.asarray(bias) << node.bias_exp
        self.bias = None
        if np.any(bias):
            self.bias = self.b.op("Where", lw.gate(node), self.b.const(bias), self.b.const(0))

    def state(self, var: str) -> str:
        return self.lw.state(f"{self.node.name}/{var}", self.shape, np.int64,
                             layer=self.node.name)

    def update(self, var: str, new: str) -> None:
        self.b.op("Identity", new, out=f"state_next/{self.node.name}/{var}")

    def decay_plus(self, x: str, d: int, *terms: str | None) -> str:
        """decay(x, d) plus the given terms (None terms and a zero decay left out)."""
        parts = [p for p in (self.b.decay(x, d), *terms) if p is not None]
        return self.b.add(*parts) if parts else self.b.const(0)

    def act(self) -> str:
        return self.b.mul(self.a, 1 << _ACT)

    def wrapped_act(self) -> str:
        """wrap24(a << 6), the wrap left out where the synapses' weights bound |a << 6|
        below 2^23 (where it cannot change a value)."""
        if self.a_bound is not None and self.a_bound << _ACT < _WRAP:
            return self.act()
        return self.b.wrap24(self.act())

    def spikes(self, fired: str) -> str:
        """The spikes (uint8, the next synapses' operand), recorded as the layer."""
        out = self.b.cast(fired, np.uint8)
        self.lw.record(self.node, out, np.uint8, "spikes")
        return out

    def theta(self) -> str:
        return self.b.const(self.node.vth << _VTH)


def _current(n: _Neuron, node: FxLIF | FxCubaLIF) -> str:
    """u of this step (LIF and CUBA-LIF alike): the input wrapped, or with a current state
    the decayed u plus it, wrapped."""
    if node.du == FORMAT.decay_max:  # no current state: decay(u, 4096) is 0
        return n.wrapped_act()
    u = n.b.wrap24(n.decay_plus(n.state("u"), node.du + 1, n.act()))
    n.update("u", u)
    return u


def _fx_lif(lw: Lowering, node: FxLIF, ins: list[Value]) -> Value:
    n, b = _Neuron(lw, node, ins), lw.b
    u = _current(n, node)
    v_old = n.state("v")
    v = b.clip24(n.decay_plus(v_old, node.dv, u, n.bias))
    fired = b.op("Greater", v, n.theta())
    if node.reset == "hard":
        v = b.where_zero(fired, v)
    else:
        v = b.op("Sub", v, b.mul(b.cast(fired, np.int64), node.reset_sub))
    n.update("v", v)
    return Value(n.spikes(fired), np.dtype(np.uint8), (0, 1))


def _fx_cuba_lif(lw: Lowering, node: FxCubaLIF, ins: list[Value]) -> Value:
    n, b = _Neuron(lw, node, ins), lw.b
    theta, sub, reset = n.theta(), node.reset_sub, node.reset
    u = _current(n, node)
    v_old = n.state("v")
    was = b.op("Greater", v_old, theta)  # r: v of the previous step above threshold
    r = b.cast(was, np.int64)
    v = b.where_zero(was, v_old) if reset == "zero" else v_old
    h = b.clip24(n.decay_plus(v, node.dv, u, n.bias))
    if reset == "subtract":
        h = b.clip24(b.op("Sub", h, b.mul(r, sub)))
    elif reset == "zero_all":
        h = b.where_zero(was, h)
    fired = b.op("Greater", h, theta)
    if node.reset_delay or reset == "none":
        v = h
    else:
        s_minus_r = b.op("Sub", b.cast(fired, np.int64), r)
        if reset == "subtract":
            v = b.clip24(b.op("Sub", h, b.mul(s_minus_r, sub)))
        else:
            v = b.clip24(b.op("Mul", h, b.op("Sub", b.const(1), s_minus_r)))
    n.update("v", v)
    return Value(n.spikes(fired), np.dtype(np.uint8), (0, 1))


def _fx_clif(lw: Lowering, node: FxCLIF, ins: list[Value]) -> Value:
    n, b = _Neuron(lw, node, ins), lw.b
    v_old, m_old = n.state("v"), n.state("m")
    h = b.clip24(n.decay_plus(v_old, node.dv, n.wrapped_act(), n.bias))
    fired = b.op("Greater", h, n.theta())
    s = b.cast(fired, np.int64)
    sig_lut = np.asarray(node.sig_lut, np.int64)
    reset_lut = np.asarray(node.reset_lut, np.int64)
    scaled = b.op("Add", b.mul(h, node.sig_mult), b.const(1 << (node.sig_shift - 1)))
    idx = b.clip(b.op("Add", b.floor_shift(scaled, node.sig_shift),
                      b.const(len(sig_lut) // 2)), 0, len(sig_lut) - 1)
    g = b.op("Gather", b.const(sig_lut), idx)
    m = b.op("Add", b.floor_shift(b.op("Mul", m_old, g), _FRAC), b.mul(s, 1 << _FRAC))
    step = b.op("Min", b.floor_shift(m, node.m_shift), b.const(len(reset_lut) - 1))
    sub = b.op("Add", b.const(node.reset_sub), b.op("Gather", b.const(reset_lut), step))
    v = b.clip24(b.op("Sub", h, b.op("Mul", s, sub)))
    n.update("v", v)
    n.update("m", m)
    return Value(n.spikes(fired), np.dtype(np.uint8), (0, 1))


def _fx_readout(lw: Lowering, node: FxReadout, ins: list[Value]) -> Value:
    n, b = _Neuron(lw, node, ins), lw.b
    v_old = n.state("v")
    v = b.clip24(n.decay_plus(v_old, node.dv, n.wrapped_act(), n.bias))
    n.update("v", v)
    lw.record(node, f"state_next/{node.name}/v", np.int64, "v")
    return Value(f"state_next/{node.name}/v", np.dtype(np.int64))


#: Node type (exact) -> its lowering. A type not listed is refused by name.
LOWERINGS: dict[type[Node], Callable[[Lowering, Node, list[Value]], Value]] = {
    FxInput: _fx_input,
    FxConv2d: _fx_conv2d,
    FxDense: _fx_dense,
    Add: _add,
    FxChannelSlice: _channel_slice,
    FxPartialSum: _fx_partial_sum,
    FxMerge: _fx_merge,
    FxLIF: _fx_lif,
    FxCubaLIF: _fx_cuba_lif,
    FxCLIF: _fx_clif,
    FxReadout: _fx_readout,
}


def lower(graph: Graph) -> Lowering:
    """Walk the graph into an ONNX step (`Lowering.b` holds its nodes and constants,
    `graph_inputs` / `graph_outputs` its interface, `interface` what runners read)."""
    lw = Lowering(graph)
    lw.run()
    b = lw.b
    b.layer = "step"
    b.op("Min", b.op("Add", lw.step, b.const(1)), b.const(max(lw.interface.latency, 1)),
         out="state_next/step")
    return lw
