"""The integer rules of backends/refsim/fixed_ops.py written in ONNX operators.

`Builder` collects an ONNX graph's nodes and constants; its helpers are the integer words
the fixed-point nodes use, on int64 tensors (every value of the format, and every product
it forms, fits: |v| < 2^23, decay products < 2^36, the CLIF index product < 2^63).

ONNX's BitShift is unsigned only (uint8..uint64), so the two signed shifts are built from it
on values made non-negative first, and are exact on every int64 the format produces:

- `floor_shift(x, k)` = floor(x / 2^k), numpy's `x >> k`. With m = -(x < 0) (0, or all
  ones), z = x XOR m is x for x >= 0 and ~x = -x - 1 >= 0 for x < 0, so z is non-negative and
  its uint64 cast is exact; the result is (z >>> k) XOR m. For x < 0 write -x - 1 = q 2^k + r
  with 0 <= r < 2^k; then x = -(q + 1) 2^k + (2^k - 1 - r) with 0 <= 2^k - 1 - r < 2^k, so
  floor(x / 2^k) = -q - 1 = ~q = ~((~x) >>> k). Exact for every int64, no bound needed.
- `trunc_shift(x, k)` = sgn(x) (|x| >>> k), Loihi's decay rounding toward zero, as
  fixed_ops.decay defines it; |x| is exact below 2^63 (the format's products are < 2^37).

A left shift by e >= 0 is a product by 2^e (exact: two's complement, no overflow in int64).
tests/compile/test_onnx_ops.py checks both shifts against numpy on negative values, extremes
and every remainder.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snnc.backends.onnx import require
from snnc.ir.widths import FORMAT

MAX24 = FORMAT.state_max
_WRAP = 1 << (FORMAT.state_bits - 1)


class Builder:
    """Nodes and constants of one ONNX graph; every helper returns its output's name.
    Intermediate tensors are named `~N` (the interface's are layer names and `state/...`)."""

    def __init__(self) -> None:
        self.onnx = require("onnx")
        self.helper, self.numpy_helper = require("onnx.helper"), require("onnx.numpy_helper")
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._consts: dict[tuple, str] = {}
        self._count = 0
        #: The layer whose nodes are being built: ONNX node names are `<layer>/<op>/<n>`, so
        #: an error onnxruntime or the checker reports names the layer.
        self.layer = "step"

    def fresh(self) -> str:
        self._count += 1
        return f"~{self._count}"

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        out = out or self.fresh()
        name = f"{self.layer}/{op_type}/{len(self.nodes)}"
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [out], name=name,
                                                     **attrs))
        return out

    def const(self, value: Any, dtype: Any = np.int64) -> str:
        """An initializer holding `value` as `dtype` (shared between equal small constants)."""
        array = np.array(value, dtype=dtype, order="C")  # 0-d stays 0-d
        key = (array.dtype.str, array.shape, array.tobytes()) if array.size <= 16 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh()
        self.initializers.append(self.numpy_helper.from_array(array, name))
        if key is not None:
            self._consts[key] = name
        return name

    # -- integer words (int64 tensors) ------------------------------------------------------

    def cast(self, x: str, dtype: Any) -> str:
        return self.op("Cast", x, to=self.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))

    def add(self, *xs: str) -> str:
        total = xs[0]
        for x in xs[1:]:
            total = self.op("Add", total, x)
        return total

    def mul(self, x: str, k: int) -> str:
        return x if k == 1 else self.op("Mul", x, self.const(k))

    def ushr(self, z: str, k: int) -> str:
        """z >>> k for a non-negative int64 z, through uint64 (ONNX's only right shift)."""
        shifted = self.op("BitShift", self.cast(z, np.uint64), self.const(k, np.uint64),
                          direction="RIGHT")
        return self.cast(shifted, np.int64)

    def floor_shift(self, x: str, k: int) -> str:
        """floor(x / 2^k), numpy's x >> k (module docstring: exact for every int64)."""
        if k == 0:
            return x
        mask = self.op("Neg", self.cast(self.op("Less", x, self.const(0)), np.int64))
        return self.op("BitwiseXor", self.ushr(self.op("BitwiseXor", x, mask), k), mask)

    def trunc_shift(self, x: str, k: int) -> str:
        """sgn(x) * (|x| >> k): the quotient rounded toward zero (|x| < 2^63)."""
        return self.op("Mul", self.op("Sign", x), self.ushr(self.op("Abs", x), k))

    def shift(self, x: str, exp: int) -> str:
        """x << exp, a floor shift for a negative exponent (fixed_ops.shift)."""
        return self.mul(x, 1 << exp) if exp >= 0 else self.floor_shift(x, -exp)

    def decay(self, x: str, d: int) -> str | None:
        """fixed_ops.decay: sgn(x k) (|x k| >> 12), k = 4096 - d; None when it is 0 (k = 0)."""
        k = FORMAT.decay_unity - int(d)
        if k == FORMAT.decay_unity:
            return x
        if k == 0:
            return None
        return self.trunc_shift(self.mul(x, k), FORMAT.decay_bits)

    def wrap24(self, x: str) -> str:
        """fixed_ops.wrap24: one wrap at 24 bits, Lava's asymmetric bounds."""
        span = self.const(2 * _WRAP)
        low = self.op("Where", self.op("LessOrEqual", x, self.const(-_WRAP)),
                      self.op("Add", x, span), x)
        return self.op("Where", self.op("Greater", x, self.const(_WRAP)),
                       self.op("Sub", x, span), low)

    def clip(self, x: str, lo: int | None, hi: int | None) -> str:
        return self.op("Clip", x, self.const(lo) if lo is not None else "",
                       self.const(hi) if hi is not None else "")

    def clip24(self, x: str) -> str:
        return self.clip(x, -MAX24, MAX24)

    def where_zero(self, cond: str, x: str) -> str:
        """0 where `cond`, else x."""
        return self.op("Where", cond, self.const(0), x)
