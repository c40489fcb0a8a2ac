"""Neuron state passed by hand (issue 12, items 5-6): `spk, mem = lif(cur, mem)` in a Python
loop inside forward, the style of snnTorch's tutorials, with a user's own neuron class so
the tracer's part is tested apart from any library.

The model runs its T steps in one call; the tracer reads the loop as one step's graph (the
neuron's k-th call is step k, known from the state it is handed), and the answer is decoded
from the spikes the model returns beside the membrane. Expected spikes come from the torch
model (forward hooks, float64), nothing from the tracer.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from snnc.backends.refsim import simulate
from snnc.frontends.torch import ConversionError, trace_model
from snnc.frontends.torch.check import check_trace
from snnc.ir import LIF

T = 4


class HandLIF(nn.Module):
    """Hard-reset LIF with its state passed by the caller: returns (spikes, membrane)."""

    def __init__(self, decay: float, threshold: float):
        super().__init__()
        self.decay = decay
        self.threshold = threshold

    def forward(self, x, mem):
        if mem.shape != x.shape:  # a fresh state: zeros(0), as snnTorch's init_leaky gives
            mem = torch.zeros_like(x)
        h = self.decay * mem + x
        spk = (h > self.threshold).to(x.dtype)
        return spk, h * (1.0 - spk)

    def init(self):
        return torch.zeros(0)


def convert_hand_lif(ctx, m, x):
    return ctx.emit(LIF(name=ctx.name, inputs=(x,), decay=m.decay, threshold=m.threshold,
                        compare=">", reset="hard"))


CONVERTERS = {HandLIF: convert_hand_lif}


class LoopNet(nn.Module):
    """fc -> LIF -> fc -> LIF over T steps of a frame (or of x[step] of a sequence)."""

    def __init__(self, sequence: bool = False, returns: str = "both"):
        super().__init__()
        torch.manual_seed(11)
        self.sequence = sequence
        self.returns = returns
        self.fc1 = nn.Linear(6, 8)
        self.lif1 = HandLIF(0.8, 0.5)
        self.fc2 = nn.Linear(8, 4)
        self.lif2 = HandLIF(0.6, 0.4)
        with torch.no_grad():
            self.fc1.weight.mul_(3.0)
            self.fc2.weight.mul_(3.0)

    def forward(self, x):
        mem1, mem2 = self.lif1.init(), self.lif2.init()
        spk_rec, mem_rec = [], []
        for step in range(T):
            cur1 = self.fc1(x[step] if self.sequence else x)
            spk1, mem1 = self.lif1(cur1, mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk_rec.append(spk2)
            mem_rec.append(mem2)
        if self.returns == "both":
            return torch.stack(spk_rec), torch.stack(mem_rec)
        if self.returns == "count":
            return torch.stack(spk_rec).sum(0)
        return torch.stack(mem_rec)


def record(model: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    net = copy.deepcopy(model).double().eval()
    seen: dict[str, list] = {"lif1": [], "lif2": []}
    hooks = [getattr(net, p).register_forward_hook(
        lambda m, a, out, p=p: seen[p].append(out[0].detach().clone())) for p in seen]
    with torch.no_grad():
        net(x.double())
    for h in hooks:
        h.remove()
    return {p: torch.stack(v).numpy() for p, v in seen.items()}


@pytest.mark.parametrize("sequence", [False, True], ids=["frame", "sequence"])
@pytest.mark.parametrize("returns", ["both", "count"])
def test_a_loop_passing_state_traces_to_one_steps_graph(sequence, returns):
    model = LoopNet(sequence, returns).eval()
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, (T, 10, 6) if sequence else (10, 6))
    example = torch.zeros(T, 2, 6) if sequence else torch.zeros(2, 6)
    result = trace_model(model, example, T, converters=CONVERTERS,
                         input_layout="TN" if sequence else None)
    assert result.step_mode == "single" and result.loops_inside
    assert [n.op for n in result.graph] == ["Input", "Dense", "LIF", "Dense", "LIF"]
    assert result.graph.outputs == ("lif2",)
    expected = record(model, torch.as_tensor(x))
    sim = simulate(result.graph, x, T)
    for name, spikes in expected.items():
        assert spikes.shape == (T, 10, 8 if name == "lif1" else 4)
        assert spikes.any() and not spikes.all(), f"{name} is silent or saturated"
        assert int((sim.spikes[name] != spikes.astype(bool)).sum()) == 0, name
    reads = {r.membrane: r for r in result.outputs}
    assert set(reads) == ({False, True} if returns == "both" else {False})
    assert reads[False].scale == (T if returns == "count" else 1.0)
    # the compile-time trace check agrees (it runs the model once per sample, too)
    check = check_trace(model, result, x, T)
    assert check.total_mismatches == 0 and check.output_max_abs_diff["lif2"] == 0.0


def _body(forward):
    class Net(LoopNet):
        pass
    Net.forward = forward
    return Net(returns="mem")


@pytest.mark.parametrize("forward, what", [
    (LoopNet.forward, "the model returns only the state (membrane) of neuron 'lif2'"),
    (lambda self, x: self.lif2(self.fc2(self.lif1(self.fc1(x), self.lif1.init())[1]),
                               self.lif2.init())[0],
     "module 'fc2' (Linear) reads the state (membrane) of neuron module 'lif1'"),
    (lambda self, x: self.lif1(self.fc1(x), torch.ones(2, 8))[0],
     "module 'lif1' (HandLIF) is called with a state that is not all zeros"),
    (lambda self, x: self.lif1(self.fc1(x), self.fc1(x))[0],
     "module 'lif1' (HandLIF) is called with extra tensors that are not the state it "
     "returned"),
])
def test_state_misuse_is_refused_on_one_line(forward, what):
    with pytest.raises(ConversionError) as err:
        trace_model(_body(forward).eval(), torch.zeros(2, 6), T, converters=CONVERTERS)
    message = str(err.value)
    assert "\n" not in message and message.startswith(what), message
