"""Fixed-point nodes: what the quantize pass produces and the chip (or Lava) runs.

Integer semantics follow lava-nc 0.10's bit-accurate models (docs/semantics.md section 4), in the
words of `FORMAT` (snnc/ir/widths.py: the one width table; the literals below are its
values, decay_unity = 4096, act_shift = vth_shift = 6, state_bits = 24):

    decay(x, d) = sgn(x * (4096 - d)) * (|x * (4096 - d)| >> 12)      (toward zero)
    wrap24(x)   = x - 2^24 if x > 2^23;  x + 2^24 if x <= -2^23;  x otherwise
    clip24(x)   = clip(x, -(2^23 - 1), 2^23 - 1)

Synapses send `a = (W @ s) << weight_exp` (a floor shift `>>` for a negative exponent);
an Add sums the synaptic inputs of one neuron layer. Every integer field is in the format's
width (`width_problems`, keyed by node type); `Graph.build` checks them, so an artifact cannot
smuggle in values Lava would silently clip or wrap, or an exponent no int64 shift survives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from snnc.errors import GraphError, UnsupportedNodeError
from snnc.ir.io import Input
from snnc.ir.neuron import CUBA_RESETS, Neuron
from snnc.ir.node import Node
from snnc.ir.split import FxChannelSlice, FxMerge, FxPartialSum
from snnc.ir.structure import Add
from snnc.ir.synapse import Conv2d, Dense
from snnc.ir.types import SPIKE, DType, TensorType
from snnc.ir.widths import FORMAT, Widths, integer_problems, weight_problems

SYNAPTIC = DType("i", FORMAT.synaptic_input_bits)  # the chip's synaptic input word
STATE = DType("i", FORMAT.state_bits)


def _check_widths(node: Node) -> None:
    problems = width_problems(node, FORMAT)
    if problems:
        raise GraphError(f"node {node.name!r} ({node.op}): "
                         + "; ".join(f"field {p}" for p in problems))


@dataclass(frozen=True, eq=False, kw_only=True)
class FxInput(Input):
    """Analog input lowered to graded spikes: every step each pixel sends the payload

        x_int = clip(round(x * scale), lo, hi)    [0, 2^bits - 1], or symmetric if signed
    """

    scale: float
    bits: int = 8
    signed: bool = False

    arity: ClassVar[int | None] = 0

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        if not (isinstance(self.scale, float) and self.scale > 0):
            raise self.field_error("scale", self.scale, "expected a positive float")
        _check_widths(self)
        return TensorType(self.shape, DType("i" if self.signed else "u", self.bits))

    @property
    def limits(self) -> tuple[int, int]:
        if self.signed:
            m = (1 << (self.bits - 1)) - 1
            return -m, m
        return 0, (1 << self.bits) - 1


class _FixedSynapse:
    """Checks shared by the integer synapses; the float parent infers the shape."""

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        _check_widths(self)
        if self.bias is not None:
            raise self.field_error("bias", "an array", "fixed-point synapses carry no bias")
        return TensorType(super().infer(in_types).shape, SYNAPTIC)


@dataclass(frozen=True, eq=False, kw_only=True)
class FxConv2d(_FixedSynapse, Conv2d):
    """Integer convolution: a = conv(x, weight) << weight_exp (floor shift if negative).
    No bias: biases live in the neurons, as on Loihi."""

    weight_exp: int = 0


@dataclass(frozen=True, eq=False, kw_only=True)
class FxDense(_FixedSynapse, Dense):
    """Integer dense synapse: a = (weight @ flatten(x)) << weight_exp (floor if negative)."""

    weight_exp: int = 0


@dataclass(frozen=True, eq=False, kw_only=True)
class FxNeuron(Neuron):
    """Fields shared by the fixed-point neurons. `scale` is v-units per float unit (for
    reports and for turning a readout back into the float model's units)."""

    abstract: ClassVar[bool] = True

    dv: int
    bias_mant: int | np.ndarray = 0
    bias_exp: int = 0
    scale: float = 1.0

    def _check_common(self, in_types: Sequence[TensorType]) -> TensorType:
        (x,) = in_types
        if x.dtype.kind not in "iu":
            raise self.shape_error("input element type", "an integer synaptic input", x.dtype)
        _check_widths(self)
        self.check_channel_param("bias_mant", x.shape)
        if not (isinstance(self.scale, float) and self.scale > 0):
            raise self.field_error("scale", self.scale, "expected a positive float")
        return x


@dataclass(frozen=True, eq=False, kw_only=True)
class FxLIF(FxNeuron):
    """Loihi CUBA LIF, bit-accurate as lava's PyLifModelBitAcc, plus a soft reset:

        u = wrap24(decay(u, du + 1) + (a << 6))
        v = clip24(decay(v, dv) + u + (bias_mant << bias_exp))
        s = v > (vth << 6)
        v = 0 (reset "hard")  |  v - reset_sub (reset "soft")      where s

    reset_sub is the model's threshold on the v grid (vth << 6, plus 1 when the trained
    model fires on >=: see passes/quantize.py).
    """

    du: int = FORMAT.decay_max  # no current state
    vth: int
    reset: str = "hard"
    reset_sub: int = 0

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        x = self._check_common(in_types)
        self._check_choice("reset", ("hard", "soft"))
        return TensorType(x.shape, SPIKE)


@dataclass(frozen=True, eq=False, kw_only=True)
class FxCLIF(FxNeuron):
    """Fixed-point CLIF (snnc's definition; no current state, M with 12 fraction bits):

        H = clip24(decay(V, dv) + wrap24(a << 6) + (bias_mant << bias_exp))
        s = H > (vth << 6)
        g = sig_lut[clip(((H * sig_mult + 2^(sig_shift-1)) >> sig_shift) + c, 0, len - 1)]
                                       c = len // 2; g ~ 4096 * sigmoid(H / tau)
        M = ((M * g) >> 12) + (s << 12)
        V = clip24(H - s * (reset_sub + reset_lut[min(M >> m_shift, len - 1)]))
                                       reset_lut ~ scale * sigmoid(M / 4096)
    """

    vth: int
    reset_sub: int
    sig_lut: np.ndarray
    sig_mult: int
    sig_shift: int
    reset_lut: np.ndarray
    m_shift: int

    states: ClassVar[tuple[str, ...]] = ("v", "m")

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        x = self._check_common(in_types)
        if self.sig_lut.ndim != 1 or self.reset_lut.ndim != 1:
            raise self.field_error("sig_lut", self.sig_lut.shape, "lookup tables are 1-D")
        return TensorType(x.shape, SPIKE)


@dataclass(frozen=True, eq=False, kw_only=True)
class FxCubaLIF(FxNeuron):
    """Fixed-point CubaLIF (snnc/ir/neuron.py): Loihi's CUBA arithmetic as FxLIF's, with
    snnTorch's reset rule on the integer grid. theta = vth << 6, R = reset_sub, b the bias:

        u = wrap24(decay(u, du + 1) + (a << 6))              (du = 4095: u = a << 6)
        r = v > theta                                        v of the previous step
        v = v * (1 - r)                                      reset "zero", before the decay
        h = clip24(decay(v, dv) + u + b)
        h = clip24(h - r * R)  ("subtract")  |  h * (1 - r)  ("zero_all")
        s = h > theta
        v = h                                                reset_delay, or reset "none"
          = clip24(h - (s - r) * R)                          "subtract", not reset_delay
          = clip24(h * (1 - s + r))                          "zero"/"zero_all", not delayed
    """

    du: int = FORMAT.decay_max
    vth: int
    reset: str = "subtract"
    reset_delay: bool = True
    reset_sub: int = 0

    states: ClassVar[tuple[str, ...]] = ("u", "v")

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        x = self._check_common(in_types)
        self._check_choice("reset", CUBA_RESETS)
        if not isinstance(self.reset_delay, bool):
            raise self.field_error("reset_delay", self.reset_delay, "expected True or False")
        return TensorType(x.shape, SPIKE)


@dataclass(frozen=True, eq=False, kw_only=True)
class FxReadout(FxNeuron):
    """Non-spiking integrator: v = clip24(decay(v, dv) + wrap24(a << 6) + (bias_mant << bias_exp)).
    The float answer is v / scale (divided by T if `mean`), the float Readout's units."""

    mean: bool = True

    spiking: ClassVar[bool] = False

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        x = self._check_common(in_types)
        return TensorType(x.shape, STATE)


#: The integer fields of each fixed-point node type, checked against a `Widths` (exact type:
#: a new node type is refused until it says which of its fields are words of the format).
INT_FIELDS: dict[type[Node], tuple[str, ...]] = {
    FxInput: ("bits",),
    FxConv2d: ("weight", "weight_exp"),
    FxDense: ("weight", "weight_exp"),
    FxLIF: ("dv", "bias_mant", "bias_exp", "du", "vth", "reset_sub"),
    FxCLIF: ("dv", "bias_mant", "bias_exp", "vth", "reset_sub", "sig_lut", "reset_lut",
             "sig_mult", "sig_shift", "m_shift"),
    FxCubaLIF: ("dv", "bias_mant", "bias_exp", "du", "vth", "reset_sub"),
    FxReadout: ("dv", "bias_mant", "bias_exp"),
    Add: (),  # sums synaptic inputs: no field of its own
    FxChannelSlice: (),  # routing only
    FxPartialSum: (),  # relays its input; the payload width is range analysis's to check
    FxMerge: ("weight_exp",),
}


def width_problems(node: Node, widths: Widths = FORMAT) -> list[str]:
    """Every integer field of a fixed-point node outside `widths`, one line each (field, bad
    value, accepted range). UnsupportedNodeError for a type INT_FIELDS does not list."""
    try:
        fields = INT_FIELDS[type(node)]
    except KeyError:
        raise UnsupportedNodeError(node.name, node.op, "the fixed-point width check",
                                   [t.__name__ for t in INT_FIELDS]) from None
    if "weight" in fields:
        return weight_problems(node, widths)
    return [p for field in fields for p in integer_problems(node, field, widths)]
