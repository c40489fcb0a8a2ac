"""ONNX: the fixed-point program exported as one ONNX time step, and run by onnxruntime.

`export.py` writes and reads the model (`snnc export --format onnx`), `lower.py` builds it
from the fixed-point graph (one lowering per node type), `ops.py` holds the integer rules in
ONNX operators, `backend.py` runs it (`snnc check --backend onnx`). Importing this package or
its backend module imports neither onnx nor onnxruntime (the Lava environment has neither):
`require` imports them when a model is built or run.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from snnc.errors import SnncError


class OnnxError(SnncError):
    """An ONNX model that cannot be written, read or run; the message names the layer, node
    or field."""


def require(module: str) -> ModuleType:
    """`onnx` or `onnxruntime`, imported; a clear error when the environment lacks it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise OnnxError(f"the ONNX backend needs {module} ({err}); install snnc's extra "
                        "'interchange' (pip install 'snnc[interchange]')") from None
