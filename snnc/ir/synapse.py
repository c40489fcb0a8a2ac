"""Synapses: stateless weighted sums. Their output is the synaptic current of the next neurons."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from snnc.ir.node import Node
from snnc.ir.types import F32, TensorType


def _pair(node: Node, field: str, min_value: int) -> tuple[int, int]:
    value = getattr(node, field)
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or any(not isinstance(v, int) or v < min_value for v in value)
    ):
        raise node.field_error(field, value, f"expected a pair of integers >= {min_value}")
    return value


def _check_bias(node: Node, n_out: int) -> None:
    bias = node.bias  # type: ignore[attr-defined]
    if bias is None:
        return
    if not isinstance(bias, np.ndarray):
        raise node.field_error("bias", bias, "expected a numpy array or None")
    if bias.shape != (n_out,):
        raise node.shape_error("bias shape", (n_out,), bias.shape)


@dataclass(frozen=True, eq=False, kw_only=True)
class Conv2d(Node):
    """2-D convolution (cross-correlation, as torch.nn.Conv2d with groups=1, dilation=1).

        y[o, i, j] = bias[o] + sum_{c, p, q} weight[o, c, p, q] * x_pad[c, s0*i + p, s1*j + q]

    weight: [C_out, C_in, kH, kW]; x_pad is x zero-padded by `padding` on each side.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        (x,) = in_types
        sh, sw = _pair(self, "stride", 1)
        ph, pw = _pair(self, "padding", 0)
        if not isinstance(self.weight, np.ndarray) or self.weight.ndim != 4:
            raise self.shape_error("weight rank", "[C_out, C_in, kH, kW]", _shape(self.weight))
        c_out, c_in, kh, kw = self.weight.shape
        if len(x.shape) != 3:
            raise self.shape_error("input shape", "(C, H, W)", x.shape)
        if x.shape[0] != c_in:
            raise self.shape_error("input channels", c_in, x.shape[0])
        h = (x.shape[1] + 2 * ph - kh) // sh + 1
        w = (x.shape[2] + 2 * pw - kw) // sw + 1
        if h <= 0 or w <= 0:
            raise self.shape_error("output size (kernel larger than padded input)", "> 0", (h, w))
        _check_bias(self, c_out)
        return TensorType((c_out, h, w), F32)


@dataclass(frozen=True, eq=False, kw_only=True)
class Dense(Node):
    """Fully connected: y = weight @ flatten(x) + bias, weight [F_out, F_in].

    x may have any shape of F_in elements; it is read in row-major order (as torch.flatten),
    so a Flatten before a Dense can be folded away.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        (x,) = in_types
        if not isinstance(self.weight, np.ndarray) or self.weight.ndim != 2:
            raise self.shape_error("weight rank", "[F_out, F_in]", _shape(self.weight))
        f_out, f_in = self.weight.shape
        if x.size != f_in:
            raise self.shape_error(f"input size (shape {x.shape})", f_in, x.size)
        _check_bias(self, f_out)
        return TensorType((f_out,), F32)


def _shape(value: object) -> object:
    return getattr(value, "shape", type(value).__name__)
