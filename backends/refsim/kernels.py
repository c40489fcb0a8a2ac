"""Array kernels shared by the simulator's node rules. Inputs are `[N, C, H, W]` batches."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
            padding: tuple[int, int]) -> np.ndarray:
    """Zero-padded sliding windows: `[N, C, H_out, W_out, kH, kW]` (a view where possible)."""
    (ph, pw), (sh, sw) = padding, stride
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    return sliding_window_view(x, kernel, axis=(2, 3))[:, :, ::sh, ::sw]


def conv2d(x: np.ndarray, weight: np.ndarray, stride: tuple[int, int],
           padding: tuple[int, int]) -> np.ndarray:
    """Cross-correlation as torch.nn.functional.conv2d (groups=1), via im2col and one matmul."""
    c_out, c_in, kh, kw = weight.shape
    win = windows(x, (kh, kw), stride, padding)  # [N, C, Ho, Wo, kh, kw]
    n, _, ho, wo = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c_in * kh * kw)
    out = cols @ weight.reshape(c_out, -1).T.astype(cols.dtype, copy=False)
    return out.reshape(n, ho, wo, c_out).transpose(0, 3, 1, 2)


def avg_pool2d(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
               padding: tuple[int, int]) -> np.ndarray:
    """Mean over each window, padding counted as zeros (torch's count_include_pad=True)."""
    win = windows(x, kernel, stride, padding)
    return win.sum(axis=(4, 5)) / (kernel[0] * kernel[1])
