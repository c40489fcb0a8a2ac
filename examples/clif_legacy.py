"""A CLIF ResNet written for the legacy spikingjelly API (`spikingjelly.clock_driven`, releases
0.0.0.0.12 to 0.0.0.0.14), the way the CLIF authors (Huang et al. 2024) wrote theirs:

- their neuron as a user subclass of `clock_driven.neuron.LIFNode` that overrides
  `neuronal_charge` and `neuronal_reset` and calls `super().__init__(tau, decay_input,
  v_threshold, v_reset, surrogate_function, detach_reset, cupy_fp32_inference)` positionally;
- pre-activation blocks (BN, neuron, conv) with the identity shortcut as an empty
  `nn.Sequential()` and a 1x1 convolution where the shape changes;
- `clock_driven.layer.Dropout` inside the blocks, plain `torch.nn` layers elsewhere;
- single-step: `forward` is one time step of `[N, 1, 8, 8]`, the caller loops T times and
  averages, and `functional.reset_net` clears the state between samples.

spikingjelly 2.0 has no `clock_driven`, so this file runs in the legacy environment
(`.venv-legacy`), where `snnc compile` moves by itself (README, "Legacy spikingjelly"). The
`@converter` below teaches snnc the neuron: without it, snnc refuses the class ("subclasses
LIFNode and overrides neuronal_charge") rather than compile it as a plain LIF.

Import this module once, under one name (`clif_legacy`): the converter is registered for
these class objects.
"""

from __future__ import annotations

import torch
from spikingjelly.clock_driven import functional, layer, neuron, surrogate
from torch import nn

from snnc.frontends.torch import ConvertContext, converter
from snnc.ir import CLIF


class ComplementaryLIFNeuron(neuron.LIFNode):
    """CLIF (Huang et al. 2024) on the legacy LIFNode, with its complementary potential m:

        H[t] = (1 - 1/tau) V[t-1] + X[t]          LIFNode's charge (decay_input=False, soft)
        S[t] = H[t] >= v_threshold                 LIFNode's fire
        M[t] = M[t-1] sigmoid(H[t] / tau) + S[t]
        V[t] = H[t] - S[t] (v_threshold + sigmoid(M[t]))
    """

    def __init__(self, tau: float = 2.0, decay_input: bool = False, v_threshold: float = 1.0,
                 v_reset: float | None = None,
                 surrogate_function=None, detach_reset: bool = False,
                 cupy_fp32_inference: bool = False) -> None:
        if surrogate_function is None:  # one surrogate module per neuron, not one shared
            surrogate_function = surrogate.ATan()
        super().__init__(tau, decay_input, v_threshold, v_reset, surrogate_function,
                         detach_reset, cupy_fp32_inference)
        self.register_memory("m", 0.0)

    def neuronal_charge(self, x: torch.Tensor) -> None:
        super().neuronal_charge(x)
        self.m = self.m * torch.sigmoid(self.v / self.tau)

    def neuronal_reset(self, spike: torch.Tensor) -> None:
        spike_d = spike.detach() if self.detach_reset else spike
        self.m = self.m + spike_d
        self.v = self.v - spike_d * (self.v_threshold + torch.sigmoid(self.m))


@converter(ComplementaryLIFNeuron)
def convert_clif(ctx: ConvertContext, m: ComplementaryLIFNeuron, x: str) -> str:
    """The IR's CLIF node is these equations (docs/semantics.md §1, CLIF), for the
    configuration the class is written for: no input decay, soft reset."""
    if m.decay_input or m.v_reset is not None:
        raise ctx.fail(m, f"decay_input={m.decay_input}, v_reset={m.v_reset!r}: CLIF charges "
                          "without input decay and resets softly; accepted: "
                          "decay_input=False, v_reset=None")
    return ctx.emit(CLIF(name=ctx.name, inputs=(x,), tau=ctx.scalar(m.tau, "tau"),
                         threshold=ctx.scalar(m.v_threshold, "v_threshold"), compare=">="))


class PreActBlock(nn.Module):
    """BN-neuron-conv twice; the shortcut takes the block's first spikes (identity as an
    empty `nn.Sequential()`, or a 1x1 convolution when stride or width change)."""

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float,
                 **neuron_kwargs) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = ComplementaryLIFNeuron(**neuron_kwargs)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = ComplementaryLIFNeuron(**neuron_kwargs)
        self.dropout = layer.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1)
        if stride != 1 or in_channels != self.expansion * out_channels:
            self.shortcut = nn.Conv2d(in_channels, self.expansion * out_channels, 1,
                                      stride=stride)
        else:
            self.shortcut = nn.Sequential()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(x))
        out = self.conv1(x)
        out = self.conv2(self.dropout(self.relu2(self.bn2(out))))
        return out + self.shortcut(x)


class CLIFLegacyResNet(nn.Module):
    """Stem conv (16), a 16-channel block with an identity shortcut, a 32-channel block at
    stride 2 with a 1x1 shortcut, BN-neuron, global average pool, linear. One call is one
    time step."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.1, tau: float = 2.0) -> None:
        super().__init__()
        kwargs = {"tau": tau}
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.layer1 = PreActBlock(16, 16, 1, dropout, **kwargs)
        self.layer2 = PreActBlock(16, 32, 2, dropout, **kwargs)
        self.bn = nn.BatchNorm2d(32)
        self.relu = ComplementaryLIFNeuron(**kwargs)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer2(self.layer1(self.conv1(x)))
        out = self.pool(self.relu(self.bn(out)))
        return self.fc(out.view(out.size(0), -1))


def clif_legacy_resnet(timesteps: int = 4) -> CLIFLegacyResNet:
    """The example's factory (`examples/clif_legacy.py:clif_legacy_resnet`). The model is
    single-step, so `timesteps` only says how it is run (see `run`)."""
    del timesteps
    return CLIFLegacyResNet()


def run(model: nn.Module, x: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Time-averaged class scores `[N, 10]` for images `x` `[N, 1, 8, 8]`: `timesteps`
    single-step calls on the same image, the state reset before and after."""
    functional.reset_net(model)
    try:
        return torch.stack([model(x) for _ in range(timesteps)]).mean(0)
    finally:
        functional.reset_net(model)


#: Registry, as `models.MODELS`: model name -> (factory, how to run it).
MODELS = {"clif_legacy": (clif_legacy_resnet, run)}
