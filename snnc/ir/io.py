"""Graph inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from snnc.ir.node import Node
from snnc.ir.types import F32, SPIKE, TensorType

ENCODINGS = ("analog", "spikes")


@dataclass(frozen=True, eq=False, kw_only=True)
class Input(Node):
    """A graph input of per-sample `shape`.

    encoding = "analog": real values (direct encoding: typically the same frame every step);
    encoding = "spikes": binary events, one frame per step.
    """

    shape: tuple[int, ...]
    encoding: str = "analog"

    arity: ClassVar[int | None] = 0

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        if self.encoding not in ENCODINGS:
            raise self.field_error("encoding", self.encoding, f"accepted: {', '.join(ENCODINGS)}")
        if not self.shape or any(not isinstance(d, int) or d <= 0 for d in self.shape):
            raise self.field_error("shape", self.shape, "expected a tuple of positive integers")
        return TensorType(self.shape, SPIKE if self.encoding == "spikes" else F32)
