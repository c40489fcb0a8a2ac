"""The node base class, the node type registry, and the field conventions every node follows.

A node is a frozen dataclass. Its fields are:
- `name`: stable through every pass, so reports point at layers users know;
- `inputs`: the names of the nodes it reads (the graph's explicit edges);
- `type`: its output value's shape and element type (filled in by `Graph.build`);
- its parameters: Python scalars, strings, tuples, read-only numpy arrays, or other
  registered dataclasses. Never a free-form dict.

Serialization and printing are generic over these fields (`serialize.py`, `printer.py`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from snnc.errors import GraphError, ShapeError
from snnc.ir.types import TensorType

#: Every concrete node class by its type name: the serializer's and the printer's registry.
NODE_TYPES: dict[str, type[Node]] = {}

_STRUCTURAL = ("name", "inputs", "type")
_ARRAY_KINDS = "fiub"


def _freeze(value: Any) -> Any:
    """Normalize a field value: read-only array copies, plain Python scalars, tuples."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"arrays must be numeric or boolean, got dtype {value.dtype}")
        frozen = np.array(value, copy=True, order="C")
        frozen.setflags(write=False)
        return frozen
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


@dataclass(frozen=True, eq=False, kw_only=True)
class Node:
    """Base of all IR nodes. Subclasses define `infer` and document their equations."""

    name: str
    inputs: tuple[str, ...] = ()
    type: TensorType | None = None

    #: How many inputs the node takes; None means two or more (Add).
    arity: ClassVar[int | None] = 1
    #: Families that only share code set this in their own body and are not registered.
    abstract: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("abstract", False):
            return
        if cls.__name__ in NODE_TYPES:
            raise TypeError(f"node type {cls.__name__} registered twice")
        NODE_TYPES[cls.__name__] = cls

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise GraphError(f"node names must be non-empty strings, got {self.name!r}")
        for f in dataclasses.fields(self):
            if f.name in ("name", "type"):
                continue
            value = _freeze(getattr(self, f.name))
            if f.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)  # one spelling per value keeps the printed text canonical
            object.__setattr__(self, f.name, value)

    @property
    def op(self) -> str:
        return type(self).__name__

    def params(self) -> dict[str, Any]:
        """The node's parameter fields (everything but name, inputs and type), in order."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in _STRUCTURAL
        }

    def replace(self, **changes: Any) -> Node:
        return dataclasses.replace(self, **changes)

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        """The output type given the input types; raises ShapeError naming this node."""
        raise NotImplementedError

    # -- helpers for subclasses -------------------------------------------------------------

    def shape_error(self, what: str, expected: Any, actual: Any) -> ShapeError:
        return ShapeError(
            f"node {self.name!r} ({self.op}): {what}: expected {expected}, got {actual}")

    def field_error(self, field: str, value: Any, accepted: str) -> GraphError:
        return GraphError(
            f"node {self.name!r} ({self.op}): field {field} = {value!r} is invalid; {accepted}"
        )

    def check_channel_param(self, field: str, shape: tuple[int, ...]) -> None:
        """A per-neuron parameter is a scalar, one value per channel `(C,)`, or the full shape."""
        value = getattr(self, field)
        if value is None or isinstance(value, int | float):
            return
        if not isinstance(value, np.ndarray):
            raise self.field_error(field, value, "expected a number or a numpy array")
        if value.shape not in ((shape[0],), shape):
            raise self.shape_error(f"{field} shape", f"() or ({shape[0]},) or {shape}", value.shape)


def channel_view(value: Any, shape: tuple[int, ...]) -> Any:
    """Reshape a per-channel `(C,)` parameter so it broadcasts over a `(..., C, *spatial)` value."""
    if isinstance(value, np.ndarray) and value.ndim == 1 and len(shape) > 1:
        return value.reshape((value.shape[0],) + (1,) * (len(shape) - 1))
    return value
