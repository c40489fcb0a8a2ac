"""spikingjelly's neurons beyond LIF/IF/CLIF (issue 12, items 4 and 7).

Every mapped class must spike exactly like torch (the trace check: float64, every layer and
step, independent forward hooks) on inputs that make it fire often; every refused class must
fail with one line naming the module path, its type, the reason and what is accepted. A PLIF
net compiled for loihi2 must run on Lava fixed_pt exactly as the reference simulator.
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from spikingjelly.activation_based import layer, neuron, surrogate
from torch import nn

from snnc.artifact import read_artifact
from snnc.backends.refsim import simulate
from snnc.frontends.torch import ConversionError, ConvertContext, trace_model
from snnc.frontends.torch.check import check_trace
from snnc.frontends.torch.registry import find_converter
from snnc.frontends.torch.spikingjelly import REFUSED
from snnc.ir import LIF
from snnc.tools.cli import cli

T = 5
F_IN, F_HID, F_OUT = 16, 12, 5
ROOT = Path(__file__).resolve().parents[2]
W_LEARNED = 0.83  # PLIF's w after "training": 1/tau = sigmoid(0.83), tau ~ 1.436 (init: w=0)


class Net(nn.Module):
    """Linear -> sn -> Linear -> LIF; multi-step nets take a sequence [T, N, 16]."""

    def __init__(self, sn: nn.Module, mode: str):
        super().__init__()
        torch.manual_seed(3)
        self.mode = mode
        self.fc1 = layer.Linear(F_IN, F_HID, step_mode=mode)
        self.sn = sn
        self.fc2 = layer.Linear(F_HID, F_OUT, step_mode=mode)
        self.out = neuron.LIFNode(tau=2.0, v_threshold=0.4, step_mode=mode)
        with torch.no_grad():
            self.fc1.weight.mul_(4.0)
            self.fc2.weight.mul_(3.0)

    def forward(self, x):
        y = self.out(self.fc2(self.sn(self.fc1(x))))
        return y.mean(0) if self.mode == "m" else y


def run_check(sn: nn.Module, mode: str):
    """Trace and check; returns (the neuron node, its firing rate, the trace check)."""
    model = Net(sn, mode)
    rng = np.random.default_rng(7)
    if mode == "m":
        result = trace_model(model, torch.zeros(T, 2, F_IN), T, input_layout="TN")
        x = rng.uniform(-0.5, 1.5, (T, 16, F_IN))
    else:
        result = trace_model(model, torch.zeros(2, F_IN), T)
        x = rng.uniform(-0.5, 1.5, (16, F_IN))
    report = check_trace(model, result, x, T)
    rate = float(simulate(result.graph, x, T).spikes["sn"].mean())
    return result.graph["sn"], rate, report


def assert_exact(sn: nn.Module, mode: str) -> LIF:
    node, rate, report = run_check(sn, mode)
    assert report.total_mismatches == 0, report.table()
    assert [a.name for a in report.layers] == ["sn", "out"]
    assert all(a.compared > 0 for a in report.layers)
    assert 0.15 < rate < 0.85, rate  # fires often, and not always
    return node


def plif(w: float, decay_input: bool, v_reset, mode: str, **kw) -> nn.Module:
    m = neuron.ParametricLIFNode(init_tau=2.0, decay_input=decay_input, v_threshold=0.6,
                                 v_reset=v_reset, step_mode=mode, **kw)
    with torch.no_grad():
        m.w.fill_(w)
    return m


# -- PLIF ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["s", "m"])
@pytest.mark.parametrize("v_reset", [0.0, -0.3, None], ids=["hard0", "hard-0.3", "soft"])
@pytest.mark.parametrize("decay_input", [True, False])
def test_plif_traces_exactly(decay_input, v_reset, mode):
    node = assert_exact(plif(W_LEARNED, decay_input, v_reset, mode), mode)
    q = 1.0 / (1.0 + math.exp(-float(np.float32(W_LEARNED))))  # 1/tau of the float32 w
    assert isinstance(node, LIF) and node.compare == ">="
    assert node.decay == pytest.approx(1.0 - q, abs=1e-12)
    assert node.gain == pytest.approx(q if decay_input else 1.0, abs=1e-12)
    assert (node.reset, node.v_reset) == (("soft", 0.0) if v_reset is None else
                                          ("hard", v_reset))
    assert node.threshold == pytest.approx(0.6)


def test_plif_with_store_v_seq_and_detach_reset_is_the_same_neuron():
    """store_v_seq only records v; detach_reset only changes gradients."""
    assert_exact(plif(-0.4, True, None, "m", store_v_seq=True, detach_reset=True), "m")


def test_plif_with_a_non_spiking_surrogate_is_refused():
    sn = plif(W_LEARNED, True, 0.0, "s", surrogate_function=surrogate.Sigmoid(spiking=False))
    with pytest.raises(ConversionError) as err:
        run_check(sn, "s")
    one_line(err, "ParametricLIFNode", "surrogate_function Sigmoid does not output binary spikes")


# -- the other mapped classes ----------------------------------------------------------------

MAPPED = {
    "IFNode-soft": lambda mode: neuron.IFNode(v_threshold=0.8, v_reset=None, step_mode=mode),
    "LIFNode-store_v_seq": lambda mode: neuron.LIFNode(tau=1.5, v_threshold=0.6,
                                                       store_v_seq=True, step_mode=mode),
    "SimpleIFNode-hard": lambda mode: neuron.SimpleIFNode(v_threshold=0.8, step_mode=mode),
    "SimpleIFNode-soft": lambda mode: neuron.SimpleIFNode(v_threshold=0.8, v_reset=None,
                                                          step_mode=mode),
    "SimpleLIFNode-decay_input": lambda mode: neuron.SimpleLIFNode(
        tau=1.5, decay_input=True, v_threshold=0.6, step_mode=mode),
    "SimpleLIFNode": lambda mode: neuron.SimpleLIFNode(tau=3.0, decay_input=False,
                                                       v_threshold=0.9, step_mode=mode),
    "ActivationAwareIFNode-soft": lambda mode: neuron.ActivationAwareIFNode(
        v_threshold=torch.linspace(0.5, 1.2, F_HID), channel_dim=1, step_mode=mode),
    "ActivationAwareIFNode-hard": lambda mode: neuron.ActivationAwareIFNode(
        v_threshold=0.9, v_offset=torch.linspace(-0.25, 0.25, F_HID), v_reset=-0.1,
        channel_dim=-1, step_mode=mode),
}


@pytest.mark.parametrize("mode", ["s", "m"])
@pytest.mark.parametrize("kind", sorted(MAPPED))
def test_mapped_neurons_trace_exactly(kind, mode):
    assert_exact(MAPPED[kind](mode), mode)


@pytest.mark.parametrize("cls", [neuron.OTTTLIFNode, neuron.SLTTLIFNode])
def test_online_learning_lifs_are_lifs_at_inference(cls):
    """OTTT/SLTT train online; at inference their step is LIFNode's (single-step only)."""
    node = assert_exact(cls(tau=1.8, v_threshold=0.7), "s")
    assert node.decay == pytest.approx(1.0 - 1.0 / 1.8)


