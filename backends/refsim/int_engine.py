"""The integer engine (`simulate(..., engine="int", device=...)`): the fixed-point rules of
fixed_ops.py on torch integer tensors, on the CPU or a CUDA device, same integers.

Values stay torch tensors from the input to the last neuron and become numpy only in the
SimResult: spikes are bool, synaptic inputs int32 (int64 where a bound says int32 could
overflow), neuron states int32. Exactness holds by construction, from bounds computed per
call: a synapse's output carries the bound its weights prove (`_bounded`); a value without
one (the graded input, a delayed copy) has its range read off the tensor, one reduction.

* Weighted sums (`_Product`): spikes are 0/1 and most weight matrices fit int8 after taking
  out a common power of two and an offset (mixed-sign weights are even, in [-256, 254];
  single-sign ones are [0, 255] = 128 + [-128, 127]). Then `torch._int_mm` (int8 x int8 ->
  int32) is exact while every partial sum stays below 2^31, which is checked: |sum| <=
  (128 + |offset|) * fan-in * max|x|. Otherwise a float32 product (exact when fan-in sums of
  |w| * max|x| stay below 2^24: every product and partial sum is then an integer float32
  holds, in any summation order) or float64 (below 2^53); beyond, refused as in fixed_ops.
  No convolution algorithm is involved (no Winograd or FFT): a convolution is an im2col,
  built in chunks from a channels-last input, times the weight matrix.
* Neurons (`_state_dtype`): with |a| <= 2^18 every intermediate of LIF, CUBA-LIF and the
  readout fits int32 (shown at `_state_dtype`); otherwise the same code runs in int64. CLIF
  runs in int64 (its index multiplies |H| < 2^23 by a multiplier up to 2^40). The neuron
  loop runs over chunks of at most 32K neurons (samples, or rows of an image), in place in
  buffers reused across steps, so that a chunk's state stays in cache over the steps.

CUDA: the same code with tensors on the device; float products run with TF32 off, and
_int_mm's operands are padded to its shape rules (zero rows and columns add nothing).
Imported only when `simulate(..., engine="int")` asks for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from snnc.backends.refsim.fixed_ops import _checked
from snnc.backends.refsim.float_ops import Context, readout_value
from snnc.errors import SimulationInputError
from snnc.ir import (
    Add,
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
from snnc.ir.node import channel_view
from snnc.ir.payload import input_payload
from snnc.ir.widths import FORMAT

MAX24 = FORMAT.state_max
_WRAP = 1 << (FORMAT.state_bits - 1)
_UNITY, _DECAY_SHIFT = FORMAT.decay_unity, FORMAT.decay_bits
_ACT, _VTH = FORMAT.act_shift, FORMAT.vth_shift
_FRAC = FORMAT.sigmoid_frac_bits
_INT32 = 1 << 31
#: Largest |synaptic input| the neurons take in int32 (see `_state_dtype`).
_INT32_INPUT = 1 << 18
#: Elements of one im2col chunk (8 MB of int8) and of one neuron chunk (128 KB of int32
#: state) on the CPU: sizes that keep the working set in cache (and the neuron's small
#: elementwise operations below torch's threshold for threading). On CUDA, where each
#: operation is a kernel launch, chunks are as large as memory allows.
_CHUNKS = {"cpu": (1 << 23, 1 << 15), "cuda": (1 << 28, 1 << 40)}


def device_of(device: str | torch.device | None) -> torch.device:
    """The torch device a run uses; a clear error for CUDA without a device."""
    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as e:
        raise SimulationInputError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}"
                                   ) from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SimulationInputError(f"device {device!r}: no CUDA device is available here "
                                   "(torch.cuda.is_available() is False); use device 'cpu'")
    if dev.type not in ("cpu", "cuda"):
        raise SimulationInputError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    return dev


def host(x: torch.Tensor) -> np.ndarray:
    """A value as a C-ordered numpy array (what SimResult holds)."""
    return x.contiguous().cpu().numpy()


def host_bool(x: torch.Tensor) -> np.ndarray:
    return host(x if x.dtype == torch.bool else x != 0)


def delay(x: torch.Tensor, steps: int, total: int) -> torch.Tensor:
    """analyses.timing.delay on a tensor: shifted later by `steps`, zeros before."""
    if steps == 0 and x.shape[0] in (1, total):
        return x
    out = _alloc(x, total, x.dtype)
    out[:steps].zero_()
    if x.shape[0] == 1:
        out[steps:] = x[0]
    else:
        n = min(x.shape[0], total - steps)
        out[steps:steps + n] = x[:n]
        out[steps + n:].zero_()
    return _bounded(out, getattr(x, "snnc_bound", None))


def _alloc(like: torch.Tensor, steps: int, dtype: torch.dtype, zero_until: int = 0
           ) -> torch.Tensor:
    """`[steps, *like.shape[1:]]` laid out in memory as `like` is (channels last after a
    convolution), time and batch outermost, so elementwise work runs on matching strides;
    zeros before step `zero_until` (the rest is left to be written)."""
    shape = (steps,) + tuple(like.shape[1:])
    order = [0, 1][:like.dim()] + sorted(range(2, like.dim()), key=lambda d: -like.stride(d))
    buf = torch.empty([shape[d] for d in order], dtype=dtype, device=like.device)
    buf = buf.permute(*np.argsort(order).tolist())
    buf[:zero_until].zero_()
    return buf


def _limits(x: torch.Tensor) -> tuple[int, int]:
    if x.dtype == torch.bool:
        return 0, 1
    if x.numel() == 0:
        return 0, 0
    lo, hi = torch.aminmax(x)
    return int(lo), int(hi)


def _bounded(x: torch.Tensor, bound: int | None) -> torch.Tensor:
    """Attach a proven bound on |x| (from the weights), which spares `_magnitude` a pass."""
    x.snnc_bound = bound
    return x


def _magnitude(x: torch.Tensor) -> int:
    """A bound on |x|: the one a rule proved, or else read off the tensor."""
    bound = getattr(x, "snnc_bound", None)
    if bound is not None:
        return bound
    lo, hi = _limits(x)
    return max(-lo, hi)


def _shift(y: torch.Tensor, exp: int, bound: int) -> tuple[torch.Tensor, int]:
    """fixed_ops.shift of a fresh tensor, in place, and the result's bound (|y| <= bound).
    In int32 when that bound stays below 2^31, else in int64. `>>` is a floor shift, as
    numpy's: |floor(y / 2^k)| <= (bound >> k) + 1."""
    if exp > 0 and bound << exp >= _INT32:
        y = y.to(torch.int64)
    if exp > 0:
        return y.bitwise_left_shift_(exp), bound << exp
    if exp < 0:
        return y.bitwise_right_shift_(-exp), (bound >> -exp) + 1
    return y, bound


