"""STBP-tdBN with time in the LAST axis, as the public STBP reproductions write it, and the
snnc converters for its modules.

Those reproductions keep every tensor as `[N, C, H, W, T]`: the frame is repeated over time
with `x.unsqueeze(-1).repeat(1, 1, 1, 1, T)`, each layer loops over `x[..., t]` into a
zero buffer (`out[..., t] = layer(x[..., t])`), tdBN normalizes over every axis but the
channel, the LIF loops over the last axis, features are flattened with
`x.view(N, -1, T)`, and the answer is the spike count of the last layer, `sum(dim=2) / T`.

Two ways to hand such modules to snnc are shown:

- `SpikeLayer` (a layer, an optional tdBN and the LIF in one module, the LIF's loop written
  inline) gets a converter of its own: snnc never looks inside it.
- `TimeLastBN` and `TimeLastLIF` get converters, while `PerStep` (a plain layer applied to
  every step through a loop and a zero buffer) has none: snnc traces through it.

Import this module once, under one name (`stbp_timelast`): converters are registered for
these class objects (see `stbp_custom.py`).
"""

from __future__ import annotations

import torch
from torch import nn

from snnc.frontends.torch import ConvertContext, converter
from snnc.ir import LIF, BatchNorm

#: Width of the rectangular surrogate window around the threshold.
SURROGATE_WIDTH = 1.0


class _RectSpike(torch.autograd.Function):
    """Heaviside `u > V_th` forward; rectangular surrogate `1/a` on `|u - V_th| < a/2`."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, v_th: float) -> torch.Tensor:
        ctx.save_for_backward(u)
        ctx.v_th = v_th
        return (u > v_th).to(u.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (u,) = ctx.saved_tensors
        window = (u - ctx.v_th).abs() < SURROGATE_WIDTH / 2
        return grad * window.to(grad.dtype) / SURROGATE_WIDTH, None


def stbp_lif(x: torch.Tensor, tau: float, v_th: float) -> torch.Tensor:
    """STBP's LIF over the last axis: u[t] = tau * u[t-1] * (1 - o[t-1]) + x[..., t],
    o[t] = u[t] > v_th (Zheng et al. 2021, Eq. 2-3). State starts at zero on every call."""
    u = torch.zeros_like(x[..., 0])
    o = torch.zeros_like(u)
    out = torch.zeros_like(x)
    for t in range(x.shape[-1]):
        u = tau * u * (1.0 - o) + x[..., t]
        o = _RectSpike.apply(u, v_th)
        out[..., t] = o
    return out


class TimeLastBN(nn.BatchNorm2d):
    """tdBN over `[N, C, H, W, T]` or `[N, C, T]`: statistics per channel over every other
    axis; output `alpha * Vth * (x - mean) / sqrt(var + eps) * weight + bias`. `alpha` and
    `Vth` are training configuration, kept out of the state_dict."""

    def __init__(self, num_features: int, alpha: float = 1.0, Vth: float = 0.5,
                 eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.alpha = alpha
        self.Vth = Vth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [d for d in range(x.dim()) if d != 1]
        if self.training:
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, unbiased=False)
            count = x.numel() // x.size(1)
            with torch.no_grad():
                unbiased = var * count / max(count - 1, 1)
                self.running_mean.mul_(1.0 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1.0 - self.momentum).add_(self.momentum * unbiased)
                self.num_batches_tracked.add_(1)
        else:
            mean, var = self.running_mean, self.running_var
        shape = (1, -1) + (1,) * (x.dim() - 2)
        x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return self.alpha * self.Vth * x_hat * self.weight.view(shape) + self.bias.view(shape)


class TimeLastLIF(nn.Module):
    """STBP's LIF as a module: spikes `[N, ..., T]` for currents `[N, ..., T]`."""

    def __init__(self, tau: float = 0.5, V_th: float = 0.5) -> None:
        super().__init__()
        self.tau = tau
        self.V_th = V_th

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return stbp_lif(x, self.tau, self.V_th)


