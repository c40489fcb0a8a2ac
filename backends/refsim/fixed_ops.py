"""Integer semantics of the fixed-point nodes (see snnc/ir/fixed.py for the equations).

This is the definition the Lava backend is tested against. Values are int64 arrays shaped
`[T or 1, batch, ...]` like the float rules'. Weighted sums run as float64 matrix products
only where that is exact: every partial sum is an integer below 2^53 in magnitude, which is
checked per call from the weights and the input bound (it always holds for 8-bit weights).
"""

from __future__ import annotations

import numpy as np

from snnc.backends.refsim import kernels
from snnc.backends.refsim.float_ops import Context, _per_sample, _recorder, _steps
from snnc.errors import SimulationInputError
from snnc.ir import FxCLIF, FxConv2d, FxDense, FxInput, FxLIF, FxReadout
from snnc.ir.node import channel_view

MAX24 = (1 << 23) - 1
_EXACT = float(1 << 53)


def decay(x: np.ndarray, d: int | np.ndarray) -> np.ndarray:
    """sgn(x * (4096 - d)) * (|x * (4096 - d)| >> 12): Loihi's decay, rounding toward zero."""
    p = x * (4096 - np.asarray(d, dtype=np.int64))
    return np.sign(p) * (np.abs(p) >> 12)


def wrap24(x: np.ndarray) -> np.ndarray:
    """Lava's 24-bit wrap of u (note the asymmetric bounds, as in PyLifModelBitAcc)."""
    limit = 1 << 23
    return np.where(x > limit, x - 2 * limit, np.where(x <= -limit, x + 2 * limit, x))


def clip24(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -MAX24, MAX24)


def shift(a: np.ndarray, exp: int) -> np.ndarray:
    return a << exp if exp >= 0 else a >> -exp


def _exact_matmul(node, x: np.ndarray, fn) -> np.ndarray:
    bound = float(np.abs(node.weight).sum(axis=tuple(range(1, node.weight.ndim))).max(initial=0))
    if bound * float(np.abs(x).max(initial=0)) >= _EXACT:
        raise SimulationInputError(f"node {node.name!r}: a weighted sum could exceed 2^53")
    return np.rint(fn(x.astype(np.float64), node.weight.astype(np.float64))).astype(np.int64)


def _fx_input(node: FxInput, xs, ctx: Context) -> np.ndarray:
    lo, hi = node.limits
    return np.clip(np.rint(ctx.feeds[node.name] * node.scale), lo, hi).astype(np.int64)


def _fx_conv2d(node: FxConv2d, xs, ctx: Context) -> np.ndarray:
    y = _per_sample(lambda v: _exact_matmul(
        node, v, lambda a, w: kernels.conv2d(a, w, node.stride, node.padding)), xs[0])
    return shift(y, node.weight_exp)


def _fx_dense(node: FxDense, xs, ctx: Context) -> np.ndarray:
    x = xs[0].reshape(xs[0].shape[:2] + (-1,))
    return shift(_exact_matmul(node, x, lambda a, w: a @ w.T), node.weight_exp)


def _bias(node, shape) -> np.ndarray:
    return channel_view(np.asarray(node.bias_mant, np.int64), shape) << node.bias_exp


def _fx_lif(node: FxLIF, xs, ctx: Context) -> np.ndarray:
    x = xs[0]
    bias = _bias(node, node.type.shape)
    theta = node.vth << 6
    out = np.zeros((ctx.timesteps,) + x.shape[1:], ctx.dtype)
    rec = _recorder(node, x, ctx, ("u", "v"), np.int64)
    u = np.zeros(x.shape[1:], np.int64)
    v = np.zeros_like(u)
    for t, a in _steps(x, ctx, node):
        u = wrap24(decay(u, node.du + 1) + (a << 6))
        v = clip24(decay(v, node.dv) + u + bias)
        s = v > theta
        v = np.where(s, 0, v) if node.reset == "hard" else v - s * node.reset_sub
        out[t] = s
        if rec is not None:
            rec["u"][t], rec["v"][t] = u, v
    return out


def _fx_clif(node: FxCLIF, xs, ctx: Context) -> np.ndarray:
    x = xs[0]
    bias = _bias(node, node.type.shape)
    theta = node.vth << 6
    centre, last_sig, last_reset = len(node.sig_lut) // 2, len(node.sig_lut) - 1, \
        len(node.reset_lut) - 1
    half = 1 << (node.sig_shift - 1)
    sig_lut = node.sig_lut.astype(np.int64)
    reset_lut = node.reset_lut.astype(np.int64)
    out = np.zeros((ctx.timesteps,) + x.shape[1:], ctx.dtype)
    rec = _recorder(node, x, ctx, ("v", "m"), np.int64)
    v = np.zeros(x.shape[1:], np.int64)
    m = np.zeros_like(v)
    for t, a in _steps(x, ctx, node):
        h = clip24(decay(v, node.dv) + (a << 6) + bias)
        s = (h > theta).astype(np.int64)
        idx = np.clip(((h * node.sig_mult + half) >> node.sig_shift) + centre, 0, last_sig)
        m = ((m * sig_lut[idx]) >> 12) + (s << 12)
        v = clip24(h - s * (node.reset_sub + reset_lut[np.minimum(m >> node.m_shift,
                                                                   last_reset)]))
        out[t] = s
        if rec is not None:
            rec["v"][t], rec["m"][t] = v, m
    return out


def _fx_readout(node: FxReadout, xs, ctx: Context) -> np.ndarray:
    x = xs[0]
    bias = _bias(node, node.type.shape)
    out = np.zeros((ctx.timesteps,) + x.shape[1:], np.int64)
    v = np.zeros(x.shape[1:], np.int64)
    for t, a in _steps(x, ctx, node):
        v = clip24(decay(v, node.dv) + (a << 6) + bias)
        out[t] = v
    final = out[ctx.final_step(node.name)] / node.scale
    ctx.readout[node.name] = final / (ctx.window or ctx.timesteps) if node.mean else final
    if ctx.record_states:
        ctx.states[node.name] = {"v": out}
    return out


FIXED_RULES = {
    FxInput: _fx_input,
    FxConv2d: _fx_conv2d,
    FxDense: _fx_dense,
    FxLIF: _fx_lif,
    FxCLIF: _fx_clif,
    FxReadout: _fx_readout,
}
