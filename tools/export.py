"""`snnc export`: an artifact written in another project's format.

One table, `FORMATS`, names each format's writer by module and function, loaded only when
that format is asked for (so `snnc --help` imports neither nir nor onnx). A writer takes the
artifact and the output path and writes the whole file or nothing (`snnc.fileio`): what it
cannot express exactly is an error naming the layer and the reason, raised before a byte is
written.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from snnc.artifact import Artifact
from snnc.errors import SnncError


@dataclass(frozen=True)
class Format:
    """An export format: `writer` is 'module:function', called as function(artifact, path)."""

    name: str
    suffix: str
    writer: str
    description: str

    def load(self) -> Callable[[Artifact, Path], None]:
        module, _, function = self.writer.partition(":")
        return getattr(importlib.import_module(module), function)


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("nir", ".nir", "snnc.backends.nir.export:write_nir",
           "NIR (neuromorphs/NIR, HDF5): the folded float reference graph"),
    Format("onnx", ".onnx", "snnc.backends.onnx.export:write_onnx",
           "ONNX: the bit-exact fixed-point program, one time step, states as inputs and "
           "outputs"),
)}


def export(artifact: Artifact, fmt: str, output: Path) -> None:
    """Write `artifact` as `fmt` to `output` (whole or not at all)."""
    if fmt not in FORMATS:
        raise SnncError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    FORMATS[fmt].load()(artifact, output)