@contextlib.contextmanager
def _exact_float(device: torch.device) -> Iterator[None]:
    """Float products in full precision: TF32 off on CUDA (it keeps 10 mantissa bits)."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved


class _Product:
    """`x @ W.T` exactly, for integer inputs in [lo, hi] and integer weights W [out, K].

    int8: W = 2^z * (Q + offset) with Q int8; then sum(W x) = 2^z * (Q @ x + offset * sum(x)).
    The accumulator's partial sums are bounded by (128 + |offset|) * K * max|x|, checked below
    2^31: _int_mm's int32 sums are exact. The result is returned without the 2^z factor
    (`scale_bits` = z), which the caller folds into the node's shift: shift(2^z y, e) =
    shift(y, e + z) for floor shifts. Else float32 (bound < 2^24) or float64 (< 2^53)."""

    def __init__(self, node, w: np.ndarray, lo: int, hi: int, device: torch.device):
        xmax = max(-lo, hi)
        self.device = device
        #: |sum(W x)| <= bound for every output
        self.bound = int(np.abs(w).sum(axis=1).max(initial=0)) * xmax
        self.scale_bits, self.offset = 0, 0
        k = w.shape[1]
        bits = int(np.bitwise_or.reduce(np.abs(w).ravel(), initial=0))
        z = (bits & -bits).bit_length() - 1 if bits else 0  # 2^z divides every weight
        q = w >> z
        qlo, qhi = int(q.min(initial=0)), int(q.max(initial=0))
        offset = 0 if -128 <= qlo and qhi <= 127 else (qlo + 128 if qhi - qlo <= 255 else None)
        if (-128 <= lo and hi <= 127 and offset is not None
                and (128 + abs(offset)) * k * xmax < _INT32):
            self.kind = "int8"
            self.scale_bits, self.offset = z, offset
            self.weight = _int8_weight(torch.from_numpy((q - offset).astype(np.int8)), device)
            self.out_dtype = torch.int32
        elif self.bound < 1 << 24:
            self.kind, self.dtype = "float32", torch.float32
        elif self.bound < 1 << 53:
            self.kind, self.dtype = "float64", torch.float64
        else:
            raise SimulationInputError(f"node {node.name!r}: a weighted sum could reach "
                                       f"{self.bound:.3g}, beyond exact float arithmetic "
                                       "(2^53)")
        if self.kind != "int8":
            self.weight = torch.from_numpy(w.astype(np.float64)).to(device, self.dtype).T
            self.out_dtype = torch.int32 if self.bound < _INT32 else torch.int64

    def operand(self, x: torch.Tensor) -> torch.Tensor:
        """The input in the product's type (a view for bool spikes on the int8 path)."""
        if self.kind == "int8":
            return x.view(torch.int8) if x.dtype in (torch.bool, torch.uint8) else \
                x.to(torch.int8)
        return x

    def __call__(self, a: torch.Tensor, out: torch.Tensor) -> None:
        """out [m, out] = the exact sums of rows a [m, K] (already `operand`s)."""
        if self.kind == "int8":
            _int8_mm(a, self.weight, out)
            if self.offset:
                out += self.offset * a.sum(dim=1, keepdim=True, dtype=torch.int32)
            return
        with _exact_float(self.device):
            out.copy_(a.to(self.dtype) @ self.weight)


