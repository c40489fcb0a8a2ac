"""Reading a .nir file (HDF5, as `nir.write` lays it out) into plain NirNode records.

Read with h5py directly rather than `nir.read`, so that every failure names the node and the
field (nir's reader raises a bare KeyError or ValueError), and so that nodes written without
types (snnTorch's exporter leaves neurons and pooling untyped) read as they are: the converter
infers every type itself. Nothing is converted here; only presence and kind are checked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snnc.errors import SnncError
from snnc.inputs import open_regular


class NirError(SnncError):
    """A .nir file that cannot be read or compiled; the message names the node and field."""


#: Fields each node type needs, then those it may have (nir 1.0.8's `read_node`).
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Input": (("shape",), ()),
    "Output": (("shape",), ()),
    "Affine": (("weight", "bias"), ()),
    "Linear": (("weight",), ()),
    "Scale": (("scale",), ()),
    "Conv1d": (("weight", "stride", "padding", "dilation", "groups", "bias"), ("input_shape",)),
    "Conv2d": (("weight", "stride", "padding", "dilation", "groups", "bias"), ("input_shape",)),
    "AvgPool2d": (("kernel_size", "stride", "padding"), ()),
    "SumPool2d": (("kernel_size", "stride", "padding"), ()),
    "Flatten": (("start_dim", "end_dim"), ("input_type",)),
    "IF": (("r", "v_threshold"), ("v_reset",)),
    "LIF": (("tau", "r", "v_leak", "v_threshold"), ("v_reset",)),
    "LI": (("tau", "r", "v_leak"), ()),
    "I": (("r",), ()),
    "CubaLIF": (("tau_syn", "tau_mem", "r", "v_leak", "v_threshold"), ("v_reset", "w_in")),
    "CubaLI": (("tau_syn", "tau_mem", "r", "v_leak"), ("w_in",)),
    "Delay": (("delay",), ()),
    "Threshold": (("threshold",), ()),
    "NIRGraph": (("nodes", "edges"), ()),
}


@dataclass
class NirNode:
    """One node: its key, type, fields (numpy arrays, numbers or strings), and for a
    NIRGraph its nodes and edges. `path` is the dotted key from the top graph."""

    path: str
    type: str
    fields: dict[str, Any] = field(default_factory=dict)
    nodes: dict[str, NirNode] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)

    def where(self, name: str | None = None) -> str:
        what = f"node {self.path!r} ({self.type})"
        return f"{what}, field {name}" if name else what


@dataclass
class NirFile:
    graph: NirNode
    version: str


def read_nir(path: str | os.PathLike[str]) -> NirFile:
    """Read `path` whole; a damaged, truncated or foreign file is a NirError naming it."""
    try:
        import h5py
    except ImportError:
        raise NirError("reading a .nir file needs h5py: install snnc's extra 'interchange' "
                       "(pip install 'snnc[interchange]')") from None

    shown = os.fspath(path)
    with open_regular(path, shown, NirError) as raw:  # the one opener of every input file
        try:
            f = h5py.File(raw, "r")
        except OSError as err:
            raise NirError(f"{shown}: not a readable NIR file (HDF5): {_reason(err)}") from None
        with f:
            if "node" not in f or not isinstance(f["node"], h5py.Group):
                raise NirError(f"{shown}: no 'node' group; not a NIR graph file")
            version = _value(f, "version", shown) if "version" in f else ""
            graph = _read_node(f["node"], "", shown)
    if graph.type != "NIRGraph":
        raise NirError(f"{shown}: the top node is a {graph.type}, expected a NIRGraph")
    return NirFile(graph, str(version))


def _read_node(group: Any, path: str, shown: str) -> NirNode:
    import h5py

    label = repr(path) if path else "the top node"
    if not isinstance(group, h5py.Group) or "type" not in group:
        raise NirError(f"{shown}: {label} has no 'type' field")
    kind = _value(group, "type", f"{shown}: {label}")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise NirError(f"{shown}: node {path!r} has unknown type {kind!r}; known: "
                       f"{', '.join(sorted(FIELDS))}")
    node = NirNode(path or "<graph>", kind)
    required, optional = FIELDS[kind]
    for name in required:
        if name not in group:
            raise NirError(f"{shown}: {node.where()} lacks its field {name!r}")
    if kind == "NIRGraph":
        nodes = group["nodes"]
        if not isinstance(nodes, h5py.Group):
            raise NirError(f"{shown}: {node.where('nodes')} is not a group")
        for key in nodes:
            node.nodes[key] = _read_node(nodes[key], f"{path}.{key}" if path else key, shown)
        node.edges = _edges(group, node, shown)
        return node
    for name in (*required, *optional):
        if name in group:
            value = (_types(group[name], node, shown) if name == "input_type"
                     else _value(group, name, f"{shown}: {node.where(name)}"))
            node.fields[name] = value
    return node


def _edges(group: Any, node: NirNode, shown: str) -> list[tuple[str, str]]:
    raw = _value(group, "edges", f"{shown}: {node.where('edges')}")
    arr = np.asarray(raw, dtype=object)
    if arr.size == 0:
        return []
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise NirError(f"{shown}: {node.where('edges')} is shaped {list(arr.shape)}; "
                       "expected pairs of node names")
    return [(_text(a), _text(b)) for a, b in arr]


def _types(item: Any, node: NirNode, shown: str) -> Any:
    import h5py

    if isinstance(item, h5py.Group):  # {"input": shape}
        return {k: _value(item, k, f"{shown}: {node.where('input_type')}") for k in item}
    return _read(item, f"{shown}: {node.where('input_type')}")


def _value(group: Any, name: str, where: str) -> Any:
    import h5py

    item = group[name]
    if not isinstance(item, h5py.Dataset):
        raise NirError(f"{where}: expected a value, found a group")
    return _read(item, where)


def _read(item: Any, where: str) -> Any:
    try:
        value = item[()]
    except (OSError, ValueError, TypeError) as err:  # a damaged chunk, a bad filter
        raise NirError(f"{where}: cannot be read ({_reason(err)})") from None
    if isinstance(value, bytes):
        return _text(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "SO":
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind not in "biuf":
        raise NirError(f"{where}: dtype {value.dtype} is not numeric")
    return value


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf8")
        except UnicodeDecodeError:
            raise NirError(f"a name or type is not UTF-8 text: {value[:40]!r}") from None
    return str(value)


def _reason(err: BaseException) -> str:
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__
