"""NIR import: a NIR graph (neuromorphs/NIR) compiled like a traced model.

`load_nir(path, dt)` reads the file (`reader.py`: h5py, every failure naming the node and
field), inlines nested graphs, refuses cycles and infers every node's shape from the Input
node (`graph.py`), and converts each node exactly or refuses it by name (`convert.py`, with
the discretisation of `snnc.discretise`). `euler.py` runs the file's own equations, the
check `snnc compile` makes of the IR. docs/semantics.md §7 is the contract.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from snnc.frontends.nir.convert import to_ir
from snnc.frontends.nir.graph import Flat, flatten
from snnc.frontends.nir.reader import NirError, NirFile, read_nir
from snnc.ir import Graph

__all__ = ["Loaded", "NirError", "load_nir"]


@dataclass
class Loaded:
    graph: Graph
    flat: Flat
    file: NirFile


def load_nir(path: str | os.PathLike[str], dt: float,
             input_shape: tuple[int, ...] | None = None) -> Loaded:
    """The IR graph of the .nir file at `path`, discretised with step `dt` seconds."""
    nf = read_nir(path)
    flat = flatten(nf.graph)
    return Loaded(to_ir(flat, dt, input_shape), flat, nf)
