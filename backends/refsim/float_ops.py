"""Float semantics of every node type: a dispatch table from node type to a rule.

A rule maps the node's input values to its output value. Values are arrays shaped
`[T or 1, batch, *shape]`: a leading time axis of length 1 means "the same at every step"
(direct encoding), so stateless nodes on a constant input are computed once. Neuron rules loop
over time; everything else acts on all steps at once, which is exact here because the graph
is feed-forward with zero delay (the trained model's timing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snnc.backends.refsim import kernels
from snnc.ir import (
    CLIF,
    LIF,
    Add,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    CubaLIF,
    Dense,
    Flatten,
    FxReadout,
    Input,
    Node,
    Readout,
)
from snnc.ir.node import channel_view


@dataclass
class Context:
    """What rules may read and write besides their inputs."""

    timesteps: int            # steps simulated (T, or T + latency with hardware timing)
    dtype: np.dtype
    record_states: bool | frozenset[str]  # every neuron's, or those of the named ones
    feeds: dict[str, np.ndarray]
    states: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    readout: dict[str, np.ndarray] = field(default_factory=dict)
    start: dict[str, int] = field(default_factory=dict)  # first valid step per node
    int_conv2d: Callable | None = None  # the integer convolution kernel (engine="torch")
    window: int | None = None  # T, when hardware timing runs longer than T
    device: Any = None  # the int engine's torch device

    def records(self, name: str) -> bool:
        """Whether node `name`'s states are recorded."""
        if isinstance(self.record_states, frozenset):
            return name in self.record_states
        return bool(self.record_states)

    def final_step(self, name: str) -> int:
        """The step whose state is the answer: the last of the node's T valid steps."""
        if self.window is None:
            return self.timesteps - 1
        return self.start.get(name, 0) + self.window - 1


Rule = Callable[[Node, list[np.ndarray], Context], np.ndarray]


def readout_value(node: Readout | FxReadout, v_final: np.ndarray, timesteps: int
                  ) -> np.ndarray:
    """A readout's answer from its v at the last of its T valid steps: v / scale for a
    fixed-point readout (the float Readout's units), then divided by T if it averages
    (`mean`). The one definition, used by both rules and by backends' records
    (tools/check.windows)."""
    final = v_final / node.scale if isinstance(node, FxReadout) else v_final
    return final / timesteps if node.mean else final