def _int8_weight(q: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Q [out, K] as _int_mm's right operand [K, out], column-major (the faster layout on
    CPU). On CUDA, K and out are padded with zeros to multiples of 8 (_int_mm's rule)."""
    if device.type == "cuda":
        n, k = q.shape
        q = F.pad(q, (0, -k % 8, 0, -n % 8))
    return q.to(device).contiguous().T


def _int8_mm(a: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> None:
    if a.device.type != "cuda":
        torch._int_mm(a, w, out=out)
        return
    m, k = a.shape
    a = F.pad(a, (0, w.shape[0] - k, 0, max(0, 17 - m)))  # CUDA: m > 16, K % 8 == 0
    out.copy_(torch._int_mm(a, w)[:m, :out.shape[1]])


def _synaptic(node, x: torch.Tensor, weight2d: np.ndarray,
              rows: Callable[[torch.Tensor, _Product], Iterator[tuple[slice, torch.Tensor]]],
              m: int) -> tuple[torch.Tensor, _Product]:
    lo, hi = _limits(x)
    prod = _Product(node, weight2d, lo, hi, x.device)
    out = torch.empty((m, weight2d.shape[0]), dtype=prod.out_dtype, device=x.device)
    for where, a in rows(prod.operand(x), prod):
        prod(a, out[where])
    return out, prod


def _fx_conv2d(node: FxConv2d, xs, ctx: Context) -> torch.Tensor:
    x = xs[0]
    t, b, c, h, w = x.shape
    c_out, _, kh, kw = node.weight.shape
    (sh, sw), (ph, pw) = node.stride, node.padding
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    # [Cout, kh, kw, C]: the im2col's column order, channels innermost (contiguous copies)
    w2 = node.weight.transpose(0, 2, 3, 1).reshape(c_out, -1)
    n = t * b
    per_chunk = max(1, _CHUNKS[x.device.type][0] // (ho * wo * kh * kw * c))

    def rows(xin: torch.Tensor, prod: _Product):
        nhwc = xin.permute(0, 1, 3, 4, 2).reshape(n, h, w, c)  # a view after a convolution
        if ph or pw:
            nhwc = F.pad(nhwc, (0, 0, pw, pw, ph, ph))
        win = nhwc.unfold(1, kh, sh).unfold(2, kw, sw).permute(0, 1, 2, 4, 5, 3)
        for n0 in range(0, n, per_chunk):
            n1 = min(n, n0 + per_chunk)
            yield slice(n0 * ho * wo, n1 * ho * wo), win[n0:n1].reshape(-1, kh * kw * c)

    y, prod = _synaptic(node, x, w2, rows, n * ho * wo)
    y, bound = _shift(y, node.weight_exp + prod.scale_bits, prod.bound >> prod.scale_bits)
    # [T, B, C, H, W] over NHWC memory
    return _bounded(y.view(t, b, ho, wo, c_out).permute(0, 1, 4, 2, 3), bound)


def _fx_dense(node: FxDense, xs, ctx: Context) -> torch.Tensor:
    x = xs[0]
    t, b = x.shape[:2]
    flat = x.reshape(t * b, node.weight.shape[1])  # not -1: an empty batch has no size

    def rows(xin: torch.Tensor, prod: _Product):
        xin = xin.reshape(t * b, node.weight.shape[1]).contiguous()
        per = max(1, _CHUNKS[x.device.type][0] // xin.shape[1])
        for r0 in range(0, t * b, per):
            yield slice(r0, r0 + per), xin[r0:r0 + per]

    y, prod = _synaptic(node, flat, node.weight, rows, t * b)
    y, bound = _shift(y, node.weight_exp + prod.scale_bits, prod.bound >> prod.scale_bits)
    return _bounded(y.view(t, b, node.weight.shape[0]), bound)


def _fx_input(node: FxInput, xs, ctx: Context) -> torch.Tensor:
    # payloads have at most FORMAT.message_bits = 24 bits: int32 holds them
    return torch.from_numpy(input_payload(node, ctx.feeds[node.name])).to(ctx.device,
                                                                          torch.int32)


def _channel_slice(node: FxChannelSlice, xs, ctx: Context) -> torch.Tensor:
    return _bounded(xs[0][:, :, node.start:node.stop], getattr(xs[0], "snnc_bound", None))


def _fx_partial_sum(node: FxPartialSum, xs, ctx: Context) -> torch.Tensor:
    return xs[0]


def _sum(xs: list[torch.Tensor]) -> tuple[torch.Tensor, int]:
    """The sum of integer tensors, in int32 when the sum of their magnitudes fits, else int64;
    and that bound."""
    bound = sum(_magnitude(x) for x in xs)
    dtype = torch.int32 if bound < _INT32 else torch.int64
    total = xs[0].to(dtype) + xs[1] if len(xs) > 1 else xs[0].to(dtype, copy=True)
    for x in xs[2:]:
        total += x
    return total, bound


def _add(node: Add, xs, ctx: Context) -> torch.Tensor:
    return _bounded(*_sum(xs))


def _fx_merge(node: FxMerge, xs, ctx: Context) -> torch.Tensor:
    total, bound = _sum(xs)
    return _bounded(*_shift(total, node.weight_exp, bound))


def _state_dtype(bound: int) -> torch.dtype:
    """int32 when |a| <= 2^18, which bounds every intermediate below 2^31:
    |a << 6| <= 2^24, so wrap24 of it, or of decay(u) + (a << 6) with u in (-2^23, 2^23],
    has an argument in (-3 * 2^23, 3 * 2^23] (one +-2^24 suffices: `_wrap24_`) and lands in
    (-2^23, 2^23] again; |v| <= 2^24 (clip24, then at most a subtraction of reset_sub <
    2^23), so decay(v) + u + bias is below 2^24 + 2^23 + 2^19 (bias: a 13-bit mantissa << 7
    at most); decay's own intermediates are in `_decay_`. Otherwise int64, as the numpy
    definition."""
    return torch.int32 if bound <= _INT32_INPUT else torch.int64


class _Scratch:
    """Buffers shaped like a chunk of state, reused across steps (no allocation per step)."""

    def __init__(self, like: torch.Tensor):
        self.like = like
        self._bufs: dict[str, torch.Tensor] = {}

    def __getattr__(self, name: str) -> torch.Tensor:  # i1, i2: state type; b1, b2: bool
        bufs = self.__dict__["_bufs"]
        if name not in bufs:
            like = self.__dict__["like"]
            bufs[name] = torch.empty_like(like, dtype=torch.bool if name[0] == "b" else None)
        return bufs[name]


def _decay_(x: torch.Tensor, d: int, sc: _Scratch) -> torch.Tensor:
    """fixed_ops.decay in place: x * (4096 - d) / 4096 rounded toward zero, without the
    product (which int32 could not hold).

    With x = 4096 q + r (floor division, 0 <= r < 4096): x k = 4096 q k + r k, so
    floor(x k / 4096) = q k + (r k >> 12), and the quotient is inexact exactly when
    r k & 4095 != 0; truncation toward zero adds 1 to the floor then if x < 0. For
    |x| <= 2^25 and k <= 4096: |q k| <= 2^25 and r k < 2^24 (int32). For k = 2^j it is the
    rounding shift (x + (2^s - 1) * [x < 0]) >> s, s = 12 - j."""
    k = _UNITY - d
    if k == _UNITY:
        return x
    if k == 0:
        return x.zero_()
    if k & (k - 1) == 0:
        s = _DECAY_SHIFT - (k.bit_length() - 1)
        sign = 31 if x.dtype == torch.int32 else 63
        torch.bitwise_right_shift(x, sign, out=sc.i1)  # -1 where x < 0, else 0
        return x.add_(sc.i1.bitwise_and_((1 << s) - 1)).bitwise_right_shift_(s)
    rk = torch.bitwise_and(x, _UNITY - 1, out=sc.i1).mul_(k)
    inexact = torch.ne(torch.bitwise_and(rk, _UNITY - 1, out=sc.i2), 0, out=sc.b1)
    negative = torch.lt(x, 0, out=sc.b2).bitwise_and_(inexact)
    x.bitwise_right_shift_(_DECAY_SHIFT).mul_(k).add_(rk.bitwise_right_shift_(_DECAY_SHIFT))
    return x.add_(negative)


def _wrap24_(x: torch.Tensor, small: bool) -> torch.Tensor:
    """fixed_ops.wrap24 in place. For a `small` input (|a| <= 2^18: the argument is in
    (-3 * 2^23, 3 * 2^23], see `_state_dtype`) one +-2^24 is the residue mod 2^24 in
    (-2^23, 2^23]: ((x + 2^23 - 1) & (2^24 - 1)) - 2^23 + 1. Else the definition's two
    comparisons."""
    if small:
        return x.add_(_WRAP - 1).bitwise_and_(2 * _WRAP - 1).sub_(_WRAP - 1)
    return x.copy_(torch.where(x > _WRAP, x - 2 * _WRAP,
                               torch.where(x <= -_WRAP, x + 2 * _WRAP, x)))


def _bias(node, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    bias = channel_view(np.asarray(node.bias_mant, np.int64), node.type.shape) << node.bias_exp
    return torch.from_numpy(np.asarray(bias)).to(device, dtype)


class _Neuron:
    """The shared frame of the neuron rules: output spikes, state records, the state type,
    and the walk over batch chunks (whose state stays in cache) and steps (from the node's
    first valid step)."""

    def __init__(self, node, a: torch.Tensor, ctx: Context, names: tuple[str, ...],
                 dtype: torch.dtype | None = None, out_dtype: torch.dtype = torch.bool):
        self.node, self.a, self.ctx = node, a, ctx
        self.bound = _magnitude(a)
        self.small = self.bound <= _INT32_INPUT
        self.dtype = dtype or _state_dtype(self.bound)
        self.start = ctx.start.get(node.name, 0)
        self.out = _alloc(a, ctx.timesteps, out_dtype, zero_until=self.start)
        self.rec = {n: _alloc(a, ctx.timesteps, self.dtype, zero_until=self.start)
                    for n in names} if ctx.records(node.name) else None
        self.bias = _bias(node, self.dtype, a.device)

    def chunks(self, *states: str
               ) -> Iterator[tuple[tuple, _Scratch, list[torch.Tensor], torch.Tensor]]:
        """(index into a step's [batch, ...], scratch buffers, zeroed states, the bias there)
        per chunk of at most _CHUNKS elements: whole samples, or a sample's slices along
        its outermost dimension in memory (image rows, channels last)."""
        a, batch, shape = self.a, self.a.shape[1], tuple(self.a.shape[2:])
        size = int(np.prod(shape, dtype=np.int64))
        most = _CHUNKS[a.device.type][1]
        if size <= most:
            per = max(1, most // max(1, size))
            where = [(slice(b0, b0 + per),) for b0 in range(0, batch, per)]
        else:
            d = max(range(len(shape)), key=lambda i: a.stride(2 + i))
            per = max(1, most // (size // shape[d]))
            where = [(b,) + (slice(None),) * d + (slice(r0, r0 + per),)
                     for b in range(batch) for r0 in range(0, shape[d], per)]
        bias = self.bias.expand(a.shape[1:])
        made: dict[tuple, tuple] = {}
        for idx in where:
            view = a[0][idx]
            if view.shape not in made:  # one set of buffers per chunk shape (two at most)
                first = torch.empty_like(view, dtype=self.dtype)
                made[view.shape] = (_Scratch(first), [first] + [torch.empty_like(first)
                                                                for _ in states[1:]])
            sc, kept = made[view.shape]
            for s in kept:
                s.zero_()
            yield idx, sc, list(kept), bias[idx]

    def steps(self, where: tuple, sc: _Scratch) -> Iterator[tuple[int, torch.Tensor]]:
        """(t, a << 6) per step: the synaptic input aligned to the state (in sc.i0)."""
        a = self.a
        for t in range(self.start, self.ctx.timesteps):
            at = a[(t if a.shape[0] > 1 else 0,) + where]
            yield t, torch.bitwise_left_shift(sc.i0.copy_(at) if at.dtype != self.dtype
                                              else at, _ACT, out=sc.i0)

    def finish(self) -> torch.Tensor:
        if self.rec is not None:
            self.ctx.states[self.node.name] = {n: host(r).astype(np.int64)
                                               for n, r in self.rec.items()}
        return self.out


def _fx_lif(node: FxLIF, xs, ctx: Context) -> torch.Tensor:
    n = _Neuron(node, xs[0], ctx, ("u", "v"))
    theta = node.vth << _VTH
    stateless_u = node.du == FORMAT.decay_max
    cannot_wrap = stateless_u and n.bound << _ACT < _WRAP
    for where, sc, (u, v), bias in n.chunks("u", "v"):
        for t, a in n.steps(where, sc):
            if stateless_u:
                u.copy_(a)
            else:
                _decay_(u, node.du + 1, sc).add_(a)
            if not cannot_wrap:
                _wrap24_(u, n.small)
            _decay_(v, node.dv, sc).add_(u).add_(bias).clamp_(-MAX24, MAX24)
            s = torch.gt(v, theta, out=sc.b1)
            if node.reset == "hard":  # v * !s: a multiply is faster than masked_fill_ here
                v.mul_(torch.logical_not(s, out=sc.b2))
            else:
                v.sub_(sc.i1.copy_(s).mul_(node.reset_sub))
            n.out[(t,) + where] = s
            if n.rec is not None:
                n.rec["u"][(t,) + where], n.rec["v"][(t,) + where] = u, v
    return n.finish()


def _fx_cuba_lif(node: FxCubaLIF, xs, ctx: Context) -> torch.Tensor:
    n = _Neuron(node, xs[0], ctx, ("u", "v"))
    theta, sub, reset = node.vth << _VTH, node.reset_sub, node.reset
    for where, sc, (u, v), bias in n.chunks("u", "v"):
        for t, a in n.steps(where, sc):
            _wrap24_(_decay_(u, node.du + 1, sc).add_(a), n.small)
            r = v > theta
            if reset == "zero":
                v.masked_fill_(r, 0)
            h = _decay_(v, node.dv, sc).add_(u).add_(bias).clamp_(-MAX24, MAX24)
            if reset == "subtract":
                h = torch.where(r, h - sub, h).clamp_(-MAX24, MAX24)
            elif reset == "zero_all":
                h = h.masked_fill(r, 0)
            s = h > theta
            if node.reset_delay or reset == "none":
                v.copy_(h)
            elif reset == "subtract":
                v.copy_((h - (s.to(n.dtype) - r.to(n.dtype)) * sub).clamp_(-MAX24, MAX24))
            else:  # h * (1 - s + r): 0 where s and not r, 2h where r and not s
                v.copy_((h * (1 - s.to(n.dtype) + r.to(n.dtype))).clamp_(-MAX24, MAX24))
            n.out[(t,) + where] = s
            if n.rec is not None:
                n.rec["u"][(t,) + where], n.rec["v"][(t,) + where] = u, v
    return n.finish()


def _fx_clif(node: FxCLIF, xs, ctx: Context) -> torch.Tensor:
    # int64: the index multiplies |H| < 2^23 by sig_mult < 2^40
    n = _Neuron(node, xs[0], ctx, ("v", "m"), dtype=torch.int64)
    theta = node.vth << _VTH
    centre, last_sig = len(node.sig_lut) // 2, len(node.sig_lut) - 1
    last_reset = len(node.reset_lut) - 1
    half = 1 << (node.sig_shift - 1)
    sig_lut = torch.from_numpy(node.sig_lut.astype(np.int64)).to(n.a.device)
    reset_lut = torch.from_numpy(node.reset_lut.astype(np.int64)).to(n.a.device)
    for where, sc, (v, m), bias in n.chunks("v", "m"):
        for t, a in n.steps(where, sc):
            h = _decay_(v, node.dv, sc).add_(_wrap24_(a, n.small)).add_(bias)
            h.clamp_(-MAX24, MAX24)  # h lives in v's buffer until v's update below
            s = torch.gt(h, theta, out=sc.b1)
            idx = torch.mul(h, node.sig_mult, out=sc.i1).add_(half)
            idx.bitwise_right_shift_(node.sig_shift).add_(centre).clamp_(0, last_sig)
            spike = sc.i2.copy_(s)
            m.mul_(torch.take(sig_lut, idx, out=sc.i3)).bitwise_right_shift_(_FRAC)
            m.add_(torch.bitwise_left_shift(spike, _FRAC, out=sc.i1))
            idx = torch.bitwise_right_shift(m, node.m_shift, out=sc.i1).clamp_(max=last_reset)
            lut = torch.take(reset_lut, idx, out=sc.i3).add_(node.reset_sub)
            v.sub_(lut.mul_(spike)).clamp_(-MAX24, MAX24)
            n.out[(t,) + where] = s
            if n.rec is not None:
                n.rec["v"][(t,) + where], n.rec["m"][(t,) + where] = v, m
    return n.finish()


def _fx_readout(node: FxReadout, xs, ctx: Context) -> torch.Tensor:
    n = _Neuron(node, xs[0], ctx, (), out_dtype=torch.int64)
    for where, sc, (v,), bias in n.chunks("v"):
        for t, a in n.steps(where, sc):
            _decay_(v, node.dv, sc).add_(_wrap24_(a, n.small)).add_(bias).clamp_(-MAX24, MAX24)
            n.out[(t,) + where] = v
    out = host(n.out)
    ctx.readout[node.name] = readout_value(node, out[ctx.final_step(node.name)],
                                           ctx.window or ctx.timesteps)
    if ctx.records(node.name):
        ctx.states[node.name] = {"v": out}
    return n.out


#: The integer engine's rules: the fixed-point node types (and Add, which sums synaptic
#: inputs), each checked against the format first as fixed_ops' rules are.
INT_RULES = {Add: _add, **{t: _checked(rule) for t, rule in {
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
}.items()}}
