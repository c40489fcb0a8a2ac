"""Input layouts (issue 12, item 1): `--input-layout frame|TN|NT` / `trace(input_layout=)`.

An event-style spikingjelly multi-step model takes a sequence `[T, N, C, H, W]`; a
time-last model takes `[N, C, H, W, T]` and moves time to the front itself. Both must trace
to graphs that spike exactly like torch at every neuron layer and step, compared with an
independent recorder (forward hooks on the neuron modules, nothing from the tracer).
"""

from __future__ import annotations

import copy
import re
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from spikingjelly.activation_based import functional, neuron
from spikingjelly.activation_based.neuron import BaseNode
from torch import nn

from snnc.artifact import read_artifact
from snnc.backends.refsim import simulate
from snnc.frontends.torch import ConversionError, trace, trace_model
from snnc.tools.cli import cli

T = 4
SHAPE = (2, 8, 8)  # two event polarities, 8x8

EVENT_NET = '''
import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn


class EventNet(nn.Module):
    """Multi-step, the event-camera way: takes [T, N, 2, 8, 8], returns the mean over T."""

    def __init__(self, time_last=False):
        super().__init__()
        self.time_last = time_last
        self.conv = layer.SeqToANNContainer(nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6),
                                            nn.Sequential())
        self.sn1 = neuron.LIFNode(tau=2.0, v_threshold=0.5, step_mode="m")
        self.pool = layer.AvgPool2d(2, step_mode="m")
        self.flat = layer.Flatten(step_mode="m")
        self.fc = layer.Linear(6 * 4 * 4, 5, step_mode="m")
        self.sn2 = neuron.LIFNode(tau=2.0, v_reset=None, v_threshold=0.5,
                                  step_mode="m")

    def forward(self, x):
        if self.time_last:  # [N, C, H, W, T], as the STBP reproductions keep it
            x = x.movedim(-1, 0)
        return self.sn2(self.fc(self.flat(self.pool(self.sn1(self.conv(x)))))).mean(0)


def event_net(time_last=False):
    torch.manual_seed(0)
    net = EventNet(time_last)
    with torch.no_grad():
        net.conv[0].weight.mul_(5.0)
        net.fc.weight.mul_(8.0)
        bn = net.conv[1]
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
    return net


class StepLoopNet(nn.Module):
    """Time last, STBP style: single-step layers in a loop over x[..., t]."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.sn1 = neuron.IFNode(v_threshold=0.5)
        self.fc = nn.Linear(4 * 8 * 8, 5)
        self.sn2 = neuron.LIFNode(tau=2.0, v_threshold=0.5)

    def forward(self, x):
        outs = [self.sn2(self.fc(self.sn1(self.conv(x[..., t])).flatten(1)))
                for t in range(x.shape[-1])]
        return torch.stack(outs, dim=-1).sum(-1)


def step_loop_net():
    torch.manual_seed(1)
    net = StepLoopNet()
    with torch.no_grad():
        net.conv.weight.mul_(4.0)
        net.fc.weight.mul_(8.0)
    return net
'''


@pytest.fixture(scope="module")
def event_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("event")
    path = folder / "event_model.py"
    path.write_text(textwrap.dedent(EVENT_NET))
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    weights = folder / "event.pt"
    torch.save(namespace["event_net"]().state_dict(), weights)
    return path, weights, namespace["event_net"]


def record(model: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Independent recorder: one float64 call on `x`; each neuron's [T, B, ...] spikes (one
    multi-step call, or T calls of a single-step neuron inside the model's own loop)."""
    net = copy.deepcopy(model).double().eval()
    seen: dict[str, list[torch.Tensor]] = {}
    hooks = []
    for path, m in net.named_modules():
        if isinstance(m, BaseNode):
            seen[path] = []
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, path=path: seen[path].append(out.detach().clone())))
    functional.reset_net(net)
    with torch.no_grad():
        net(x.double())
    for h in hooks:
        h.remove()
    return {p: (v[0] if len(v) == 1 else torch.stack(v)).numpy() for p, v in seen.items()}


def events(samples: int, seed: int = 1) -> np.ndarray:
    """[T, N, 2, 8, 8] sparse binary events, different at every step."""
    return (np.random.default_rng(seed).random((T, samples, *SHAPE)) < 0.3).astype(np.float64)


def assert_same_spikes(graph, x_seq: np.ndarray, expected: dict[str, np.ndarray]) -> None:
    sim = simulate(graph, x_seq, T)
    assert set(sim.spikes) == set(expected) == {"sn1", "sn2"}
    for name, spikes in expected.items():
        assert spikes.any() and not spikes.all(), f"{name} is silent or saturated"
        mismatches = int((sim.spikes[name] != spikes.astype(bool)).sum())
        assert mismatches == 0, f"{name}: {mismatches} mismatches"


