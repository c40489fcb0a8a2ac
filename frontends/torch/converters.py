"""Converters for the modules snnc understands out of the box: torch.nn, spikingjelly 2.0 (its
converters in `spikingjelly.py`) and legacy spikingjelly's `clock_driven` API (in
`spikingjelly_legacy.py`), both registered at the end of this file.

Each reads the module's attributes and parameters and emits IR nodes; `docs/semantics.md` gives
the equations each mapping preserves. Flatten, Identity and Dropout are layout modules: the
tracer handles them itself, because only it knows whether a tensor is `[N, ...]` or
`[T, N, ...]` (see `layout.py`).
"""

from __future__ import annotations

import logging

import numpy as np
from torch import nn

from snnc.frontends.torch.context import ConvertContext
from snnc.frontends.torch.registry import converter
from snnc.ir import AvgPool2d, BatchNorm, Conv2d, Dense, Flatten

log = logging.getLogger(__name__)


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


@converter(nn.Flatten, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
def layout_module(ctx: ConvertContext, module: nn.Module, x: str) -> str:
    """Reached only inside containers (the tracer handles these modules directly elsewhere)."""
    if isinstance(module, nn.Flatten):
        if (module.start_dim, module.end_dim) != (1, -1):
            raise ctx.fail(module, f"flattens dims {module.start_dim}..{module.end_dim} of a "
                                   "[T*N, ...] batch; only start_dim=1, end_dim=-1 is per sample")
        return ctx.emit(Flatten(name=ctx.name, inputs=(x,)))
    return x  # Identity, and Dropout at inference


@converter(nn.Conv2d)
def conv2d(ctx: ConvertContext, m: nn.Conv2d, x: str) -> str:
    if m.groups != 1 or _pair(m.dilation) != (1, 1):
        raise ctx.fail(m, f"groups={m.groups}, dilation={m.dilation}; snnc supports "
                          "groups=1, dilation=1")
    if m.padding_mode != "zeros":
        raise ctx.fail(m, f"padding_mode={m.padding_mode!r}; only 'zeros' is supported")
    padding = m.padding
    if isinstance(padding, str):
        kh, kw = _pair(m.kernel_size)
        if padding == "valid":
            padding = (0, 0)
        elif _pair(m.stride) == (1, 1) and kh % 2 and kw % 2:  # "same" with odd kernels
            padding = (kh // 2, kw // 2)
        else:
            raise ctx.fail(m, f"padding={padding!r} with an even kernel is asymmetric")
    return ctx.emit(Conv2d(name=ctx.name, inputs=(x,), weight=ctx.array(m.weight, "weight"),
                           bias=ctx.array(m.bias, "bias"), stride=_pair(m.stride),
                           padding=_pair(padding)))


@converter(nn.Linear)
def linear(ctx: ConvertContext, m: nn.Linear, x: str) -> str:
    return ctx.emit(Dense(name=ctx.name, inputs=(x,), weight=ctx.array(m.weight, "weight"),
                          bias=ctx.array(m.bias, "bias")))


@converter(nn.BatchNorm1d, nn.BatchNorm2d)
def batch_norm(ctx: ConvertContext, m: nn.modules.batchnorm._BatchNorm, x: str) -> str:
    """Inference batch norm with running statistics. spikingjelly's tdBN layers are this too:
    a BatchNorm over the merged T*N batch whose weight starts at alpha * v_th."""
    if not m.track_running_stats or m.running_mean is None:
        raise ctx.fail(m, "has no running statistics (track_running_stats=False), so its "
                          "inference output depends on the batch")
    c = m.num_features
    weight = ctx.array(m.weight, "weight") if m.affine else None
    bias = ctx.array(m.bias, "bias") if m.affine else None
    return ctx.emit(BatchNorm(
        name=ctx.name, inputs=(x,),
        mean=ctx.array(m.running_mean, "running_mean"),
        var=ctx.array(m.running_var, "running_var"),
        weight=weight if weight is not None else np.ones(c, np.float32),
        bias=bias if bias is not None else np.zeros(c, np.float32),
        eps=float(m.eps)))


@converter(nn.AvgPool2d)
def avg_pool2d(ctx: ConvertContext, m: nn.AvgPool2d, x: str) -> str:
    kernel = _pair(m.kernel_size)
    stride = _pair(m.stride if m.stride is not None else m.kernel_size)
    padding = _pair(m.padding)
    if m.ceil_mode or m.divisor_override is not None:
        raise ctx.fail(m, "ceil_mode=True or divisor_override is not supported")
    if padding != (0, 0) and not m.count_include_pad:
        raise ctx.fail(m, "count_include_pad=False with padding is not supported")
    return ctx.emit(AvgPool2d(name=ctx.name, inputs=(x,), kernel=kernel, stride=stride,
                              padding=padding))


@converter(nn.AdaptiveAvgPool2d)
def adaptive_avg_pool2d(ctx: ConvertContext, m: nn.AdaptiveAvgPool2d, x: str) -> str:
    _, h, w = ctx.shape(x)
    size = m.output_size if isinstance(m.output_size, tuple) else (m.output_size,) * 2
    oh, ow = (h if size[0] is None else size[0]), (w if size[1] is None else size[1])
    if h % oh or w % ow:
        raise ctx.fail(m, f"pools {h}x{w} to {oh}x{ow}, which is not a fixed window (the "
                          "input size must be a multiple of the output size)")
    k = (h // oh, w // ow)
    return ctx.emit(AvgPool2d(name=ctx.name, inputs=(x,), kernel=k, stride=k))


from snnc.frontends.torch import spikingjelly as _spikingjelly  # noqa: E402,F401 - registers it
from snnc.frontends.torch import spikingjelly_legacy as _legacy  # noqa: E402,F401 - the same
