"""Fold every BatchNorm into synapse weights and biases (docs/semantics.md, sections 2-3).

A BatchNorm computes, per channel k (axis 0 of the per-sample shape),

    y_k = a_k * (x_k - mean_k) + beta_k,     a_k = weight_k / sqrt(var_k + eps)

which is affine in x, so it folds into whatever produces x. Writing c_k = beta_k - a_k*mean_k:

    x = synapse (Conv2d, Dense):  W'_k = a_k * W_k  (output channel k),  b'_k = a_k*b_k + c_k
                                  (= a_k*(b_k - mean_k) + beta_k; b = 0 when bias is None)
    x = Add(x_1, ..., x_n):       BN(x) = Add(a*x_1 + c, a*x_2, ..., a*x_n), each term folded
                                  by these same rules (c goes to the first term only)
    x = anything else (spikes, the graph input, a pooled or flattened value):
                                  a new diagonal synapse: a 1x1 Conv2d (for (C, H, W) values)
                                  or a Dense (for (C,)) with weight diag(a) and bias c

A synapse or Add that something other than the BN also reads (a graph output counts as a
reader) is not changed: the BN's path gets scaled copies named "<bn>/<original>", and the
original keeps serving its other readers. This is the pre-activation ResNet case, where one
Add feeds both the next block's BN and the next Add. A synapse or Add read only by the BN is
folded in place and keeps its name. Neurons are never touched, so every spike is unchanged
(up to float rounding of the folded parameters). Folded parameters are float64.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from snnc.errors import GraphError
from snnc.ir import Add, BatchNorm, Conv2d, Dense, Graph, Node
from snnc.ir.types import F32, TensorType
from snnc.passes import PassResult, unchanged

log = logging.getLogger(__name__)

#: Matched by exact type: a subclass (the fixed-point synapses) may not scale like these.
SYNAPSES = (Conv2d, Dense)


def fold_batchnorm(graph: Graph) -> PassResult:
    """Remove every BatchNorm by folding it into the synapses that produce its input.

    BNs are folded one at a time in graph order, so a BN reading another BN (or a value a
    previous fold rewrote) sees an already folded graph.
    """
    nodes = dict(graph.nodes)
    outputs = list(graph.outputs)
    notes: list[str] = []
    while True:
        bn = next((n for n in nodes.values() if isinstance(n, BatchNorm)), None)
        if bn is None:
            break
        nodes, outputs, note = _fold_one(nodes, outputs, bn)
        log.debug("%s", note)
        notes.append(note)
    if not notes:
        return unchanged(graph)
    return PassResult(Graph.build(nodes.values(), outputs), True, notes)


def _scale_synapse(node: Node, a: np.ndarray, c: np.ndarray | None) -> Node:
    """The synapse `a * node + c`: output channel k scaled by a_k, c_k added to its bias."""
    w = np.asarray(node.weight, np.float64)  # type: ignore[attr-defined]
    w = w * a.reshape((-1,) + (1,) * (w.ndim - 1))
    bias = node.bias  # type: ignore[attr-defined]
    b = None if bias is None else a * np.asarray(bias, np.float64)
    if c is not None:
        b = c if b is None else b + c
    return node.replace(weight=w, bias=b)


def _fold_one(nodes: dict[str, Node], outputs: list[str],
              bn: BatchNorm) -> tuple[dict[str, Node], list[str], str]:
    """Fold one BN; return the new nodes, outputs and note.

    The remaining BNs keep their relative (topological) order, so the first one left never
    reads another; an Add folded in place may come before a synapse created for it, which
    `Graph.build` reorders at the end.
    """
    a = np.asarray(bn.scale(), np.float64)
    c = np.asarray(bn.bias, np.float64) - a * np.asarray(bn.mean, np.float64)
    folder = _Folder(nodes, outputs, bn)
    value = folder.scaled(bn.inputs[0], a, c, exclusive=True)

    def rename(node: Node) -> Node:
        if bn.name not in node.inputs:
            return node
        return node.replace(inputs=tuple(value if i == bn.name else i for i in node.inputs))

    new_nodes: dict[str, Node] = {}
    for name, node in nodes.items():
        if name == bn.name:
            # everything the fold created reads only nodes before the BN: put it here
            new_nodes.update((n.name, n) for n in folder.created)
            continue
        new_nodes[name] = rename(folder.updated.get(name, node))
    new_outputs = [value if o == bn.name else o for o in outputs]
    return new_nodes, new_outputs, folder.note()


class _Folder:
    """Rewrites the value a BN reads into `a * value + c`, in place where nothing else reads."""

    def __init__(self, nodes: Mapping[str, Node], outputs: list[str], bn: BatchNorm):
        self.nodes = nodes
        self.bn = bn
        self.readers: dict[str, int] = dict.fromkeys(nodes, 0)
        for node in nodes.values():
            for edge in node.inputs:
                self.readers[edge] += 1
        for out in outputs:
            self.readers[out] += 1
        self.taken = set(nodes)
        self.updated: dict[str, Node] = {}  # folded in place, same name
        self.created: list[Node] = []  # copies and diagonal synapses, in dependency order
        self.copied: list[str] = []
        self.diagonal: list[str] = []

    def scaled(self, name: str, a: np.ndarray, c: np.ndarray | None, exclusive: bool) -> str:
        """Name of a value equal to `a * nodes[name] + c` (c None: no constant).

        `exclusive`: the node reading `name` on this path is itself replaced (the BN, or an
        Add folded in place), so `name` may change in place if that is its only reader.
        """
        node = self.nodes[name]
        in_place = exclusive and self.readers[name] == 1
        if type(node) in SYNAPSES:
            folded = _scale_synapse(node, a, c)
        elif isinstance(node, Add):
            terms = tuple(self.scaled(t, a, c if i == 0 else None, in_place)
                          for i, t in enumerate(node.inputs))
            folded = node.replace(inputs=terms)
        else:
            return self._diagonal(name, a, c)
        if in_place:
            self.updated[name] = folded
            return name
        self.copied.append(name)
        return self._add(folded.replace(name=self._fresh(name)))

    def _diagonal(self, name: str, a: np.ndarray, c: np.ndarray | None) -> str:
        shape = self.bn.type.shape  # every term of the folded sum has the BN's shape
        diag = np.diag(a)
        if len(shape) == 3:
            node: Node = Conv2d(name=self._fresh(name), inputs=(name,),
                                weight=diag[:, :, None, None], bias=c)
        elif len(shape) == 1:
            node = Dense(name=self._fresh(name), inputs=(name,), weight=diag, bias=c)
        else:
            raise GraphError(f"node {self.bn.name!r} (BatchNorm): cannot fold onto {name!r} "
                             f"({self.nodes[name].op}) of shape {shape}; a diagonal synapse "
                             f"needs a (C, H, W) or (C,) value, or a Conv2d/Dense/Add input")
        self.diagonal.append(name)
        return self._add(node.replace(type=TensorType(shape, F32)))

    def _fresh(self, original: str) -> str:
        base = f"{self.bn.name}/{original}"
        name, i = base, 2
        while name in self.taken:
            name, i = f"{base}~{i}", i + 1
        self.taken.add(name)
        return name

    def _add(self, node: Node) -> str:
        self.created.append(node)
        return node.name

    def note(self) -> str:
        parts = [n for n, node in self.updated.items() if type(node) in SYNAPSES]
        if self.copied:
            parts.append("copies of " + ", ".join(self.copied))
        if self.diagonal:
            parts.append("diagonal synapses on " + ", ".join(self.diagonal))
        return f"folded {self.bn.name} into {', '.join(parts)}"
