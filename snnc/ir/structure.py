"""Stateless reshaping and merging: pooling, flatten, add."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from snnc.ir.node import Node
from snnc.ir.types import F32, TensorType


@dataclass(frozen=True, eq=False, kw_only=True)
class AvgPool2d(Node):
    """Average pooling as torch.nn.AvgPool2d (count_include_pad=True, ceil_mode=False):

        y[c, i, j] = (1 / (kH*kW)) * sum_{p<kH, q<kW} x_pad[c, s0*i + p, s1*j + q]
    """

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        (x,) = in_types
        for field, low in (("kernel", 1), ("stride", 1), ("padding", 0)):
            value = getattr(self, field)
            if not (isinstance(value, tuple) and len(value) == 2) or any(
                not isinstance(v, int) or v < low for v in value
            ):
                raise self.field_error(field, value, f"expected a pair of integers >= {low}")
        if len(x.shape) != 3:
            raise self.shape_error("input shape", "(C, H, W)", x.shape)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        if 2 * ph > kh or 2 * pw > kw:
            raise self.field_error("padding", self.padding,
                                   "padding must be at most half the kernel")
        h = (x.shape[1] + 2 * ph - kh) // sh + 1
        w = (x.shape[2] + 2 * pw - kw) // sw + 1
        if h <= 0 or w <= 0:
            raise self.shape_error("output size (kernel larger than padded input)", "> 0", (h, w))
        return TensorType((x.shape[0], h, w), F32)


@dataclass(frozen=True, eq=False, kw_only=True)
class Flatten(Node):
    """Row-major (C-order) flatten of the per-sample value, as torch.flatten(x, 1)."""

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        (x,) = in_types
        return TensorType((x.size,), x.dtype)


@dataclass(frozen=True, eq=False, kw_only=True)
class Add(Node):
    """Elementwise sum of two or more values of the same shape (residual connections)."""

    arity: ClassVar[int | None] = None

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        first = in_types[0]
        for edge, t in zip(self.inputs[1:], in_types[1:], strict=True):
            if t.shape != first.shape:
                raise self.shape_error(
                    f"shape of input {edge!r} (must equal that of {self.inputs[0]!r})",
                    first.shape,
                    t.shape,
                )
        fixed = all(t.dtype.is_fixed for t in in_types)
        return TensorType(first.shape, first.dtype if fixed else F32)