@pytest.mark.parametrize("mode", ["s", "m"])
@pytest.mark.parametrize("v_reset", [0.0, None])
def test_cuba_lif_without_current_memory_is_a_lif(v_reset, mode):
    sn = neuron.CUBALIFNode(c_decay=0.0, v_decay=0.7, v_threshold=0.6, v_reset=v_reset)
    sn.step_mode = mode
    node = assert_exact(sn, mode)
    assert (node.decay, node.gain) == (0.7, 1.0)


# -- refusals --------------------------------------------------------------------------------

def one_line(err, type_name: str, *fragments: str) -> str:
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"module 'sn' ({type_name}): "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


REFUSED_RUNS = {  # constructed and run in a model: the error comes from the trace
    "QIFNode": (lambda: neuron.QIFNode(), "quadratic membrane dynamics (QIF)"),
    "EIFNode": (lambda: neuron.EIFNode(), "exponential membrane dynamics (EIF)"),
    "KLIFNode": (lambda: neuron.KLIFNode(), "relu(k * h)"),
    "HalfThresholdIFNode": (lambda: neuron.HalfThresholdIFNode(), "v = v_threshold/2"),
    "ILIFNode": (lambda: neuron.ILIFNode(), "multi-level spike counts", "up to 4 spikes"),
    "LIAFNode": (lambda: neuron.LIAFNode(torch.relu, False), "analog activation"),
    "TernaryIFNode": (lambda: neuron.TernaryIFNode(), "ternary spikes {-1, 0, +1}"),
    "TernaryLIFNode": (lambda: neuron.TernaryLIFNode(), "ternary spikes"),
    "IzhikevichNode": (lambda: neuron.IzhikevichNode(), "recovery current"),
    "RAFNode": (lambda: neuron.RAFNode(), "resonate-and-fire"),
}


@pytest.mark.parametrize("name", sorted(REFUSED_RUNS))
def test_refused_neurons_fail_in_one_line_with_the_reason(name):
    make, *fragments = REFUSED_RUNS[name]
    with pytest.raises(ConversionError) as err:
        run_check(make(), "s")
    one_line(err, name, *fragments, "accepted: IFNode, LIFNode, ParametricLIFNode")


def test_every_refused_class_has_a_specific_reason():
    """Each class of the refusal table gets its own reason from the registered converter
    (not the generic 'is not supported'), without having to run it."""
    for name in REFUSED:
        cls = getattr(neuron, name)
        m = cls.__new__(cls)
        nn.Module.__init__(m)
        m.decode = "last_mem"
        m.surrogate_function = surrogate.MultiLevelSpikeCount(3)
        ctx = ConvertContext("sn", T, {}, lambda node: node.name, None)
        with pytest.raises(ConversionError) as err:
            find_converter(m)(ctx, m, "x")
        message = one_line(err, name, "; accepted: ")
        assert "not supported" not in message


