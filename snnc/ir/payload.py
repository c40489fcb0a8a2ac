"""The graded input's payload: the integer an FxInput sends its first synapses each step.

One function for every place that turns an input value into what the chip sees: the
reference simulator's FxInput rule, the Lava backend's input frames and the cost model's
count of the pixels that send (a pixel whose payload is 0 sends no message).
"""

from __future__ import annotations

import numpy as np

from snnc.ir.fixed import FxInput


def input_payload(node: FxInput, x) -> np.ndarray:
    """`clip(round(x * scale), lo, hi)` as int64, `node.limits` being (lo, hi) and rounding
    half to even (`np.rint`), as FxInput's docstring defines it; any shape."""
    lo, hi = node.limits
    return np.clip(np.rint(np.asarray(x) * node.scale), lo, hi).astype(np.int64)
