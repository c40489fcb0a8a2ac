"""The nodes of a split fan-in (passes/split_fan_in.py): a synapse whose neurons read more
input axons than a core accepts becomes partial sums computed on other cores.

    FxChannelSlice   x[start:stop] along the first axis of the per-sample value: the input
                   channels one partial sum reads (a routing choice: no arithmetic);
    FxPartialSum   relay neurons: each step, each sends its synaptic input unchanged as a
                   graded spike (the payload, a signed integer of `message_bits`);
    FxMerge        a synapse one-to-one from the relays: a = (sum of the payloads) << weight_exp
                   (a floor shift >> for a negative exponent), the exponent applied once, to the
                   whole sum.

A split synapse W with exponent e reading s becomes, for channel groups g,

    P_g = W_g @ s[g]               (FxConv2d / FxDense over a FxChannelSlice, weight_exp 0)
    a   = (sum_g P_g) << e         (FxMerge over the FxPartialSum relays)

and sum_g P_g = W @ s exactly (integers), so a is the unsplit synapse's value bit for bit.
With hardware timing the merge is one more synaptic hop (analyses/timing.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from snnc.ir.node import Node
from snnc.ir.types import DType, TensorType
from snnc.ir.widths import FORMAT

#: The relays' graded payload: a signed integer of the format's message width.
PAYLOAD = DType("i", FORMAT.message_bits)


@dataclass(frozen=True, eq=False, kw_only=True)
class FxChannelSlice(Node):
    """y = x[start:stop] along the first axis of the per-sample value (channels of a (C, H, W)
    value, elements of a flat one)."""

    start: int
    stop: int

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        (x,) = in_types
        for field in ("start", "stop"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.field_error(field, value, "expected an integer")
        if not 0 <= self.start < self.stop <= x.shape[0]:
            raise self.field_error("stop", (self.start, self.stop),
                                   f"expected 0 <= start < stop <= {x.shape[0]} (the input's "
                                   "first axis)")
        return TensorType((self.stop - self.start, *x.shape[1:]), x.dtype)


@dataclass(frozen=True, eq=False, kw_only=True)
class FxPartialSum(Node):
    """Relay neurons: y = a, this step's synaptic input, sent as a graded payload."""

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        (x,) = in_types
        if x.dtype.kind not in "iu":
            raise self.shape_error("input element type", "an integer synaptic input", x.dtype)
        return TensorType(x.shape, PAYLOAD)


@dataclass(frozen=True, eq=False, kw_only=True)
class FxMerge(Node):
    """One-to-one synapse from partial sums: a = (sum_g p_g) << weight_exp (floor if negative)."""

    weight_exp: int = 0

    arity: ClassVar[int | None] = None

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        from snnc.ir.fixed import SYNAPTIC, _check_widths

        _check_widths(self)
        first = in_types[0]
        for edge, t in zip(self.inputs, in_types, strict=True):
            if t.shape != first.shape:
                raise self.shape_error(f"shape of input {edge!r}", first.shape, t.shape)
            if t.dtype.kind not in "iu":
                raise self.shape_error(f"element type of input {edge!r}", "integer payloads",
                                       t.dtype)
        return TensorType(first.shape, SYNAPTIC)
