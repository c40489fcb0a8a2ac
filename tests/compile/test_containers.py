"""Containers are traced through, never refused as leaves (issue 12, item 3).

The CLIF authors' ResNet and most public ResNet code write the identity shortcut as
`self.shortcut = nn.Sequential()` and test `len(self.shortcut)`; models iterate
`nn.ModuleList`s and wrap modules in their own parameter-free classes. Each model here must
trace to a graph that spikes exactly like torch at every neuron layer and step (the
independent recorder of conftest.py), on digits test images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn

from snnc.backends.refsim import simulate
from snnc.frontends.torch import ConversionError, trace_model

T = 3


def bn(c: int, seed: int) -> nn.BatchNorm2d:
    rng = np.random.default_rng(seed)
    m = layer.BatchNorm2d(c)
    with torch.no_grad():
        m.running_mean.copy_(torch.as_tensor(rng.normal(0, 0.3, c)))
        m.running_var.copy_(torch.as_tensor(rng.uniform(0.3, 2.0, c)))
        m.weight.copy_(torch.as_tensor(rng.uniform(0.5, 1.5, c)))
        m.bias.copy_(torch.as_tensor(rng.normal(0.2, 0.2, c)))
    return m


class BasicBlock(nn.Module):
    """The CLIF authors' residual block: conv-bn-sn-conv-bn, + shortcut(x), sn; the
    shortcut is an empty nn.Sequential unless the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = layer.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = bn(c_out, 1)
        self.sn1 = neuron.LIFNode(tau=2.0)
        self.conv2 = layer.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = bn(c_out, 2)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(layer.Conv2d(c_in, c_out, 1, stride=stride),
                                          bn(c_out, 3))
        self.sn2 = neuron.ComplementaryLIFNode(tau=2.0)

    def forward(self, x):
        out = self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x)))))
        return self.sn2(out + self.shortcut(x))


class PreActBlock(nn.Module):
    """Pre-activation: bn-sn-conv-bn-sn-conv, + shortcut; the shortcut is applied only when
    it is not empty (`len(self.shortcut) > 0`), as in public PreAct-ResNet code."""

    def __init__(self, c: int):
        super().__init__()
        self.bn1 = bn(c, 4)
        self.sn1 = neuron.IFNode(v_reset=None)
        self.conv1 = layer.Conv2d(c, c, 3, padding=1)
        self.bn2 = bn(c, 5)
        self.sn2 = neuron.LIFNode(tau=1.5, decay_input=False)
        self.conv2 = layer.Conv2d(c, c, 3, padding=1)
        self.shortcut = nn.Sequential()

    def forward(self, x):
        shortcut = self.shortcut(x) if len(self.shortcut) > 0 else x
        return self.conv2(self.sn2(self.bn2(self.conv1(self.sn1(self.bn1(x)))))) + shortcut


class Chain(nn.Module):
    """A user's container class: no parameters of its own, forward only calls modules."""

    def __init__(self, *mods: nn.Module):
        super().__init__()
        self.mods = nn.ModuleList(mods)

    def forward(self, x):
        for m in self.mods:
            x = m(x)
        return x


class Flat(nn.Module):
    """A parameter-free leaf whose forward only calls a function the tracer understands."""

    def forward(self, x):
        return x.flatten(1)


class ResNetish(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1), bn(4, 0),
                                  neuron.IFNode(v_threshold=0.5))
        self.layer1 = nn.Sequential(BasicBlock(4, 4), PreActBlock(4), BasicBlock(4, 6, 2))
        self.blocks = nn.ModuleList([nn.Identity(), nn.Sequential(),
                                     layer.AvgPool2d(2), nn.Sequential()])
        self.head = Chain(Flat(), nn.Identity(), layer.Linear(6 * 2 * 2, 5))

    def forward(self, x):
        x = self.layer1(self.stem(x))
        for block in self.blocks:
            x = block(x)
        return self.head(x)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = ResNetish().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                m.weight.mul_(2.0)  # livelier spiking than the default init
    return net


def test_containers_trace_and_spike_like_torch(model, digits, record_spikes):
    x = digits[2][:16]
    result = trace_model(model, torch.zeros(2, 1, 8, 8), T, input_shape=(1, 8, 8))
    expected, torch_out = record_spikes(model, x, T, "s")
    # every neuron module of the model, block by block, and nothing else
    assert set(expected) == {"stem.2", "layer1.0.sn1", "layer1.0.sn2", "layer1.1.sn1",
                             "layer1.1.sn2", "layer1.2.sn1", "layer1.2.sn2"}
    sim = simulate(result.graph, x, T)
    assert set(sim.spikes) == set(expected)
    for name, spikes in expected.items():
        assert spikes.any() and not spikes.all(), f"{name} is silent or saturated"
        mismatches = int((sim.spikes[name] != spikes.astype(bool)).sum())
        assert mismatches == 0, f"{name}: {mismatches} mismatches"
    (readout,) = sim.readout.values()
    np.testing.assert_allclose(readout, torch_out, rtol=0, atol=1e-9)


def test_empty_sequential_shortcuts_are_identity_adds(model):
    graph = trace_model(model, torch.zeros(2, 1, 8, 8), T, input_shape=(1, 8, 8)).graph
    # identity shortcut: the block input (stem spikes) is added directly
    assert graph["layer1.0.add"].inputs == ("layer1.0.bn2", "stem.2")
    assert graph["layer1.1.add"].inputs[1] == "layer1.0.sn2"
    # a non-empty shortcut is converted (conv + bn), not skipped
    assert graph["layer1.2.shortcut.0"].op == "Conv2d"
    assert not any(n.startswith("blocks") for n in graph.nodes if n != "blocks.2")


@pytest.mark.parametrize("module, path, kind", [
    (nn.ReLU(), "2", "torch.nn.modules.activation.ReLU"),       # parameter-free leaf
    (nn.PReLU(), "2", "torch.nn.modules.activation.PReLU"),     # a leaf with a parameter
    (nn.Sequential(nn.Linear(3, 3), nn.Tanh()), "2.1", "torch.nn.modules.activation.Tanh"),
])
def test_unsupported_leaves_are_refused_on_one_line(module, path, kind):
    net = nn.Sequential(nn.Linear(3, 3), neuron.IFNode(), module)
    with pytest.raises(ConversionError) as err:
        trace_model(net, torch.zeros(2, 3), T)
    message = str(err.value)
    assert "\n" not in message
    assert f"module '{path}' ({kind}) is not supported" in message
    assert "Supported module types:" in message and "torch.nn.Conv2d" in message
