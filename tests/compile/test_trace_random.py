"""Randomly generated spikingjelly models trace to graphs that spike exactly like torch
on digits test images.

Hypothesis draws widths, depths, kernel sizes, strides, residual and pre-activation blocks,
neuron types (LIF with every decay_input / reset combination, IF, CLIF), thresholds, time
constants, batch-norm statistics (negative scales included) and the model style.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spikingjelly.activation_based import layer, neuron
from torch import nn

from snnc.backends.refsim import simulate
from snnc.frontends.torch import trace_model

T = 3
SIZE = 8  # digits


@st.composite
def neuron_specs(draw):
    kind = draw(st.sampled_from(["lif", "if", "clif"]))
    th = draw(st.floats(0.2, 1.2))
    if kind == "clif":
        return ("clif", draw(st.floats(1.2, 4.0)), th)
    reset = draw(st.sampled_from([0.0, None, -0.2]))
    if kind == "if":
        return ("if", reset, th)
    return ("lif", reset, th, draw(st.floats(1.2, 4.0)), draw(st.booleans()))


def make_neuron(spec, mode):
    if spec[0] == "clif":
        return neuron.ComplementaryLIFNode(tau=spec[1], v_threshold=spec[2], step_mode=mode)
    if spec[0] == "if":
        return neuron.IFNode(v_reset=spec[1], v_threshold=spec[2], step_mode=mode)
    _, reset, th, tau, decay_input = spec
    return neuron.LIFNode(tau=tau, decay_input=decay_input, v_reset=reset, v_threshold=th,
                          step_mode=mode)


def make_bn(channels, mode, rng):
    bn = layer.BatchNorm2d(channels, step_mode=mode)
    with torch.no_grad():
        bn.running_mean.copy_(torch.as_tensor(rng.normal(0, 0.3, channels)))
        bn.running_var.copy_(torch.as_tensor(rng.uniform(0.2, 2.0, channels)))
        sign = np.where(rng.random(channels) < 0.25, -1.0, 1.0)  # some negative scales
        bn.weight.copy_(torch.as_tensor(sign * rng.uniform(0.3, 1.5, channels)))
        bn.bias.copy_(torch.as_tensor(rng.normal(0.2, 0.3, channels)))
    return bn


class Block(nn.Module):
    """conv-bn-neuron, or a residual block (plain or pre-activation)."""

    def __init__(self, kind, c_in, c_out, stride, neurons, mode, rng):
        super().__init__()
        self.kind = kind
        if kind == "plain":
            self.conv = layer.Conv2d(c_in, c_out, 3, stride=stride, padding=1, step_mode=mode)
            self.bn = make_bn(c_out, mode, rng)
            self.sn = make_neuron(neurons[0], mode)
        elif kind == "residual":  # conv-bn-sn-conv-bn (+x) -> sn
            self.conv1 = layer.Conv2d(c_in, c_in, 3, padding=1, step_mode=mode)
            self.bn1 = make_bn(c_in, mode, rng)
            self.sn1 = make_neuron(neurons[0], mode)
            self.conv2 = layer.Conv2d(c_in, c_in, 1, step_mode=mode)
            self.bn2 = make_bn(c_in, mode, rng)
            self.sn2 = make_neuron(neurons[1], mode)
        else:  # pre-activation: bn-sn-conv-bn-sn-conv, + x
            self.bn1 = make_bn(c_in, mode, rng)
            self.sn1 = make_neuron(neurons[0], mode)
            self.conv1 = layer.Conv2d(c_in, c_in, 3, padding=1, step_mode=mode)
            self.bn2 = make_bn(c_in, mode, rng)
            self.sn2 = make_neuron(neurons[1], mode)
            self.conv2 = layer.Conv2d(c_in, c_in, 3, padding=1, step_mode=mode)

    def forward(self, x):
        if self.kind == "plain":
            return self.sn(self.bn(self.conv(x)))
        if self.kind == "residual":
            return self.sn2(self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x))))) + x)
        return self.conv2(self.sn2(self.bn2(self.conv1(self.sn1(self.bn1(x)))))) + x


class RandomNet(nn.Module):
    def __init__(self, spec, mode, rng):
        super().__init__()
        self.mode = mode
        c_in, stem, blocks, head_neuron, pool, n_out = spec
        self.stem = layer.Conv2d(c_in, stem, 3, padding=1, step_mode=mode)
        self.stem_bn = make_bn(stem, mode, rng)
        self.stem_sn = make_neuron(head_neuron, mode)
        mods, c, size = [], stem, SIZE
        for kind, width, stride, neurons in blocks:
            out = width if kind == "plain" else c
            stride = stride if kind == "plain" else 1
            mods.append(Block(kind, c, out, stride, neurons, mode, rng))
            c, size = out, (size + 1) // stride if stride == 2 else size
        self.blocks = nn.Sequential(*mods)
        self.pool = layer.AvgPool2d(2, step_mode=mode) if pool and size % 2 == 0 else nn.Identity()
        size = size // 2 if pool and size % 2 == 0 else size
        self.flatten = layer.Flatten(step_mode=mode)
        self.fc = layer.Linear(c * size * size, n_out, step_mode=mode)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.Conv2d | nn.Linear):
                    m.weight.mul_(2.0)  # livelier spiking than the default init

    def forward(self, x):
        if self.mode == "m":
            x = x.unsqueeze(0).repeat(T, 1, 1, 1, 1)
        y = self.blocks(self.stem_sn(self.stem_bn(self.stem(x))))
        y = self.fc(self.flatten(self.pool(y)))
        return y.mean(0) if self.mode == "m" else y


block_specs = st.tuples(
    st.sampled_from(["plain", "residual", "preact"]),
    st.integers(2, 6),
    st.sampled_from([1, 2]),
    st.lists(neuron_specs(), min_size=2, max_size=2),
)
model_specs = st.tuples(
    st.just(1), st.integers(2, 6), st.lists(block_specs, min_size=1, max_size=3),
    neuron_specs(), st.booleans(), st.integers(2, 5),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=model_specs, mode=st.sampled_from(["m", "s"]), seed=st.integers(0, 2**16))
def test_random_models_spike_like_torch(spec, mode, seed, record_spikes, digits):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = RandomNet(spec, mode, rng).eval()
    x = digits[2][rng.choice(len(digits[2]), 8, replace=False)]  # 8 test digits
    result = trace_model(model, torch.zeros(2, spec[0], SIZE, SIZE), T,
                         input_shape=(spec[0], SIZE, SIZE))
    expected, torch_out = record_spikes(model, x, T, mode)
    sim = simulate(result.graph, x, T)
    assert set(sim.spikes) == set(expected)
    for name, spikes in expected.items():
        mismatches = int((sim.spikes[name] != spikes.astype(bool)).sum())
        assert mismatches == 0, f"{name}: {mismatches} mismatches"
    (readout,) = sim.readout.values()
    np.testing.assert_allclose(readout, torch_out, rtol=0, atol=1e-9)


def test_random_models_are_not_all_silent(record_spikes, digits):
    """Guard against a generator whose models never spike (which would make the test above
    vacuous): a fixed sample of them must fire at a moderate rate overall."""
    rates = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        spec = (1, 4, [("residual", 4, 1, [("lif", 0.0, 0.5, 2.0, False)] * 2),
                       ("plain", 5, 2, [("clif", 2.0, 0.8)] * 2)], ("if", None, 0.5), True, 3)
        model = RandomNet(spec, "m", rng).eval()
        spikes, _ = record_spikes(model, digits[2][:8], T, "m")
        rates += [s.mean() for s in spikes.values()]
    assert 0.05 < float(np.mean(rates)) < 0.95