class PerStep(nn.Module):
    """Apply a frame layer to every step of `[N, ..., T]`, collected in a zero buffer."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[-1]
        out = torch.zeros(self.layer(x[..., 0]).shape + (steps,), dtype=x.dtype)
        for t in range(steps):
            out[..., t] = self.layer(x[..., t])
        return out


class SpikeLayer(nn.Module):
    """A layer, an optional tdBN and STBP's LIF, all over `[N, ..., T]`, in one module."""

    def __init__(self, layer: nn.Module, bn: nn.Module | None = None, tau: float = 0.5,
                 v_th: float = 0.5) -> None:
        super().__init__()
        self.layer = layer
        self.bn = bn
        self.tau = tau
        self.v_th = v_th

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.stack([self.layer(x[..., t]) for t in range(x.shape[-1])], dim=-1)
        if self.bn is not None:
            y = self.bn(y)
        return stbp_lif(y, self.tau, self.v_th)


@converter(TimeLastBN)
def convert_time_last_bn(ctx: ConvertContext, m: TimeLastBN, x: str) -> str:
    """tdBN at inference is a BatchNorm node whose weight carries `alpha * Vth`."""
    return ctx.emit(BatchNorm(
        name=ctx.name, inputs=(x,),
        mean=ctx.array(m.running_mean, "running_mean"),
        var=ctx.array(m.running_var, "running_var"),
        weight=m.alpha * m.Vth * ctx.array(m.weight, "weight"),
        bias=ctx.array(m.bias, "bias"),
        eps=float(m.eps)))


def _lif(ctx: ConvertContext, x: str, tau: object, v_th: object) -> str:
    """STBP's LIF is the IR's LIF with decay = tau, strict `>`, hard reset to 0."""
    return ctx.emit(LIF(name=ctx.name, inputs=(x,), decay=ctx.scalar(tau, "tau"),
                        threshold=ctx.scalar(v_th, "V_th"), compare=">", reset="hard"))


@converter(TimeLastLIF)
def convert_time_last_lif(ctx: ConvertContext, m: TimeLastLIF, x: str) -> str:
    return _lif(ctx, x, m.tau, m.V_th)


@converter(SpikeLayer)
def convert_spike_layer(ctx: ConvertContext, m: SpikeLayer, x: str) -> str:
    """The layer (any module snnc converts), the tdBN if any, then the LIF."""
    y = ctx.convert(m.layer, x, ctx.child_name("layer"))
    if m.bn is not None:
        y = ctx.convert(m.bn, y, ctx.child_name("bn"))
    return _lif(ctx, y, m.tau, m.v_th)


class STBPTimeLastNet(nn.Module):
    """conv-tdBN-LIF, pool-LIF, conv-tdBN-LIF, then a spiking linear layer whose spike
    count is the answer; takes images `[N, 1, 8, 8]` and keeps time last inside."""

    def __init__(self, timesteps: int = 4, tau: float = 0.5, v_th: float = 0.5) -> None:
        super().__init__()
        self.timesteps = timesteps
        self.conv1 = SpikeLayer(nn.Conv2d(1, 16, 3, padding=1), TimeLastBN(16, Vth=v_th),
                                tau=tau, v_th=v_th)
        self.pool1 = SpikeLayer(nn.AvgPool2d(2), tau=tau, v_th=v_th)
        self.conv2 = PerStep(nn.Conv2d(16, 32, 3, padding=1))
        self.bn2 = TimeLastBN(32, Vth=v_th)
        self.lif2 = TimeLastLIF(tau=tau, V_th=v_th)
        self.fc = SpikeLayer(nn.Linear(32 * 4 * 4, 10), TimeLastBN(10, Vth=v_th),
                             tau=tau, v_th=v_th)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spike counts over T, divided by T: `[N, 10]`."""
        x = x.unsqueeze(-1).repeat(1, 1, 1, 1, self.timesteps)
        x = self.pool1(self.conv1(x))
        x = self.lif2(self.bn2(self.conv2(x)))
        x = x.view(x.shape[0], -1, x.shape[4])
        x = self.fc(x)
        return torch.sum(x, dim=2) / self.timesteps


def stbp_timelast_net(timesteps: int = 4) -> STBPTimeLastNet:
    """The time-last STBP network (tau = 0.5, V_th = 0.5)."""
    return STBPTimeLastNet(timesteps=timesteps)
