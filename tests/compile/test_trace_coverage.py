"""Every module and function the frontend lists as supported, traced and compared with torch.

The two models below cover what the example models do not: plain torch.nn layers in the
CLIF authors' single-step style, AdaptiveAvgPool2d, BatchNorm1d, tdBN-1d, both Dropouts,
Identity, and torch.flatten / view / reshape.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn

from snnc.backends.refsim import simulate
from snnc.frontends.torch import ConversionError, trace_model

T = 4


def randomize_bn(model):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.4)
    return model


class SingleStepTorch(nn.Module):
    """Plain torch.nn layers, one call per step, stateful CLIF/LIF neurons (CLIF authors)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding="same")
        self.bn = nn.BatchNorm2d(6)
        self.sn1 = neuron.ComplementaryLIFNode()
        self.drop = nn.Dropout(0.3)
        self.pool = nn.AdaptiveAvgPool2d((2, 2))
        self.fc1 = nn.Linear(24, 12)
        self.bn1d = nn.BatchNorm1d(12)
        self.sn2 = neuron.LIFNode(tau=3.0, v_reset=None, v_threshold=0.3)
        self.ident = nn.Identity()
        self.fc2 = nn.Linear(12, 5)

    def forward(self, x):
        y = self.pool(self.drop(self.sn1(self.bn(self.conv(x)))))
        y = torch.flatten(y, 1)
        y = self.sn2(self.bn1d(self.fc1(y)))
        return self.fc2(self.ident(y).view(y.shape[0], -1))


class MultiStepSJ(nn.Module):
    """spikingjelly multi-step layers, tdBN-1d, its Dropout, and a hand reshape."""

    def __init__(self):
        super().__init__()
        self.conv = layer.Conv2d(1, 4, 3, stride=2, step_mode="m")
        self.sn1 = neuron.IFNode(step_mode="m")
        self.drop = layer.Dropout(0.5, step_mode="m")
        self.fc1 = layer.Linear(36, 10, step_mode="m")
        self.tdbn = layer.ThresholdDependentBatchNorm1d(alpha=1.0, v_th=1.0, num_features=10)
        self.sn2 = neuron.LIFNode(step_mode="m", decay_input=False, v_threshold=0.3)
        self.fc2 = layer.Linear(10, 3, step_mode="m")

    def forward(self, x):  # x: [T, N, 1, 8, 8], one frame per step
        y = self.drop(self.sn1(self.conv(x)))
        y = y.reshape(y.shape[0], y.shape[1], -1)
        return self.fc2(self.sn2(self.tdbn(self.fc1(y)))).mean(0)


def record(model, x, step_mode):
    net = model.double().eval()
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, a, o, p=p: seen.setdefault(p, []).append(o))
             for p, m in net.named_modules() if isinstance(m, neuron.BaseNode)]
    xt = torch.as_tensor(x)
    with torch.no_grad():
        if step_mode == "single":
            for t in range(T):
                net(xt[t])
        else:
            net(xt)
    for h in hooks:
        h.remove()
    for m in net.modules():
        if isinstance(m, neuron.BaseNode):
            m.reset()
    return {p: (torch.stack(v) if step_mode == "single" else v[0]).numpy()
            for p, v in seen.items()}


@pytest.mark.parametrize("cls, step_mode, ops", [
    (SingleStepTorch, "single", {"AvgPool2d", "BatchNorm", "Flatten", "CLIF", "LIF"}),
    (MultiStepSJ, "multi", {"BatchNorm", "Flatten", "LIF", "Readout"}),
])
def test_supported_modules_trace_exactly(cls, step_mode, ops):
    torch.manual_seed(1)
    model = randomize_bn(cls()).eval()
    x = np.random.default_rng(0).random((T, 6, 1, 8, 8))  # a different frame every step
    result = trace_model(model, torch.zeros(T, 2, 1, 8, 8), T, input_shape=(1, 8, 8))
    assert result.step_mode == step_mode
    assert ops <= {n.op for n in result.graph}
    expected = record(model, x, step_mode)
    sim = simulate(result.graph, x, T)
    assert set(expected) == set(sim.spikes)
    for name, spikes in expected.items():
        assert np.array_equal(sim.spikes[name], spikes.astype(bool)), name
        assert 0 < spikes.mean() < 1, name


def test_adaptive_pool_must_reduce_to_a_fixed_window():
    model = nn.Sequential(nn.AdaptiveAvgPool2d(3), neuron.IFNode())
    with pytest.raises(ConversionError, match=r"pools 8x8 to 3x3, which is not a fixed window"):
        trace_model(model, torch.zeros(2, 1, 8, 8), T, input_shape=(1, 8, 8))


def test_batch_norm_without_running_stats_is_refused():
    model = nn.Sequential(nn.BatchNorm2d(1, track_running_stats=False), neuron.IFNode())
    with pytest.raises(ConversionError, match=r"module '0' \(BatchNorm2d\): has no running "
                                              r"statistics"):
        trace_model(model, torch.zeros(2, 1, 8, 8), T, input_shape=(1, 8, 8))
