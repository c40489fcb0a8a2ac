"""The canonical text form: one line per node, arrays as shape plus a short content hash.

    %conv1 : f32[4,8,8] = Conv2d(%x) weight=f32[4,1,3,3]#3f9a1c0b bias=f32[4]#... stride=(1,1)

Two graphs print the same text exactly when their structure, types and parameter values
agree (up to a hash collision), so pass tests and round-trip tests compare this text.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from snnc.ir.graph import Graph
    from snnc.ir.node import Node


def array_digest(a: np.ndarray) -> str:
    """A short hash of an array's dtype, shape and contents."""
    h = hashlib.sha256()
    h.update(a.dtype.str.encode())
    h.update(repr(a.shape).encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:8]


def _dtype_name(a: np.ndarray) -> str:
    return "b1" if a.dtype == np.bool_ else f"{a.dtype.kind}{a.dtype.itemsize * 8}"


def format_value(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{_dtype_name(value)}[{','.join(map(str, value.shape))}]#{array_digest(value)}"
    if isinstance(value, tuple):
        inner = ",".join(format_value(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return f'"{value}"'
    if dataclasses.is_dataclass(value):
        return str(value)
    return repr(value)


def format_node(node: Node) -> str:
    args = ", ".join(f"%{i}" for i in node.inputs)
    params = " ".join(f"{k}={format_value(v)}" for k, v in node.params().items())
    line = f"%{node.name} : {node.type} = {node.op}({args})"
    return f"{line} {params}" if params else line


def format_graph(graph: Graph) -> str:
    lines = [format_node(node) for node in graph.nodes.values()]
    lines.append("return " + ", ".join(f"%{o}" for o in graph.outputs))
    return "\n".join(lines)
