"""Threshold ties: spikingjelly fires on >=, the STBP LIF on >. Random inputs never land
exactly on a threshold, so these cases put them there (dyadic values, exact in float)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn

from snnc.backends.refsim import simulate
from snnc.frontends.torch import trace_model

T = 3


class OneNeuron(nn.Module):
    """x -> Linear(1, 1) with weight 1 -> neuron, multi-step, input repeated over T."""

    def __init__(self, sn: nn.Module):
        super().__init__()
        self.fc = layer.Linear(1, 1, bias=False, step_mode="m")
        with torch.no_grad():
            self.fc.weight.fill_(1.0)
        self.sn = sn

    def forward(self, x):
        return self.sn(self.fc(x.unsqueeze(0).repeat(T, 1, 1))).mean(0)


def spikes_of(sn: nn.Module, value: float, load_example=None) -> tuple[list, list]:
    model = OneNeuron(sn).eval()
    x = np.array([[value]])
    with torch.no_grad():
        sn_out = []
        hook = model.sn.register_forward_hook(lambda m, a, o: sn_out.append(o.clone()))
        model.double()(torch.as_tensor(x))
        hook.remove()
    graph = trace_model(model.float(), torch.zeros(2, 1), T, input_shape=(1,)).graph
    got = simulate(graph, x, T).spikes["sn"][:, 0, 0].astype(int).tolist()
    return sn_out[0][:, 0, 0].int().tolist(), got


@pytest.mark.parametrize("make, value, expected", [
    # IF, threshold 1, input exactly 1: fires every step (>=), hard or soft reset.
    (lambda: neuron.IFNode(v_threshold=1.0, v_reset=0.0, step_mode="m"), 1.0, [1, 1, 1]),
    (lambda: neuron.IFNode(v_threshold=1.0, v_reset=None, step_mode="m"), 1.0, [1, 1, 1]),
    # LIF decay_input, tau 2: h = x/2 = 0.5 = threshold at t0; after the reset again.
    (lambda: neuron.LIFNode(tau=2.0, v_threshold=0.5, step_mode="m"), 1.0, [1, 1, 1]),
    # LIF without decay_input, soft reset: h = 0.5 fires, v = 0 -> same again.
    (lambda: neuron.LIFNode(tau=2.0, decay_input=False, v_reset=None, v_threshold=0.5,
                            step_mode="m"), 0.5, [1, 1, 1]),
    # CLIF, threshold 1, input 1: H = 1 fires at t0; V = 1 - (1 + sigmoid(1)) < 0 after.
    (lambda: neuron.ComplementaryLIFNode(v_threshold=1.0, step_mode="m"), 1.0, [1, 0, 1]),
])
def test_spikingjelly_ties_fire(make, value, expected):
    torch_spikes, graph_spikes = spikes_of(make(), value)
    assert torch_spikes == expected
    assert graph_spikes == expected


def test_stbp_lif_ties_do_not_fire(load_example):
    stbp = load_example("stbp_custom")
    # u = 0.5*u*(1-o) + 0.25: 0.25, 0.375, 0.4375: never above V_th = 0.4375 at the tie step.
    torch_spikes, graph_spikes = spikes_of(stbp.STBPLIF(tau=0.5, V_th=0.4375), 0.25)
    assert torch_spikes == [0, 0, 0]
    assert graph_spikes == [0, 0, 0]
    torch_spikes, graph_spikes = spikes_of(stbp.STBPLIF(tau=0.5, V_th=0.375), 0.25)
    assert torch_spikes == graph_spikes == [0, 0, 1]  # 0.4375 > 0.375 at t2
