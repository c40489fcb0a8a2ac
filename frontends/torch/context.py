"""What a converter sees: the module's name, the graph built so far, and tensor readers."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from snnc.errors import SnncError
from snnc.ir import Node, TensorType


class ConversionError(SnncError):
    """A module or function cannot be converted; the message names it and what is supported."""


class ConvertContext:
    """Handed to converters. `name` is the module's qualified name (`layer2.0.sn1`)."""

    def __init__(self, name: str, timesteps: int, types: dict[str, TensorType],
                 emit: Callable[[Node], str], convert_child: Callable[[nn.Module, str, str], str]):
        self.name = name
        self.timesteps = timesteps
        self._types = types
        self._emit = emit
        self._convert_child = convert_child

    def emit(self, node: Node) -> str:
        """Add an IR node to the graph (its type is inferred now); return its name."""
        return self._emit(node)

    def shape(self, value: str) -> tuple[int, ...]:
        """Per-sample shape of an IR value emitted earlier."""
        return self._types[value].shape

    def child_name(self, suffix: str) -> str:
        return f"{self.name}.{suffix}" if self.name else suffix

    def convert(self, child: nn.Module, x: str, name: str) -> str:
        """Convert a submodule applied to `x` (for containers such as SeqToANNContainer)."""
        return self._convert_child(child, x, name)

    def array(self, tensor: torch.Tensor | float | None, what: str) -> np.ndarray | None:
        """A parameter or buffer as a numpy array; NaN or infinite values are an error."""
        if tensor is None:
            return None
        if isinstance(tensor, torch.Tensor):
            a = tensor.detach().cpu().numpy().copy()
        else:
            a = np.asarray(tensor, dtype=np.float64)
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            bad = int(np.size(a) - np.isfinite(a).sum())
            raise ConversionError(f"{self.name}.{what} holds {bad} NaN or infinite value(s); "
                                  "snnc needs finite weights")
        return a

    def scalar(self, value: object, what: str) -> float:
        """A module attribute that must be one finite number (a threshold, a time constant)."""
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise ConversionError(f"{self.name}.{what} has shape {tuple(value.shape)}; "
                                      "expected a single number")
            value = value.item()
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise ConversionError(f"{self.name}.{what} = {value!r}; expected a finite number")
        return float(value)

    def fail(self, module: nn.Module, why: str) -> ConversionError:
        return ConversionError(f"module {self.name!r} ({type(module).__name__}): {why}")
