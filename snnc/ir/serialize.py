"""Graph <-> (JSON-able document, arrays), generic over dataclass fields and the type registry.

No per-node code: a node is written as its registered type name and its fields. Field values
encode as JSON scalars, lists (tuples), `{"$array": key}` (numpy arrays, stored outside the
JSON by the artifact) or `{"$dataclass": name, "fields": {...}}` (TensorType, DType).
Decoding turns every JSON list back into a tuple: node fields never hold lists.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from snnc.errors import GraphError
from snnc.ir.graph import Graph
from snnc.ir.node import NODE_TYPES
from snnc.ir.types import DType, TensorType

#: Value dataclasses that may appear inside node fields.
VALUE_TYPES: dict[str, type] = {"TensorType": TensorType, "DType": DType}


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, np.ndarray):
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"$array": key}
    if isinstance(value, tuple):
        return [_encode(v, arrays) for v in value]
    if dataclasses.is_dataclass(value) and type(value).__name__ in VALUE_TYPES:
        fields = {
            f.name: _encode(getattr(value, f.name), arrays) for f in dataclasses.fields(value)
        }
        return {"$dataclass": type(value).__name__, "fields": fields}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot serialize a field value of type {type(value).__name__}")


def _decode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(value, list):
        return tuple(_decode(v, arrays, where) for v in value)
    if isinstance(value, dict):
        if "$array" in value:
            key = value["$array"]
            if key not in arrays:
                raise GraphError(f"{where}: refers to a missing array {key!r}")
            return arrays[key]
        name = value.get("$dataclass")
        if name not in VALUE_TYPES:
            raise GraphError(f"{where}: unknown value type {name!r}; known: {sorted(VALUE_TYPES)}")
        fields = {k: _decode(v, arrays, where) for k, v in value["fields"].items()}
        return VALUE_TYPES[name](**fields)
    return value


def graph_to_doc(graph: Graph) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The graph as a JSON-able document plus the arrays it refers to by key."""
    arrays: dict[str, np.ndarray] = {}
    nodes = []
    for node in graph.nodes.values():
        fields = {
            f.name: _encode(getattr(node, f.name), arrays) for f in dataclasses.fields(node)
        }
        nodes.append({"op": node.op, "fields": fields})
    return {"nodes": nodes, "outputs": list(graph.outputs)}, arrays


def graph_from_doc(doc: dict[str, Any], arrays: dict[str, np.ndarray]) -> Graph:
    """Rebuild and validate a graph written by `graph_to_doc`."""
    try:
        node_docs = doc["nodes"]
        outputs = doc["outputs"]
    except (KeyError, TypeError):
        raise GraphError("graph document lacks 'nodes' or 'outputs'") from None
    nodes = []
    for i, nd in enumerate(node_docs):
        op = nd.get("op")
        cls = NODE_TYPES.get(op)
        if cls is None:
            raise GraphError(f"node #{i}: unknown node type {op!r}; known: {sorted(NODE_TYPES)}")
        where = f"node #{i} ({op})"
        fields = {k: _decode(v, arrays, where) for k, v in nd.get("fields", {}).items()}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise GraphError(f"{where}: unknown fields {unknown}; {op} has {sorted(known)}")
        try:
            nodes.append(cls(**fields))
        except TypeError as err:
            raise GraphError(f"{where}: {err}") from None
    return Graph.build(nodes, outputs)
