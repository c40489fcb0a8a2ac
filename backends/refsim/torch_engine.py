"""Optional torch (CPU) kernels for the integer synapses: same integers, faster convolution.

torch's CPU convolution (oneDNN) is a direct sum of products for these shapes, which is
exact on integer data below 2^24 in float32, and measured so on every shape tested. Because
an algorithm choice (Winograd, FFT) could break that elsewhere, every result is checked to
be integral; a result that is not falls back to the numpy kernel, with a warning. The test
suite runs both engines on the same graphs and requires identical spikes and states.
Imported only when `simulate(..., engine="torch")` asks for it.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from snnc.backends.refsim import kernels

log = logging.getLogger(__name__)


def conv2d(x: np.ndarray, w: np.ndarray, stride: tuple[int, int],
           padding: tuple[int, int]) -> np.ndarray:
    if x.dtype != np.float32:  # beyond float32's exact range: the numpy kernel in float64
        return kernels.conv2d(x, w, stride, padding)
    with torch.no_grad():
        y = F.conv2d(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(w),
                     stride=stride, padding=padding)
        if not torch.equal(y, torch.round(y)):
            log.warning("torch convolution was not exact here; using the numpy kernel")
            return kernels.conv2d(x, w, stride, padding)
    return y.numpy()
