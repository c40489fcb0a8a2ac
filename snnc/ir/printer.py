"""The canonical text form: one line per node, arrays as shape plus a short content hash.

    %conv1 : f32[4,8,8] = Conv2d(%x) weight=f32[4,1,3,3]#3f9a1c0b bias=f32[4]#... stride=(1,1)

Two graphs print the same text exactly when their structure, types and parameter values
agree (up to a hash collision), so pass tests and round-trip tests compare this text.

Names come from user models and artifacts, so they may hold anything: a name that is not
plain is printed quoted, with Python's escapes (`%"a\\nb"`), so that no name can break a
line or forge another node's (`format_name`). Tables and messages that show a name use
`format_name` or `escape` too.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from snnc.ir.graph import Graph
    from snnc.ir.node import Node


#: Characters a plain name may not hold besides whitespace and non-printable ones: the
#: printer's own punctuation, the quote and the escape character.
_NOT_PLAIN = frozenset('"\\%,()=#[]{}')


def escape(text: str) -> str:
    """`text` with every character a terminal would act on (control characters, line and
    paragraph separators, anything else not printable) written as its Python escape, so that
    it prints as one line and moves no cursor. Printable text, backslashes included, is left
    as it is."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def format_name(name: str) -> str:
    """A node name as the printer and every table show it: as it is when plain (printable,
    no whitespace, none of ``"\\%,()=#[]{}``), else in double quotes with backslash, quote and
    every non-printable character escaped: distinct names always print distinctly."""
    if name and name.isprintable() and not any(ch.isspace() or ch in _NOT_PLAIN
                                               for ch in name):
        return name
    return '"' + escape(name.replace("\\", "\\\\").replace('"', '\\"')) + '"'


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
    args = ", ".join(f"%{format_name(i)}" for i in node.inputs)
    params = " ".join(f"{k}={format_value(v)}" for k, v in node.params().items())
    line = f"%{format_name(node.name)} : {node.type} = {node.op}({args})"
    return f"{line} {params}" if params else line


def format_graph(graph: Graph) -> str:
    lines = [format_node(node) for node in graph.nodes.values()]
    lines.append("return " + ", ".join(f"%{format_name(o)}" for o in graph.outputs))
    return "\n".join(lines)
