"""Fixed-point nodes: what the quantize pass produces and the chip (or Lava) runs.

Integer semantics follow lava-nc 0.10's bit-accurate models (semantics.md section 4):

    decay(x, d) = sgn(x * (4096 - d)) * (|x * (4096 - d)| >> 12)      (toward zero)
    wrap24(x)   = x - 2^24 if x > 2^23;  x + 2^24 if x <= -2^23;  x otherwise
    clip24(x)   = clip(x, -(2^23 - 1), 2^23 - 1)

Synapses send `a = (W @ s) << weight_exp` (a floor shift `>>` for a negative exponent);
an Add sums the synaptic inputs of one neuron layer. Every field is an integer in the
target's width; `Graph.build` checks the widths, so an artifact cannot smuggle in values
Lava would silently clip or wrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from snnc.ir.io import Input
from snnc.ir.neuron import Neuron
from snnc.ir.node import Node
from snnc.ir.synapse import Conv2d, Dense
from snnc.ir.types import SPIKE, DType, TensorType

SYNAPTIC = DType("i", 16)   # the chip's synaptic input word (Lava does not wrap it)
STATE = DType("i", 24)
_MAX24 = (1 << 23) - 1


def _int_field(node: Node, field: str, lo: int, hi: int) -> None:
    value = getattr(node, field)
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" or (arr.size and (arr.min() < lo or arr.max() > hi)):
        raise node.field_error(field, value if arr.size == 1 else f"array in [{arr.min()}, "
                               f"{arr.max()}]", f"expected integers in [{lo}, {hi}]")


def _check_weights(node: Node) -> None:
    """Weights must already be what Lava's Dense keeps after its clip and truncation:
    excitatory [0, 255], inhibitory [-255, 0], or mixed sign even values in [-256, 254]."""
    w = node.weight  # type: ignore[attr-defined]
    if not isinstance(w, np.ndarray) or w.dtype.kind not in "iu":
        raise node.field_error("weight", type(w).__name__, "expected an integer numpy array")
    lo, hi = int(w.min(initial=0)), int(w.max(initial=0))
    ok = (lo >= 0 and hi <= 255) or (hi <= 0 and lo >= -255) or (
        lo >= -256 and hi <= 254 and not np.any(w % 2))
    if not ok:
        raise node.field_error("weight", f"array in [{lo}, {hi}]", "expected 8-bit Loihi "
                               "weights: [0, 255], [-255, 0], or even values in [-256, 254]")
    if not isinstance(node.weight_exp, int):  # type: ignore[attr-defined]
        raise node.field_error("weight_exp", node.weight_exp, "expected an integer")


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
        if not 1 <= self.bits <= 24:
            raise self.field_error("bits", self.bits, "expected 1..24")
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
        _check_weights(self)
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
        _int_field(self, "dv", 0, 4095)
        _int_field(self, "bias_mant", -4096, 4095)
        _int_field(self, "bias_exp", 0, 7)
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

    du: int = 4095
    vth: int
    reset: str = "hard"
    reset_sub: int = 0

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        x = self._check_common(in_types)
        _int_field(self, "du", 0, 4095)
        _int_field(self, "vth", 0, (1 << 17) - 1)
        _int_field(self, "reset_sub", 0, _MAX24)
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
        _int_field(self, "vth", 0, (1 << 17) - 1)
        _int_field(self, "reset_sub", 0, _MAX24)
        _int_field(self, "sig_lut", 0, 4096)
        _int_field(self, "reset_lut", 0, _MAX24)
        _int_field(self, "sig_mult", 0, (1 << 40) - 1)
        _int_field(self, "sig_shift", 1, 62)
        _int_field(self, "m_shift", 0, 24)
        if self.sig_lut.ndim != 1 or self.reset_lut.ndim != 1:
            raise self.field_error("sig_lut", self.sig_lut.shape, "lookup tables are 1-D")
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
