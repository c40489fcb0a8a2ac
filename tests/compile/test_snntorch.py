"""snnTorch's Leaky and Synaptic traced into CubaLIF: the trace check (every layer, every step,
float64, forward hooks on the real snnTorch modules) reports 0 mismatches in every reset rule,
with and without reset_delay, learned beta/threshold, and Synaptic; the other snnTorch neurons
and the options with no exact mapping are refused with the reason.

snnTorch's spike functions return float32 (`(x > 0).float()`) whatever their input; the
trace check feeds each layer its own dtype (0/1 spikes cast exactly), so these nets run as
they are. Both loop styles of snnTorch's tutorials are here: a Sequential of `init_hidden`
neurons called once per step, and a loop inside forward passing `spk, mem = lif(cur, mem)`.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import snntorch as snn
import torch
from click.testing import CliRunner
from torch import nn

from snnc.frontends.torch import ConversionError, trace_model
from snnc.frontends.torch.check import check_trace
from snnc.ir import CubaLIF, Graph
from snnc.targets import LOIHI2
from snnc.tools.cli import cli
from snnc.tools.pass_runner import compile_graph

ROOT = Path(__file__).resolve().parents[2]
T = 6
RESETS = [(r, d) for r in ("subtract", "zero", "none") for d in (True, False)]


def _net(make_neuron, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(10, 16), make_neuron(), nn.Linear(16, 6), make_neuron())
    with torch.no_grad():
        net[0].weight.mul_(3.0)  # strong drive: many spikes, membranes above 2 * threshold
        net[2].weight.mul_(3.0)
    return net.eval()


def _inputs(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 2, (48, 10)).astype(np.float32)


def _check(net: nn.Module, x: np.ndarray):
    result = trace_model(net, torch.zeros(2, 10), T, step_mode="single")
    report = check_trace(net, result, x, T)
    return result, {layer.name: layer.mismatches for layer in report.layers}


def _peak_and_rate(net: nn.Module, x: np.ndarray, index: int) -> tuple[float, float]:
    """Largest membrane of layer `index` over the steps (snnTorch's own), and its firing
    rate; the state is reset with snntorch.utils.reset first and after."""
    from snntorch import utils

    utils.reset(net)
    peaks, spikes = [], []
    hook = net[index].register_forward_hook(lambda m, a, out: spikes.append(out.mean()))
    with torch.no_grad():
        for _ in range(T):
            net(torch.as_tensor(x))
            peaks.append(float(net[index].mem.max()))
    hook.remove()
    utils.reset(net)
    return max(peaks), float(torch.stack(spikes).mean())


@pytest.mark.parametrize("reset, delay", RESETS)
def test_leaky_matches_snntorch_in_every_reset_rule(reset, delay):
    net = _net(lambda: snn.Leaky(beta=0.8, threshold=0.5, init_hidden=True,
                                 reset_mechanism=reset, reset_delay=delay))
    x = _inputs()
    result, bad = _check(net, x)
    assert bad == {"1": 0, "3": 0}
    node = result.graph["1"]
    assert type(node) is CubaLIF and (node.reset, node.reset_delay) == (reset, delay)
    assert node.current_decay == 0.0 and node.decay == pytest.approx(0.8)
    peak, rate = _peak_and_rate(net, x, 1)
    assert 0.1 < rate < 0.9
    if not (reset == "zero" and not delay):  # that rule zeroes the stored membrane at once
        assert peak > 2 * 0.5  # the regime where the owed reset fires again is reached


@pytest.mark.parametrize("reset, delay", RESETS)
def test_synaptic_matches_snntorch_in_every_reset_rule(reset, delay):
    net = _net(lambda: snn.Synaptic(alpha=0.6, beta=0.8, threshold=0.5, init_hidden=True,
                                    reset_mechanism=reset, reset_delay=delay))
    result, bad = _check(net, _inputs())
    assert bad == {"1": 0, "3": 0}
    node = result.graph["1"]
    assert node.current_decay == pytest.approx(0.6)
    assert node.reset == {"zero": "zero_all"}.get(reset, reset)


def test_learned_beta_and_threshold_are_read_as_numbers():
    net = _net(lambda: snn.Leaky(beta=0.9, threshold=0.7, learn_beta=True,
                                 learn_threshold=True, init_hidden=True))
    with torch.no_grad():
        net[1].beta.fill_(1.3)  # trained past 1: snnTorch clamps to 1 when it uses it
        net[1].threshold.fill_(0.4)
    result, bad = _check(net, _inputs(2))
    assert bad == {"1": 0, "3": 0}
    assert result.graph["1"].decay == 1.0
    assert result.graph["1"].threshold == pytest.approx(0.4)


@pytest.mark.parametrize("wrong", ["reset_delay", "zero"])
def test_the_check_sees_a_wrong_reset_rule(wrong):
    """The inputs are strong enough to tell the rules apart: a graph with the other rule
    mismatches snnTorch."""
    if wrong == "reset_delay":
        net = _net(lambda: snn.Leaky(beta=0.8, threshold=0.5, init_hidden=True))
        field = {"reset_delay": False}
    else:
        net = _net(lambda: snn.Synaptic(alpha=0.6, beta=0.8, threshold=0.5, init_hidden=True,
                                        reset_mechanism="zero"))
        field = {"reset": "zero"}  # Leaky's zero in place of Synaptic's
    result = trace_model(net, torch.zeros(2, 10), T, step_mode="single")
    nodes = [n if n.name != "1" else CubaLIF(**{**n.params(), "name": n.name,
                                                "inputs": n.inputs, **field})
             for n in result.graph]
    result.graph = Graph.build(nodes, result.graph.outputs)
    report = check_trace(net, result, _inputs(), T)
    assert report.layers[0].mismatches > 0


def test_compiles_for_loihi2_and_the_fixed_point_graph_keeps_the_rule():
    net = _net(lambda: snn.Synaptic(alpha=0.5, beta=0.75, threshold=0.5, init_hidden=True))
    result = trace_model(net, torch.zeros(2, 10), T, step_mode="single")
    fixed = compile_graph(result.graph, LOIHI2, timesteps=T).graph
    node = fixed["1"]
    assert node.op == "FxCubaLIF" and node.reset == "subtract" and node.reset_delay
    assert node.du == 2047 and node.dv == 1024  # alpha .5, beta .75 on the 4096 grid


@pytest.mark.parametrize("make, says", [
    (lambda: snn.Leaky(beta=0.8, inhibition=True, init_hidden=True), "inhibition=True"),
    (lambda: snn.Leaky(beta=0.8, state_quant=lambda m: m, init_hidden=True), "state_quant"),
    (lambda: snn.Leaky(beta=0.8, graded_spikes_factor=2.0, init_hidden=True),
     "graded_spikes_factor"),
    (lambda: snn.Leaky(beta=torch.full((16,), 0.8), init_hidden=True), "beta has shape"),
    (lambda: snn.Leaky(beta=0.8, spike_grad=torch.sigmoid, init_hidden=True), "spike_grad"),
    (lambda: snn.RLeaky(beta=0.8, linear_features=16, init_hidden=True), "recurrent"),
    (lambda: snn.Alpha(alpha=0.9, beta=0.8, init_hidden=True), "two current states"),
])
def test_what_has_no_exact_mapping_is_refused_with_the_reason(make, says):
    with pytest.warns(UserWarning) if "inhibition" in says else _nothing():
        net = nn.Sequential(nn.Linear(10, 16), make())
    with pytest.raises(ConversionError) as err:
        trace_model(net, torch.zeros(2, 10), T, step_mode="single")
    assert says in str(err.value) and "'1'" in str(err.value)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


LOOP_NET = '''
import snntorch as snn
import torch
from torch import nn

T = 6


class LoopNet(nn.Module):
    """snnTorch's tutorial style: the loop over steps inside forward, state passed by hand;
    returns (spikes, membranes) of the last layer, each [T, N, 6]."""

    def __init__(self, sequence=False):
        super().__init__()
        self.sequence = sequence
        self.fc1 = nn.Linear(10, 16)
        self.lif1 = snn.Leaky(beta=0.8, threshold=0.5)
        self.fc2 = nn.Linear(16, 6)
        self.lif2 = snn.Synaptic(alpha=0.6, beta=0.8, threshold=0.5, reset_mechanism="zero")

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        syn2, mem2 = self.lif2.init_synaptic()
        spk_rec, mem_rec = [], []
        for step in range(T):
            spk1, mem1 = self.lif1(self.fc1(x[step] if self.sequence else x), mem1)
            spk2, syn2, mem2 = self.lif2(self.fc2(spk1), syn2, mem2)
            spk_rec.append(spk2)
            mem_rec.append(mem2)
        return torch.stack(spk_rec), torch.stack(mem_rec)


def loop_net(sequence=False):
    torch.manual_seed(0)
    net = LoopNet(sequence)
    with torch.no_grad():
        net.fc1.weight.mul_(3.0)
        net.fc2.weight.mul_(3.0)
    return net
'''


@pytest.fixture(scope="module")
def loop_module(tmp_path_factory):
    path = tmp_path_factory.mktemp("snntorch") / "loopnet.py"
    path.write_text(textwrap.dedent(LOOP_NET))
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return path, namespace["loop_net"]


@pytest.mark.parametrize("sequence", [False, True], ids=["frame", "x[step]"])
def test_explicit_state_passing_loop_matches_snntorch(loop_module, sequence):
    net = loop_module[1](sequence).eval()
    example = torch.zeros(T, 2, 10) if sequence else torch.zeros(2, 10)
    result = trace_model(net, example, T, input_layout="TN" if sequence else None)
    assert result.loops_inside and result.step_mode == "single"
    assert [n.op for n in result.graph] == ["Input", "Dense", "CubaLIF", "Dense", "CubaLIF"]
    assert result.graph.outputs == ("lif2",)  # decoded by spike count; mem is not an output
    x = np.random.default_rng(1).uniform(-1, 2, (T, 48, 10) if sequence else (48, 10))
    report = check_trace(net, result, x, T)
    assert [(a.name, a.compared, a.mismatches) for a in report.layers] == [
        ("lif1", T * 48 * 16, 0), ("lif2", T * 48 * 6, 0)]


@pytest.mark.timeout(900)
def test_a_snntorch_loop_net_runs_on_lava_like_the_reference_simulator(loop_module, tmp_path):
    """Leaky and Synaptic, compiled for loihi2 from the CLI, on Lava's fixed_pt models."""
    path, make = loop_module
    torch.save(make().state_dict(), tmp_path / "w.pt")
    out = tmp_path / "loop.snnc"
    runner = CliRunner()
    result = runner.invoke(cli, ["compile", f"{path}:loop_net", "--weights",
                                 str(tmp_path / "w.pt"), "-T", str(T), "--input-shape", "10",
                                 "--check-samples", "8", "-o", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["check", str(out), "--backend", "lava", "--lava-python",
                                 str(ROOT / ".venv-lava" / "bin" / "python"),
                                 "--max-accuracy-drop", "100", "--json", "-"])
    doc = json.loads(result.output)
    assert doc["equivalence"]["samples"] >= 4
    assert doc["total_mismatches"] == 0, result.output
    assert doc["lava_floating_pt"]["total_mismatches"] == 0