def test_a_sequence_model_traces_with_input_layout_tn(event_module):
    model = event_module[2]().eval()
    x = events(12)
    result = trace_model(model, torch.zeros(T, 2, *SHAPE), T, input_layout="TN")
    assert result.step_mode == "multi"
    assert_same_spikes(result.graph, x, record(model, torch.as_tensor(x)))


def test_a_sequence_example_needs_no_input_shape_with_tn(event_module):
    model = event_module[2]().eval()
    with pytest.raises(ConversionError, match=r"pass input_layout='TN' or 'frame' "
                                              r"\(--input-layout TN\|frame\)"):
        trace(model, torch.zeros(T, 3, *SHAPE), T)  # [T, N, ...] or [N=4, 3, 2, 8, 8]?
    graph = trace(model, torch.zeros(T, 3, *SHAPE), T, input_layout="TN")
    assert graph[graph.inputs[0]].type.shape == SHAPE


def test_a_time_last_model_traces_with_input_layout_nt(event_module):
    model = event_module[2](time_last=True).eval()
    x = events(12, seed=2)
    result = trace_model(model, torch.zeros(2, *SHAPE, T), T, input_layout="NT")
    assert result.step_mode == "multi"
    expected = record(model, torch.as_tensor(x).movedim(0, -1))  # fed [N, 2, 8, 8, T]
    assert_same_spikes(result.graph, x, expected)


