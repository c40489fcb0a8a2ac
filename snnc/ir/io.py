"""Graph inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from snnc.errors import SimulationInputError
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

    def check_batch(self, x: object, timesteps: int, *, empty_ok: bool = False) -> np.ndarray:
        """`x` as an array, checked as a batch for this input: `[batch, *shape]` (the same
        frame every step) or `[T, batch, *shape]` with T = `timesteps`; bool, integer or real
        floating point; finite; at least one sample unless `empty_ok`. Every backend reads
        its inputs through this one check, so they accept and refuse the same batches."""
        shape, name = tuple(self.shape), self.name
        dims = ", ".join(map(str, shape))
        accepted = f"[batch, {dims}] or [T={timesteps}, batch, {dims}]"
        try:
            a = np.asarray(x)
        except (TypeError, ValueError) as err:
            raise SimulationInputError(f"input {name!r}: not an array ({err}); accepted: "
                                       f"{accepted}") from None
        if a.dtype.kind not in "biuf":
            raise SimulationInputError(f"input {name!r}: dtype {a.dtype} is not numeric; "
                                       "accepted: bool, integer or real floating point")
        if a.ndim not in (len(shape) + 1, len(shape) + 2) or a.shape[a.ndim - len(shape):] != shape:
            raise SimulationInputError(f"input {name!r}: expected an array shaped {accepted}, "
                                       f"got {list(a.shape)}")
        if a.ndim == len(shape) + 2 and a.shape[0] != timesteps:
            raise SimulationInputError(f"input {name!r}: has {a.shape[0]} time steps but "
                                       f"timesteps={timesteps}; accepted: {accepted}")
        if not empty_ok and a.shape[a.ndim - len(shape) - 1] == 0:
            raise SimulationInputError(f"input {name!r}: the batch is empty (shape "
                                       f"{list(a.shape)}); give at least one sample")
        if not np.all(np.isfinite(a)):
            raise SimulationInputError(f"input {name!r}: contains NaN or infinite values")
        return a