def test_non_spiking_if_points_to_the_equivalent_sum():
    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = layer.Linear(F_IN, F_OUT, step_mode="m")
            self.sn = neuron.NonSpikingIFNode(decode="last_mem")

        def forward(self, x):
            return self.sn(self.fc(x))

    with pytest.raises(ConversionError) as err:
        trace_model(Head(), torch.zeros(T, 2, F_IN), T, input_layout="TN")
    one_line(err, "NonSpikingIFNode", "decode='last_mem'", "x_seq.sum(0)")


def test_cuba_lif_with_a_current_is_refused():
    with pytest.raises(ConversionError) as err:
        run_check(neuron.CUBALIFNode(c_decay=0.5, v_decay=0.75), "s")
    one_line(err, "CUBALIFNode", "c_decay=0.5", "synaptic current", "accepted: c_decay=0")


def test_simple_neurons_with_a_nonzero_reset_are_refused():
    """SimpleBaseNode starts v at 0; the IR's hard-reset LIF starts at v_reset."""
    with pytest.raises(ConversionError) as err:
        run_check(neuron.SimpleIFNode(v_threshold=0.8, v_reset=-0.2), "s")
    one_line(err, "SimpleIFNode", "v_reset=-0.2", "starts every sample at v = 0")


def test_a_subclass_that_changes_the_dynamics_is_refused():
    """Before, any LIFNode subclass (ILIFNode, LIAFNode, a user's) was converted as LIFNode."""

    class Doubled(neuron.LIFNode):
        def single_step_functional_forward(self, inputs, states, **kwargs):
            return super().single_step_functional_forward((2 * inputs[0],), states, **kwargs)

    with pytest.raises(ConversionError) as err:
        run_check(Doubled(tau=2.0, v_threshold=0.6), "s")
    one_line(err, "Doubled", "subclasses LIFNode and overrides single_step_functional_forward")


def test_soft_reset_with_an_offset_is_refused():
    sn = neuron.ActivationAwareIFNode(v_threshold=0.9, v_offset=0.1)
    with pytest.raises(ConversionError) as err:
        run_check(sn, "s")
    one_line(err, "ActivationAwareIFNode", "nonzero v_offset", "accepted: v_offset=0")


def test_refused_classes_are_not_listed_as_supported():
    from snnc.frontends.torch import supported_types

    names = supported_types()
    assert "spikingjelly.activation_based.neuron.ParametricLIFNode" in names
    assert not any(n.endswith(".QIFNode") or n.endswith(".ILIFNode") for n in names)


# -- PLIF on Lava ----------------------------------------------------------------------------

PLIF_NET = '''
import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn


class PlifNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = layer.Linear(16, 10, step_mode="m")
        self.sn1 = neuron.ParametricLIFNode(decay_input=True, v_threshold=0.6, step_mode="m")
        self.fc2 = layer.Linear(10, 4, step_mode="m")
        self.sn2 = neuron.ParametricLIFNode(decay_input=False, v_reset=None, v_threshold=0.5,
                                            step_mode="m")

    def forward(self, x):
        x = x.unsqueeze(0).repeat(4, 1, 1)
        return self.sn2(self.fc2(self.sn1(self.fc1(x)))).mean(0)


def plif_net():
    return PlifNet()
'''


@pytest.mark.timeout(900)
def test_plif_net_runs_on_lava_like_the_reference_simulator(tmp_path):
    (tmp_path / "plifnet.py").write_text(textwrap.dedent(PLIF_NET))
    torch.manual_seed(1)
    net = nn.Module()
    net.fc1, net.fc2 = nn.Linear(16, 10), nn.Linear(10, 4)
    with torch.no_grad():
        net.fc1.weight.mul_(4.0)
        net.fc2.weight.mul_(4.0)
    state = {**{k: v for k, v in net.state_dict().items()},
             "sn1.w": torch.tensor(0.9), "sn2.w": torch.tensor(-0.7)}  # learned taus
    torch.save(state, tmp_path / "w.pt")
    out = tmp_path / "plif.snnc"
    runner = CliRunner()
    result = runner.invoke(cli, ["compile", f"{tmp_path / 'plifnet.py'}:plif_net", "--weights",
                                 str(tmp_path / "w.pt"), "-T", "4", "--input-shape", "16",
                                 "--check-samples", "6", "-o", str(out)])
    assert result.exit_code == 0, result.output
    art = read_artifact(out)
    spikes = simulate(art.graph, np.random.default_rng(0).random((6, 16)), 4).spikes
    assert all(0.1 < spikes[n].mean() < 0.9 for n in ("sn1", "sn2"))  # both layers fire
    result = runner.invoke(cli, ["check", str(out), "--backend", "lava", "--lava-python",
                                 str(ROOT / ".venv-lava" / "bin" / "python"),
                                 "--max-accuracy-drop", "100", "--json", "-"])
    doc = json.loads(result.output)
    assert doc["equivalence"]["samples"] >= 4
    assert doc["total_mismatches"] == 0, result.output
    assert doc["lava_floating_pt"]["total_mismatches"] == 0
