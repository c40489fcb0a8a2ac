"""Value types: every edge of the graph carries a shape and an element type.

Shapes are per sample, channel first (`(C, H, W)` or `(F,)`); the simulators prepend the time
and batch axes. Element types are `f32` (real values of a float graph), `b1` (spikes) and,
once a graph is quantized, fixed-point integers: `i24e-6` reads "24-bit signed integer
mantissa, value = mantissa * 2**-6".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["f", "i", "u", "b"]


@dataclass(frozen=True)
class DType:
    """An element type. `exp` is the power-of-two scale of a fixed-point value (0 for floats)."""

    kind: Kind
    bits: int
    exp: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("f", "i", "u", "b"):
            raise ValueError(f"DType kind must be one of 'f', 'i', 'u', 'b', got {self.kind!r}")
        if not (1 <= self.bits <= 64):
            raise ValueError(f"DType bits must be in 1..64, got {self.bits!r}")

    @property
    def is_fixed(self) -> bool:
        return self.kind in ("i", "u")

    def __str__(self) -> str:
        text = f"{self.kind}{self.bits}"
        return f"{text}e{self.exp}" if self.exp else text


F32 = DType("f", 32)
SPIKE = DType("b", 1)


@dataclass(frozen=True)
class TensorType:
    """Shape (per sample, without time and batch axes) and element type of a value."""

    shape: tuple[int, ...]
    dtype: DType = F32

    def __post_init__(self) -> None:
        shape = tuple(int(d) for d in self.shape)
        if any(d <= 0 for d in shape):
            raise ValueError(f"shape dimensions must be positive, got {shape}")
        object.__setattr__(self, "shape", shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def __str__(self) -> str:
        return f"{self.dtype}[{','.join(str(d) for d in self.shape)}]"