def _per_sample(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """Apply a `[N, ...]` kernel to a `[T, B, ...]` value by merging the two leading axes."""
    t, b = x.shape[:2]
    y = fn(x.reshape((t * b,) + x.shape[2:]))
    return y.reshape((t, b) + y.shape[1:])


def _input(node: Input, xs: list[np.ndarray], ctx: Context) -> np.ndarray:
    return ctx.feeds[node.name]


def _conv2d(node: Conv2d, xs: list[np.ndarray], ctx: Context) -> np.ndarray:
    w = node.weight.astype(ctx.dtype)
    y = _per_sample(lambda v: kernels.conv2d(v, w, node.stride, node.padding), xs[0])
    if node.bias is not None:
        y = y + node.bias.astype(ctx.dtype).reshape(-1, 1, 1)
    return y


def _dense(node: Dense, xs: list[np.ndarray], ctx: Context) -> np.ndarray:
    x = xs[0]
    y = x.reshape(x.shape[:2] + (node.weight.shape[1],)) @ node.weight.astype(ctx.dtype).T
    if node.bias is not None:
        y = y + node.bias.astype(ctx.dtype)
    return y


def _batch_norm(node: BatchNorm, xs: list[np.ndarray], ctx: Context) -> np.ndarray:
    shape = node.type.shape
    mean, var, w, b = (channel_view(getattr(node, f).astype(ctx.dtype), shape)
                       for f in ("mean", "var", "weight", "bias"))
    return (xs[0] - mean) / np.sqrt(var + node.eps) * w + b


def _avg_pool2d(node: AvgPool2d, xs: list[np.ndarray], ctx: Context) -> np.ndarray:
    return _per_sample(
        lambda v: kernels.avg_pool2d(v, node.kernel, node.stride, node.padding), xs[0])


def _flatten(node: Flatten, xs: list[np.ndarray], ctx: Context) -> np.ndarray:
    x = xs[0]
    return x.reshape(x.shape[:2] + (int(np.prod(x.shape[2:])),))  # an empty batch too


def _add(node: Add, xs: list[np.ndarray], ctx: Context) -> np.ndarray:
    total = xs[0]  # integer inputs stay integer: the fixed-point graphs sum synaptic inputs
    for x in xs[1:]:
        total = total + x
    return total


def _steps(x: np.ndarray, ctx: Context, node: Node):
    """Yield the input at each step from the node's first valid step, repeating a
    time-constant value. Before that step the node does not update (hardware timing)."""
    for t in range(ctx.start.get(node.name, 0), ctx.timesteps):
        yield t, x[t if x.shape[0] > 1 else 0]


def _recorder(node: Node, x: np.ndarray, ctx: Context, names: tuple[str, ...], dtype=None):
    if not ctx.records(node.name):
        return None
    shape = (ctx.timesteps,) + x.shape[1:]
    rec = {n: np.zeros(shape, dtype or ctx.dtype) for n in names}
    ctx.states[node.name] = rec
    return rec


def _lif(node: LIF, xs: list[np.ndarray], ctx: Context) -> np.ndarray:
    x = xs[0]
    shape = node.type.shape
    th = channel_view(np.asarray(node.threshold, ctx.dtype), shape)
    rest = node.v_reset if node.reset == "hard" else 0.0
    fires = np.greater if node.compare == ">" else np.greater_equal
    out = np.zeros((ctx.timesteps,) + x.shape[1:], ctx.dtype)
    rec = _recorder(node, x, ctx, ("v",))
    v = np.full(x.shape[1:], rest, ctx.dtype)
    for t, xt in _steps(x, ctx, node):
        h = rest + node.decay * (v - rest) + node.gain * xt
        s = fires(h, th)
        v = np.where(s, node.v_reset, h) if node.reset == "hard" else h - s * th
        out[t] = s
        if rec is not None:
            rec["v"][t] = v
    return out


def _cuba_lif(node: CubaLIF, xs: list[np.ndarray], ctx: Context) -> np.ndarray:
    """snnTorch's operations in its order (Leaky/Synaptic.forward, snnc/ir/neuron.py)."""
    x = xs[0]
    th = channel_view(np.asarray(node.threshold, ctx.dtype), node.type.shape)
    fires = np.greater if node.compare == ">" else np.greater_equal
    beta, alpha, reset = node.decay, node.current_decay, node.reset
    out = np.zeros((ctx.timesteps,) + x.shape[1:], ctx.dtype)
    rec = _recorder(node, x, ctx, ("v", "i"))
    v = np.zeros(x.shape[1:], ctx.dtype)
    i = np.zeros_like(v)
    for t, xt in _steps(x, ctx, node):
        i = alpha * i + xt
        r = fires(v, th).astype(ctx.dtype)
        if reset == "subtract":
            h = beta * v + i - r * th
        elif reset == "zero":
            h = beta * ((1 - r) * v) + i
        elif reset == "zero_all":
            h = beta * v + i
            h = h - h * r
        else:
            h = beta * v + i
        s = fires(h, th).astype(ctx.dtype)
        if node.reset_delay or reset == "none":
            v = h
        elif reset == "subtract":
            v = h - (s - r) * th
        else:
            v = h - (s - r) * h
        out[t] = s
        if rec is not None:
            rec["v"][t], rec["i"][t] = v, i
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(-z) -> inf for very negative z: sigmoid is 0 there
        return 1.0 / (1.0 + np.exp(-z))


def _clif(node: CLIF, xs: list[np.ndarray], ctx: Context) -> np.ndarray:
    x = xs[0]
    fires = np.greater if node.compare == ">" else np.greater_equal
    out = np.zeros((ctx.timesteps,) + x.shape[1:], ctx.dtype)
    rec = _recorder(node, x, ctx, ("v", "m"))
    v = np.zeros(x.shape[1:], ctx.dtype)
    m = np.zeros_like(v)
    for t, xt in _steps(x, ctx, node):
        h = node.decay * v + xt
        s = fires(h, node.threshold).astype(ctx.dtype)
        m = m * _sigmoid(h / node.tau) + s
        v = h - s * (node.threshold + _sigmoid(m))
        out[t] = s
        if rec is not None:
            rec["v"][t] = v
            rec["m"][t] = m
    return out


def _readout(node: Readout, xs: list[np.ndarray], ctx: Context) -> np.ndarray:
    x = xs[0]
    out = np.zeros((ctx.timesteps,) + x.shape[1:], ctx.dtype)
    v = np.zeros(x.shape[1:], ctx.dtype)
    for t, xt in _steps(x, ctx, node):
        v = node.decay * v + xt
        out[t] = v
    ctx.readout[node.name] = readout_value(node, out[ctx.final_step(node.name)],
                                           ctx.window or ctx.timesteps)
    if ctx.records(node.name):
        ctx.states[node.name] = {"v": out}
    return out


FLOAT_RULES: dict[type[Node], Rule] = {
    Input: _input,
    Conv2d: _conv2d,
    Dense: _dense,
    BatchNorm: _batch_norm,
    AvgPool2d: _avg_pool2d,
    Flatten: _flatten,
    Add: _add,
    LIF: _lif,
    CLIF: _clif,
    CubaLIF: _cuba_lif,
    Readout: _readout,
}
