"""Batch normalization at inference. Float graphs only: the folding passes remove it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from snnc.ir.node import Node
from snnc.ir.types import F32, TensorType

_PARAMS = ("mean", "var", "weight", "bias")


@dataclass(frozen=True, eq=False, kw_only=True)
class BatchNorm(Node):
    """Per-channel affine normalization with running statistics (channel axis 0):

        y[c] = weight[c] * (x[c] - mean[c]) / sqrt(var[c] + eps) + bias[c]

    tdBN (Zheng et al. 2021) at inference is this node with weight = lambda * alpha * V_th.
    """

    mean: np.ndarray
    var: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    eps: float = 1e-5

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        (x,) = in_types
        if x.dtype.is_fixed:
            raise self.shape_error("input element type (batch norm is for float graphs; fold "
                                   "it before quantizing)", "f32 or b1", x.dtype)
        channels = x.shape[0]
        for field in _PARAMS:
            value = getattr(self, field)
            if not isinstance(value, np.ndarray) or value.shape != (channels,):
                actual = getattr(value, "shape", value)
                raise self.shape_error(f"{field} shape", (channels,), actual)
        if not isinstance(self.eps, float) or self.eps < 0:
            raise self.field_error("eps", self.eps, "expected a float >= 0")
        if np.any(self.var + self.eps <= 0):
            raise self.field_error("var", "values <= -eps", "variances must exceed -eps")
        return TensorType(x.shape, F32)

    def scale(self) -> np.ndarray:
        """a_k = weight / sqrt(var + eps): the per-channel factor the folding passes use."""
        return self.weight / np.sqrt(self.var + self.eps)
