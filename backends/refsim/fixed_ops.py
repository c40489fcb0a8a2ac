"""Integer semantics of the fixed-point nodes (see snnc/ir/fixed.py for the equations).

Every width, shift and unit is the IR's format (`snnc.ir.widths.FORMAT`: decay unit 4096,
act and threshold shifts 6, 24-bit u and v, 12 fraction bits in the CLIF's M). Each rule first
checks its node's integer fields against it (`width_problems`): a graph assembled without
`Graph.build` cannot shift by an exponent no int64 survives, or wrap a field silently.

This is the definition the Lava backend is tested against. Values are int64 arrays shaped
`[T or 1, batch, ...]` like the float rules'. Weighted sums run as float64 matrix products
only where that is exact: every partial sum is an integer below 2^24 (float32) or 2^53
(float64) in magnitude, checked per call from the weights and the input bound.
"""

from __future__ import annotations

import functools

import numpy as np

from snnc.backends.refsim import kernels
from snnc.backends.refsim.float_ops import Context, _per_sample, _recorder, _steps, readout_value
from snnc.errors import SimulationInputError
from snnc.ir import (
    FxChannelSlice,
    FxCLIF,
    FxConv2d,
    FxCubaLIF,
    FxDense,
    FxInput,
    FxLIF,
    FxMerge,
    FxPartialSum,
    FxReadout,
)
from snnc.ir.fixed import width_problems
from snnc.ir.node import channel_view
from snnc.ir.payload import input_payload
from snnc.ir.widths import FORMAT

MAX24 = FORMAT.state_max
_WRAP = 1 << (FORMAT.state_bits - 1)
_UNITY, _DECAY_SHIFT = FORMAT.decay_unity, FORMAT.decay_bits
_ACT, _VTH = FORMAT.act_shift, FORMAT.vth_shift
_FRAC = FORMAT.sigmoid_frac_bits  # M and the sigmoid table: 1.0 is 1 << _FRAC
_EXACT = float(1 << 53)
_EXACT32 = float(1 << 24)


def decay(x: np.ndarray, d: int | np.ndarray) -> np.ndarray:
    """sgn(x * (4096 - d)) * (|x * (4096 - d)| >> 12): Loihi's decay, rounding toward zero.

    Computed as (p + 4095 * [p < 0]) >> 12, which is the same truncation toward zero
    (for p < 0: floor((p + 4095) / 4096) = ceil(p / 4096)) in fewer passes."""
    k = _UNITY - np.asarray(d, dtype=np.int64)
    if k.ndim == 0 and k == _UNITY:
        return x
    p = x * k
    return (p + ((p >> 63) & (_UNITY - 1))) >> _DECAY_SHIFT  # p >> 63: -1 if p < 0 (int64)


def wrap24(x: np.ndarray) -> np.ndarray:
    """Lava's 24-bit wrap of u (note the asymmetric bounds, as in PyLifModelBitAcc)."""
    return np.where(x > _WRAP, x - 2 * _WRAP, np.where(x <= -_WRAP, x + 2 * _WRAP, x))


def clip24(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -MAX24, MAX24)


def shift(a: np.ndarray, exp: int) -> np.ndarray:
    return a << exp if exp >= 0 else a >> -exp


def _exact_matmul(node, x: np.ndarray, fn) -> np.ndarray:
    """fn(x, weight) on integer data in the narrowest float type that is exact for it.

    Every partial sum of a row is bounded by sum|W_row| * max|x|. Below 2^24 float32 holds
    every such integer exactly (products and sums of exact integers stay exact whatever the
    order); below 2^53 float64 does; beyond, the result could be rounded, so it is refused.
    """
    bound = float(np.abs(node.weight).sum(axis=tuple(range(1, node.weight.ndim))).max(initial=0))
    bound *= float(np.abs(x).max(initial=0))
    if bound < _EXACT32:
        dtype = np.float32
    elif bound < _EXACT:
        dtype = np.float64
    else:
        raise SimulationInputError(f"node {node.name!r}: a weighted sum could reach "
                                   f"{bound:.3g}, beyond exact float arithmetic (2^53)")
    y = fn(x.astype(dtype, copy=False), node.weight.astype(dtype))
    return y.astype(np.int64)  # exact integers: the cast is exact too


def _fx_input(node: FxInput, xs, ctx: Context) -> np.ndarray:
    return input_payload(node, ctx.feeds[node.name])


def _fx_conv2d(node: FxConv2d, xs, ctx: Context) -> np.ndarray:
    conv = ctx.int_conv2d or kernels.conv2d
    y = _per_sample(lambda v: _exact_matmul(
        node, v, lambda a, w: conv(a, w, node.stride, node.padding)), xs[0])
    return shift(y, node.weight_exp)


def _fx_dense(node: FxDense, xs, ctx: Context) -> np.ndarray:
    x = xs[0].reshape(xs[0].shape[:2] + (node.weight.shape[1],))  # an empty batch too
    return shift(_exact_matmul(node, x, lambda a, w: a @ w.T), node.weight_exp)


def _channel_slice(node: FxChannelSlice, xs, ctx: Context) -> np.ndarray:
    return xs[0][:, :, node.start:node.stop]


def _fx_partial_sum(node: FxPartialSum, xs, ctx: Context) -> np.ndarray:
    return xs[0]  # the relay sends its synaptic input unchanged, as a graded payload


