"""Time anywhere inside the model (issue 12, item 2): STBP code that keeps time LAST.

The shipped example `examples/stbp_timelast.py` is written the way the public STBP
reproductions are: the frame repeated with `x.unsqueeze(-1).repeat(1, 1, 1, 1, T)`, user
modules that take and return `[N, ..., T]` (with converters), a layer applied per step into
a zero buffer (`out[..., t] = layer(x[..., t])`, traced through), `x.view(N, -1, T)`, and the
answer `torch.sum(x, dim=2) / T`. Expected spikes come from the torch model itself, recorded
with forward hooks (float64) and moved time-first here, nothing from the tracer.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from snnc.backends.refsim import simulate
from snnc.datasets import digits_split
from snnc.frontends.torch import ConversionError, trace, trace_model
from snnc.tools.cli import cli

from .conftest import EXAMPLES, _load_example

T = 4
ex = _load_example("stbp_timelast")
LIF_MODULES = (ex.SpikeLayer, ex.TimeLastLIF)


def trained() -> nn.Module:
    net = ex.stbp_timelast_net(T)
    state = torch.load(EXAMPLES / "checkpoints" / "stbp_timelast.pt", weights_only=True)
    net.load_state_dict(state)
    return net.eval()


def record(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One float64 call; each spiking module's output moved to [T, B, ...], and the output."""
    net = copy.deepcopy(model).double().eval()
    seen: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(
        lambda mod, inp, out, path=path: seen.__setitem__(path, out.detach().clone()))
        for path, m in net.named_modules() if isinstance(m, LIF_MODULES)]
    with torch.no_grad():
        out = net(x.double())
    for h in hooks:
        h.remove()
    return {p: v.movedim(-1, 0).numpy() for p, v in seen.items()}, out.numpy()


def assert_same(graph, x: np.ndarray, expected: dict[str, np.ndarray], layers: set[str]):
    sim = simulate(graph, x, T)
    assert set(expected) == layers
    for name, spikes in expected.items():
        assert spikes.any() and not spikes.all(), f"{name} is silent or saturated"
        mismatches = int((sim.spikes[name] != spikes.astype(bool)).sum())
        assert mismatches == 0, f"{name}: {mismatches} mismatches"
    return sim


def test_the_shipped_time_last_example_spikes_like_torch_at_every_layer_and_step():
    model = trained()
    x = digits_split()[2]  # all 360 test digits
    result = trace_model(model, torch.zeros(2, 1, 8, 8), T)
    assert result.step_mode == "multi"
    assert result.time_last_neurons == {"conv1", "pool1", "lif2", "fc"}
    expected, out = record(model, torch.as_tensor(x))
    sim = assert_same(result.graph, x, expected, {"conv1", "pool1", "lif2", "fc"})
    # the answer is the spike count / T, which is the graph's spike rate: same values
    (read,) = result.outputs
    assert read.name == "fc" and read.scale == 1.0
    np.testing.assert_array_equal(sim.spikes["fc"].mean(axis=0), out)


def test_snnc_check_float_accuracy_is_the_torch_models_own(tmp_path):
    """Decoded by spike count with argmax's first-maximum rule, the float graph's accuracy
    on the digits test split is exactly the torch model's."""
    _, _, x, y = digits_split()
    with torch.no_grad():
        torch_acc = float((trained()(torch.as_tensor(x)).argmax(1).numpy() == y).mean())
    art, js = tmp_path / "tl.snnc", tmp_path / "check.json"
    runner = CliRunner()
    result = runner.invoke(cli, [
        "compile", f"{EXAMPLES / 'stbp_timelast.py'}:stbp_timelast_net", "--weights",
        str(EXAMPLES / "checkpoints" / "stbp_timelast.pt"), "-T", str(T), "--input-shape",
        "1,8,8", "--check-data", "digits", "--check-samples", "16", "-o", str(art)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["check", str(art), "--data", "digits", "--json", str(js)])
    assert result.exit_code == 0, result.output
    report = json.loads(js.read_text())
    assert report["accuracy"]["samples"] == len(y) == 360
    assert report["accuracy"]["float"] == torch_acc


class Frames(nn.Module):
    """Variants of the same pattern: expand instead of repeat, time-last input,
    mean(-1), time-first buffers."""

    def __init__(self, variant: str):
        super().__init__()
        torch.manual_seed(5)
        self.variant = variant
        self.conv = ex.PerStep(nn.Conv2d(1, 4, 3, padding=1))
        self.bn = ex.TimeLastBN(4)
        self.sn1 = ex.TimeLastLIF(tau=0.5, V_th=0.5)
        self.fc = ex.SpikeLayer(nn.Linear(4 * 8 * 8, 5), tau=0.8, v_th=0.5)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.2, 0.2)
            self.bn.running_var.uniform_(0.5, 1.5)
            self.bn.weight.uniform_(1.0, 3.0)
            self.fc.layer.weight.mul_(6.0)

    def forward(self, x):
        if self.variant == "expand":
            x = x.unsqueeze(-1).expand(-1, -1, -1, -1, T)
        elif self.variant == "time_first_buffer":  # a frame model writing [T, N, ...] itself
            buf = torch.zeros((T, *x.shape), dtype=x.dtype)
            for t in range(T):
                buf[t] = x
            x = buf.movedim(0, -1)
        h = self.sn1(self.bn(self.conv(x)))
        y = self.fc(h.reshape(h.shape[0], -1, T))
        return y.mean(-1) if self.variant != "sum" else y.sum(-1) * 2.0


