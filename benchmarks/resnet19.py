"""A ResNet-19 as in Zheng et al. 2021 (STBP-tdBN), with random weights, for benchmarks.

conv3x3(3->128) + 3 blocks of 128 + 3 blocks of 256 (stride 2) + 2 blocks of 512 (stride 2),
average pooling, fc 512->256, fc 256->10: about 12.7M parameters, 3x32x32 input.
Multi-step spikingjelly layers; tdBN-style batch norms with random statistics so that the
random network spikes at a moderate rate.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn

V_TH = 0.5


def _lif() -> neuron.LIFNode:
    return neuron.LIFNode(tau=2.0, decay_input=False, v_threshold=V_TH, step_mode="m")


def _bn(c: int, g: torch.Generator) -> layer.BatchNorm2d:
    bn = layer.BatchNorm2d(c, step_mode="m")
    with torch.no_grad():
        bn.running_mean.normal_(0.0, 0.1, generator=g)
        bn.running_var.uniform_(0.5, 1.5, generator=g)
        bn.weight.uniform_(0.5, 1.0, generator=g)
        bn.bias.normal_(0.25, 0.1, generator=g)
    return bn


class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, g: torch.Generator):
        super().__init__()
        self.conv1 = layer.Conv2d(c_in, c_out, 3, stride, 1, bias=False, step_mode="m")
        self.bn1 = _bn(c_out, g)
        self.sn1 = _lif()
        self.conv2 = layer.Conv2d(c_out, c_out, 3, 1, 1, bias=False, step_mode="m")
        self.bn2 = _bn(c_out, g)
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            layer.Conv2d(c_in, c_out, 1, stride, bias=False, step_mode="m"), _bn(c_out, g))
        self.sn2 = _lif()

    def forward(self, x):
        return self.sn2(self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x))))) +
                        self.shortcut(x))


class ResNet19(nn.Module):
    def __init__(self, timesteps: int = 4, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        self.timesteps = timesteps
        self.conv1 = layer.Conv2d(3, 128, 3, 1, 1, bias=False, step_mode="m")
        self.bn1 = _bn(128, g)
        self.sn1 = _lif()
        blocks, c = [], 128
        for c_out, n, stride in ((128, 3, 1), (256, 3, 2), (512, 2, 2)):
            for i in range(n):
                blocks.append(Block(c, c_out, stride if i == 0 else 1, g))
                c = c_out
        self.layers = nn.Sequential(*blocks)
        self.pool = layer.AdaptiveAvgPool2d((1, 1), step_mode="m")
        self.flatten = layer.Flatten(step_mode="m")
        self.fc1 = layer.Linear(512, 256, step_mode="m")
        self.sn_fc = _lif()
        self.fc2 = layer.Linear(256, 10, step_mode="m")

    def forward(self, x):
        x = x.unsqueeze(0).repeat(self.timesteps, 1, 1, 1, 1)
        x = self.layers(self.sn1(self.bn1(self.conv1(x))))
        return self.fc2(self.sn_fc(self.fc1(self.flatten(self.pool(x))))).mean(0)