def _fx_merge(node: FxMerge, xs, ctx: Context) -> np.ndarray:
    total = xs[0]
    for x in xs[1:]:
        total = total + x
    return shift(total, node.weight_exp)  # once, to the whole sum: the unsplit synapse's value


def _bias(node, shape) -> np.ndarray:
    return channel_view(np.asarray(node.bias_mant, np.int64), shape) << node.bias_exp


def _fx_lif(node: FxLIF, xs, ctx: Context) -> np.ndarray:
    x = xs[0]
    bias = _bias(node, node.type.shape)
    theta = node.vth << _VTH
    out = np.zeros((ctx.timesteps,) + x.shape[1:], np.float32)
    rec = _recorder(node, x, ctx, ("u", "v"), np.int64)
    u = np.zeros(x.shape[1:], np.int64)
    v = np.zeros_like(u)
    # du = 4095 keeps no current (decay by 4096/4096); and an input that cannot reach 2^23
    # after the shift cannot wrap. Both shortcuts give the same integers, only faster.
    stateless_u = node.du == FORMAT.decay_max
    cannot_wrap = stateless_u and int(np.abs(x).max(initial=0)) << _ACT < _WRAP
    for t, a in _steps(x, ctx, node):
        if stateless_u:
            u = a << _ACT if cannot_wrap else wrap24(a << _ACT)
        else:
            u = wrap24(decay(u, node.du + 1) + (a << _ACT))
        v = clip24(decay(v, node.dv) + u + bias)
        s = v > theta
        v = np.where(s, 0, v) if node.reset == "hard" else v - s * node.reset_sub
        out[t] = s
        if rec is not None:
            rec["u"][t], rec["v"][t] = u, v
    return out


def _fx_cuba_lif(node: FxCubaLIF, xs, ctx: Context) -> np.ndarray:
    x = xs[0]
    bias = _bias(node, node.type.shape)
    theta, sub, reset = node.vth << _VTH, node.reset_sub, node.reset
    out = np.zeros((ctx.timesteps,) + x.shape[1:], np.float32)
    rec = _recorder(node, x, ctx, ("u", "v"), np.int64)
    u = np.zeros(x.shape[1:], np.int64)
    v = np.zeros_like(u)
    for t, a in _steps(x, ctx, node):
        u = wrap24(decay(u, node.du + 1) + (a << _ACT))
        r = (v > theta).astype(np.int64)
        if reset == "zero":
            v = v * (1 - r)
        h = clip24(decay(v, node.dv) + u + bias)
        if reset == "subtract":
            h = clip24(h - r * sub)
        elif reset == "zero_all":
            h = h * (1 - r)
        s = (h > theta).astype(np.int64)
        if node.reset_delay or reset == "none":
            v = h
        elif reset == "subtract":
            v = clip24(h - (s - r) * sub)
        else:
            v = clip24(h * (1 - s + r))
        out[t] = s
        if rec is not None:
            rec["u"][t], rec["v"][t] = u, v
    return out


def _fx_clif(node: FxCLIF, xs, ctx: Context) -> np.ndarray:
    x = xs[0]
    bias = _bias(node, node.type.shape)
    theta = node.vth << _VTH
    centre, last_sig, last_reset = len(node.sig_lut) // 2, len(node.sig_lut) - 1, \
        len(node.reset_lut) - 1
    half = 1 << (node.sig_shift - 1)
    sig_lut = node.sig_lut.astype(np.int64)
    reset_lut = node.reset_lut.astype(np.int64)
    out = np.zeros((ctx.timesteps,) + x.shape[1:], np.float32)
    rec = _recorder(node, x, ctx, ("v", "m"), np.int64)
    v = np.zeros(x.shape[1:], np.int64)
    m = np.zeros_like(v)
    for t, a in _steps(x, ctx, node):
        h = clip24(decay(v, node.dv) + wrap24(a << _ACT) + bias)
        s = (h > theta).astype(np.int64)
        idx = np.clip(((h * node.sig_mult + half) >> node.sig_shift) + centre, 0, last_sig)
        m = ((m * sig_lut[idx]) >> _FRAC) + (s << _FRAC)
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
        v = clip24(decay(v, node.dv) + wrap24(a << _ACT) + bias)
        out[t] = v
    ctx.readout[node.name] = readout_value(node, out[ctx.final_step(node.name)],
                                           ctx.window or ctx.timesteps)
    if ctx.records(node.name):
        ctx.states[node.name] = {"v": out}
    return out


def _checked(rule):
    """The rule, after its node's integer fields are checked against the format."""
    @functools.wraps(rule)
    def run(node, xs, ctx: Context) -> np.ndarray:
        problems = width_problems(node, FORMAT)
        if problems:
            raise SimulationInputError(f"node {node.name!r} ({node.op}): "
                                       + "; ".join(problems))
        return rule(node, xs, ctx)
    return run


FIXED_RULES = {t: _checked(rule) for t, rule in {
    FxInput: _fx_input,
    FxConv2d: _fx_conv2d,
    FxDense: _fx_dense,
    FxChannelSlice: _channel_slice,
    FxPartialSum: _fx_partial_sum,
    FxMerge: _fx_merge,
    FxLIF: _fx_lif,
    FxCLIF: _fx_clif,
    FxCubaLIF: _fx_cuba_lif,
    FxReadout: _fx_readout,
}.items()}