@pytest.mark.parametrize("variant, layout, scale", [
    ("expand", None, 1.0), ("time_first_buffer", None, 1.0), ("nt_input", "NT", 1.0),
    ("sum", "NT", 2.0 * T),
])
def test_time_last_variants_trace_exactly(variant, layout, scale):
    model = Frames(variant).eval()
    rng = np.random.default_rng(7)
    frames = rng.uniform(0, 1, (12, 1, 8, 8))
    if layout == "NT":  # a different frame at every step, fed [N, 1, 8, 8, T]
        seq = rng.uniform(0, 1, (T, 12, 1, 8, 8))
        result = trace_model(model, torch.zeros(2, 1, 8, 8, T), T, input_layout=layout)
        expected, out = record(model, torch.as_tensor(seq).movedim(0, -1))
        sim = assert_same(result.graph, seq, expected, {"sn1", "fc"})
    else:
        result = trace_model(model, torch.zeros(2, 1, 8, 8), T)
        expected, out = record(model, torch.as_tensor(frames))
        sim = assert_same(result.graph, frames, expected, {"sn1", "fc"})
    (read,) = result.outputs
    assert read.scale == scale
    np.testing.assert_allclose(scale * sim.spikes["fc"].mean(axis=0), out, rtol=0, atol=1e-12)


class Feeds(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.sn = ex.TimeLastLIF()
        self.body = body

    def forward(self, x):
        return self.body(self, x)


def _buffer(m, x, steps, shift=0):
    buf = torch.zeros(x.shape[0], 3, T)
    for t in steps:
        buf[..., t] = m.fc(x[..., (t + shift) % T])
    return m.sn(buf).sum(-1)


@pytest.mark.parametrize("body, what", [
    (lambda m, x: _buffer(m, x, [0, 2, 1]),
     "module 'sn' (TimeLastLIF) reads a buffer a per-step loop fills before every step is "
     "in (steps [3] missing)"),
    (lambda m, x: m.sn(m.fc(x.movedim(-1, 0)).movedim(0, -1)).sum(-1) / -2,
     "torch function 'div' in module 'feeds': a value already summed or averaged "
     "over time may only be multiplied or divided by a positive number"),
    (lambda m, x: 2 / m.sn(m.fc(x.movedim(-1, 0)).movedim(0, -1)).sum(-1),
     "torch function '__rdiv__' in module 'feeds' reads a value already averaged"),
    (lambda m, x: _buffer(m, x, range(T), shift=1),
     "module 'fc' (Linear): step 1 of the per-step loop over the time-last input does not "
     "repeat step 0's"),
    (lambda m, x: _buffer(m, x, [1, 0, 2, 3], shift=0) if (x := x[..., [1, 0, 2, 3]]) is not None
     else None, "torch function '__getitem__' in module 'feeds' reads a time-last value"),
])
def test_time_last_patterns_not_followed_are_refused_on_one_line(body, what):
    with pytest.raises(ConversionError) as err:
        trace(Feeds(body), torch.zeros(2, 3, T), T, input_layout="NT")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(what), message
