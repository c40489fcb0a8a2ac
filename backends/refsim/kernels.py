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
    """Cross-correlation as torch.nn.functional.conv2d (groups=1).

    One matrix product per kernel tap, accumulated: y += W[:, :, p, q] @ x_shifted. The work
    is that of im2col, but memory stays at the size of the input instead of kH*kW times it,
    and every partial sum is a plain sum of products (no Winograd or FFT), so integer data
    below the exactness bound of the float type gives exact integers.
    """
    c_out, c_in, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    n, _, h, w = x.shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    if n == 0:  # an empty batch (the shifted GEMMs below would span a negative row count)
        return np.zeros((0, c_out, ho, wo), x.dtype)
    if (sh, sw) == (1, 1) and kh * kw > 1:
        return _conv2d_shifted(x, weight, padding, ho, wo)
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    xt = np.ascontiguousarray(x.transpose(1, 0, 2, 3))  # [C, N, H, W]: taps slice cheaply
    weight = weight.astype(x.dtype, copy=False)
    out = np.zeros((c_out, n * ho * wo), x.dtype)
    for p in range(kh):
        for q in range(kw):
            tap = xt[:, :, p:p + sh * (ho - 1) + 1:sh, q:q + sw * (wo - 1) + 1:sw]
            out += weight[:, :, p, q] @ tap.reshape(c_in, n * ho * wo)
    return out.reshape(c_out, n, ho, wo).transpose(1, 0, 2, 3)


def avg_pool2d(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
               padding: tuple[int, int]) -> np.ndarray:
    """Mean over each window, padding counted as zeros (torch's count_include_pad=True)."""
    win = windows(x, kernel, stride, padding)
    return win.sum(axis=(4, 5)) / (kernel[0] * kernel[1])


def _conv2d_shifted(x: np.ndarray, weight: np.ndarray, padding: tuple[int, int], ho: int,
                    wo: int) -> np.ndarray:
    """Stride-1 convolution as shifted GEMMs: with the padded input flattened to rows
    [N*Hp*Wp, C], tap (p, q) is the same matrix shifted by p*Wp + q rows, a contiguous view.
    Rows that straddle an image border are computed and then dropped."""
    c_out, c_in, kh, kw = weight.shape
    (ph, pw), n = padding, x.shape[0]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))).transpose(0, 2, 3, 1)
    hp, wp = xp.shape[1], xp.shape[2]
    rows = np.ascontiguousarray(xp).reshape(n * hp * wp, c_in)
    span = n * hp * wp - (kh - 1) * wp - (kw - 1)
    weight = weight.astype(x.dtype, copy=False)
    out = np.zeros((n * hp * wp, c_out), x.dtype)
    part = np.empty((span, c_out), x.dtype)
    for p in range(kh):
        for q in range(kw):
            off = p * wp + q
            np.matmul(rows[off:off + span], weight[:, :, p, q].T, out=part)
            out[:span] += part
    return out.reshape(n, hp, wp, c_out)[:, :ho, :wo].transpose(0, 3, 1, 2)
