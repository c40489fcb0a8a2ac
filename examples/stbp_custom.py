"""A user's own STBP-tdBN modules (Zheng et al. 2021) and the snnc converters for them.

This is how the public STBP reproductions are written: plain `nn.Module`s, tdBN whose
`alpha` and `Vth` live in Python attributes (not in the state_dict), a hand-written LIF with
a rectangular surrogate gradient, and convolutions applied to time and batch merged by hand.
snnc has no built-in converter for these classes; the two `@converter` functions below show
how a user teaches it (`docs/semantics.md` sections 1-2 give the equations).

Import this module once, under one name (`stbp_custom`): the converters are registered
for these class objects, and a second copy of the module would define different classes.
"""

from __future__ import annotations

import torch
from torch import nn

from snnc.frontends.torch import ConvertContext, converter
from snnc.ir import LIF, BatchNorm

#: Width of the rectangular surrogate window around the threshold.
SURROGATE_WIDTH = 1.0


class TdBatchNorm(nn.BatchNorm2d):
    """Threshold-dependent batch norm over `[T, N, C, H, W]` (Zheng et al. 2021, Eq. 5-6).

    Statistics are taken per channel over T, N, H and W. The output is
    `alpha * Vth * (x - mean) / sqrt(var + eps) * weight + bias`; `alpha` (1 for serial
    layers, 1/sqrt(2) for branches feeding a residual add) and `Vth` (the next neuron's
    threshold) are training configuration, kept out of the state_dict.
    """

    def __init__(self, num_features: int, alpha: float = 1.0, Vth: float = 0.5,
                 eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.alpha = alpha
        self.Vth = Vth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize `x` `[T, N, C, H, W]` with batch statistics (training) or running ones."""
        if x.dim() != 5:
            raise ValueError(f"TdBatchNorm expects [T, N, C, H, W], got shape {tuple(x.shape)}")
        dims = (0, 1, 3, 4)
        if self.training:
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, unbiased=False)
            count = x.numel() // x.size(2)
            with torch.no_grad():
                unbiased = var * count / max(count - 1, 1)
                self.running_mean.mul_(1.0 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1.0 - self.momentum).add_(self.momentum * unbiased)
                self.num_batches_tracked.add_(1)
        else:
            mean, var = self.running_mean, self.running_var
        shape = (1, 1, -1, 1, 1)
        x_hat = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return self.alpha * self.Vth * x_hat * self.weight.view(shape) + self.bias.view(shape)


class _RectSpike(torch.autograd.Function):
    """Heaviside step `u > V_th` forward; rectangular surrogate `1/a` on `|u - V_th| < a/2`."""

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


class STBPLIF(nn.Module):
    """STBP LIF over `[T, N, ...]` (Zheng et al. 2021, Eq. 2-3), hard reset to 0:

        u[t] = tau * u[t-1] * (1 - o[t-1]) + x[t];   o[t] = u[t] > V_th

    `tau` is the decay factor (not a time constant). State starts at zero on every call.
    """

    def __init__(self, tau: float = 0.5, V_th: float = 0.5) -> None:
        super().__init__()
        self.tau = tau
        self.V_th = V_th

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes `[T, N, ...]` for input currents `x` `[T, N, ...]`."""
        u = torch.zeros_like(x[0])
        o = torch.zeros_like(x[0])
        spikes = []
        for t in range(x.size(0)):
            u = self.tau * u * (1.0 - o) + x[t]
            o = _RectSpike.apply(u, self.V_th)
            spikes.append(o)
        return torch.stack(spikes)


@converter(TdBatchNorm)
def convert_td_batch_norm(ctx: ConvertContext, m: TdBatchNorm, x: str) -> str:
    """tdBN at inference is a BatchNorm node whose weight carries `alpha * Vth`."""
    return ctx.emit(BatchNorm(
        name=ctx.name, inputs=(x,),
        mean=ctx.array(m.running_mean, "running_mean"),
        var=ctx.array(m.running_var, "running_var"),
        weight=m.alpha * m.Vth * ctx.array(m.weight, "weight"),
        bias=ctx.array(m.bias, "bias"),
        eps=float(m.eps)))


@converter(STBPLIF)
def convert_stbp_lif(ctx: ConvertContext, m: STBPLIF, x: str) -> str:
    """STBP's LIF is the IR's LIF with decay = tau, strict `>`, hard reset to 0."""
    return ctx.emit(LIF(
        name=ctx.name, inputs=(x,),
        decay=ctx.scalar(m.tau, "tau"),
        threshold=ctx.scalar(m.V_th, "V_th"),
        compare=">", reset="hard", v_reset=0.0))


class STBPCustomNet(nn.Module):
    """Two conv-tdBN-LIF layers and a linear readout, run over T steps of the same image.

    Convolutions and the linear layer see time and batch merged by hand
    (`x.flatten(0, 1)` ... `.view(T, N, ...)`), as the STBP reproductions do.
    """

    def __init__(self, timesteps: int = 4, tau: float = 0.5, v_th: float = 0.5) -> None:
        super().__init__()
        self.timesteps = timesteps
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = TdBatchNorm(16, alpha=1.0, Vth=v_th)
        self.lif1 = STBPLIF(tau=tau, V_th=v_th)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.bn2 = TdBatchNorm(32, alpha=1.0, Vth=v_th)
        self.lif2 = STBPLIF(tau=tau, V_th=v_th)
        self.fc = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores `[N, 10]` (time average) for images `x` `[N, 1, 8, 8]`."""
        T, N = self.timesteps, x.size(0)
        x = x.unsqueeze(0).repeat(T, 1, 1, 1, 1)
        y = self.conv1(x.flatten(0, 1))
        y = y.view(T, N, *y.shape[1:])
        y = self.lif1(self.bn1(y))
        y = self.conv2(y.flatten(0, 1))
        y = y.view(T, N, *y.shape[1:])
        y = self.lif2(self.bn2(y))
        y = y.flatten(2)
        out = self.fc(y.flatten(0, 1)).view(T, N, -1)
        return out.mean(0)


def stbp_custom_net(timesteps: int = 4) -> STBPCustomNet:
    """The user-written STBP network (tau = 0.5, V_th = 0.5), multi-step only."""
    return STBPCustomNet(timesteps=timesteps)