class StepLoop(nn.Module):
    """Time last as the STBP reproductions write it: single-step layers in a loop over
    x[..., t], outputs stacked along the last axis and summed over time."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.sn1 = neuron.IFNode(v_threshold=0.5)
        self.fc = nn.Linear(4 * 8 * 8, 5)
        self.sn2 = neuron.LIFNode(tau=2.0, v_threshold=0.5)
        with torch.no_grad():
            self.conv.weight.mul_(4.0)
            self.fc.weight.mul_(8.0)

    def forward(self, x):
        outs = []
        for t in range(x.shape[-1]):
            h = self.sn1(self.bn(self.conv(x[..., t])))
            outs.append(self.sn2(self.fc(h.flatten(1))))
        return torch.stack(outs, dim=-1).sum(-1)


class Unbinds(StepLoop):
    """The same, unbinding time and running it layer by layer (all steps of one layer, then
    the next), stacked time first and averaged."""

    def forward(self, x):
        hs = [self.sn1(self.bn(self.conv(xt))) for xt in x.unbind(-1)]
        return torch.stack([self.sn2(self.fc(h.flatten(1))) for h in hs]).mean(0)


@pytest.mark.parametrize("cls", [StepLoop, Unbinds])
def test_a_time_last_per_step_loop_traces_with_input_layout_nt(cls):
    model = cls().eval()
    x = events(12, seed=3)
    result = trace_model(model, torch.zeros(2, *SHAPE, T), T, input_layout="NT")
    assert result.step_mode == "single"  # the neurons see one step at a time
    assert sum(n.op in ("Conv2d", "LIF") for n in result.graph) == 3  # one step's graph
    expected = record(model, torch.as_tensor(x).movedim(0, -1))  # fed [N, 2, 8, 8, T]
    assert_same_spikes(result.graph, x, expected)


class Feeds(nn.Module):
    def __init__(self, forward):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.sn = neuron.IFNode()
        self.body = forward

    def forward(self, x):
        return self.body(self, x)


@pytest.mark.parametrize("body, what", [
    (lambda m, x: m.sn(m.fc(x)), "module 'fc' (Linear) reads a time-last value"),
    (lambda m, x: torch.stack([m.sn(m.fc(x[:, 0]))] * T, -1).sum(-1),
     "torch function '__getitem__' in module 'feeds' reads a time-last value"),
    (lambda m, x: torch.stack([m.sn(m.fc(c[..., 0])) for c in x.chunk(T, -1)], -1).sum(-1),
     "torch function 'chunk' in module 'feeds' reads a time-last value"),
    (lambda m, x: m.sn(m.fc(x[..., 0] + x[..., 1])),
     "torch function 'add' in module 'feeds' combines values of different steps"),
    (lambda m, x: torch.stack([m.sn(m.fc(x[..., t])) for t in range(T)], -1).amax(-1),
     "torch function 'amax' in module 'feeds' reads a time-last value"),
    (lambda m, x: torch.stack([m.sn(m.fc(x[..., t])) for t in range(T)], -1).sum(-1) - 1,
     "torch function 'sub' in module 'feeds' reads a value already averaged"),
    (lambda m, x: torch.stack([m.sn(m.fc(x[..., t])) if t else m.sn(x[..., t])
                               for t in range(T)], -1).sum(-1),
     "module 'fc' (Linear): step 1 of the per-step loop over the time-last input does not "
     "repeat step 0's"),
])
def test_time_last_patterns_not_followed_are_refused_on_one_line(body, what):
    with pytest.raises(ConversionError) as err:
        trace(Feeds(body), torch.zeros(2, 3, T), T, input_layout="NT")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(what), message


@pytest.mark.parametrize("layout, shape, fragment", [
    ("TN", (3, 2, *SHAPE), f"'TN' takes an example input [T={T}, N, *input_shape]"),
    ("NT", (2, *SHAPE, 3), f"'NT' takes an example input [N, *input_shape, T={T}]"),
    ("frame", (2, 1, 8, 8), "'frame' takes an example input [N, *input_shape]"),
    ("NCHW", (2, *SHAPE), "input_layout (--input-layout) = 'NCHW'; expected one of frame, "
                          "TN, NT"),
])
def test_an_example_that_does_not_fit_its_layout_is_refused(event_module, layout, shape,
                                                            fragment):
    with pytest.raises(ConversionError, match=re.escape(fragment)):
        trace(event_module[2]().eval(), torch.zeros(shape), T, input_shape=SHAPE,
              input_layout=layout)


def compile_cli(tmp_path, module, weights, *extra, factory="event_net"):
    out = tmp_path / "event.snnc"
    result = CliRunner().invoke(cli, ["compile", f"{module}:{factory}", "--weights",
                                      str(weights), "-T", str(T), "--input-shape", "2,8,8",
                                      "-o", str(out), *extra])
    return result, out


def test_compile_help_shows_input_layout():
    result = CliRunner().invoke(cli, ["compile", "--help"])
    assert result.exit_code == 0
    assert "--input-layout [frame|TN|NT]" in result.output


def test_cli_compiles_an_event_model_with_tn_and_checks_it(tmp_path, event_module):
    path, weights, _ = event_module
    result, out = compile_cli(tmp_path, path, weights)  # default: frames, which it rejects
    assert result.exit_code == 1 and not out.exists()
    assert "running the model on an input of shape [5, 2, 8, 8] failed" in result.output
    assert len(result.output.strip().splitlines()) == 1

    result, out = compile_cli(tmp_path, path, weights, "--input-layout", "TN")
    assert result.exit_code == 0, result.output
    art = read_artifact(out)
    assert art.target == "loihi2" and art.meta["step_mode"] == "multi"
    assert art.meta["input_layout"] == "TN"
    assert art.meta["trace_check"]["total_mismatches"] == 0
    assert set(art.meta["trace_check"]["layers"]) == {"sn1", "sn2"}
    golden = art.golden["inputs"]  # random sequences [T, N, 2, 8, 8], not frames
    assert golden.shape[0] == T and golden.shape[2:] == SHAPE and golden.ndim == 5

    check = CliRunner().invoke(cli, ["check", str(out), "--data", "random"])
    assert check.exit_code == 0, check.output
    assert "IR vs PyTorch at compile time: 0 mismatches on 8 random inputs" in check.output
    assert check.output.strip().endswith("PASSED")


def test_cli_compiles_a_time_last_model_with_nt(tmp_path, event_module):  # movedim(-1, 0)
    path, weights, _ = event_module
    result, out = compile_cli(tmp_path, path, weights, "--input-layout", "NT",
                              "--model-kwargs", '{"time_last": true}')
    assert result.exit_code == 0, result.output
    art = read_artifact(out)
    assert art.meta["input_layout"] == "NT"
    assert art.meta["trace_check"]["total_mismatches"] == 0


def test_cli_compiles_a_time_last_step_loop_with_nt_and_checks_it(tmp_path, event_module):
    path, _, _ = event_module
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    weights = tmp_path / "loop.pt"
    torch.save(namespace["step_loop_net"]().state_dict(), weights)
    result, out = compile_cli(tmp_path, path, weights, "--input-layout", "NT",
                              factory="step_loop_net")
    assert result.exit_code == 0, result.output
    art = read_artifact(out)
    assert art.meta["step_mode"] == "single" and art.meta["input_layout"] == "NT"
    assert art.meta["trace_check"]["total_mismatches"] == 0
    assert set(art.meta["trace_check"]["layers"]) == {"sn1", "sn2"}
    check = CliRunner().invoke(cli, ["check", str(out), "--data", "random"])
    assert check.exit_code == 0, check.output
    assert check.output.strip().endswith("PASSED")
