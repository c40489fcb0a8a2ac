"""Output decoding (issue 12, item 6): a model may return spikes, a potential, or both; the
answer is read by spike count (argmax, first maximum, as torch) or by potential, and
`decode` chooses where both exist. The float graph's predictions must be the torch model's
own, computed here from the torch model's outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional, neuron
from torch import nn

from snnc.backends.refsim import simulate
from snnc.frontends.torch import ConversionError, trace_model
from snnc.ir import Readout
from snnc.tools.evaluate import predictions

T = 4


class Both(nn.Module):
    """Single-step: returns (output spikes, the potential that drives them)."""

    def __init__(self, returns: str = "both"):
        super().__init__()
        torch.manual_seed(2)
        self.returns = returns
        self.fc1 = nn.Linear(6, 12)
        self.sn1 = neuron.IFNode(v_threshold=0.5)
        self.fc2 = nn.Linear(12, 5)
        self.sn2 = neuron.IFNode(v_threshold=0.5)
        with torch.no_grad():
            self.fc1.weight.mul_(3.0)
            self.fc2.weight.mul_(2.0)

    def forward(self, x):
        potential = self.fc2(self.sn1(self.fc1(x)))
        spikes = self.sn2(potential)
        return {"both": (spikes, potential), "spikes": spikes,
                "potential": potential}[self.returns]


def torch_answers(model: nn.Module, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spike counts and summed potentials over T calls of the torch model (float64)."""
    net = model.double().eval()
    functional.reset_net(net)
    with torch.no_grad():
        outs = [net(torch.as_tensor(x)) for _ in range(T)]
    functional.reset_net(net)
    model.float()
    count = torch.stack([o[0] for o in outs]).sum(0).numpy()
    potential = torch.stack([o[1] for o in outs]).sum(0).numpy()
    return count, potential


@pytest.mark.parametrize("decode, output_op", [
    ("auto", "IFNode"), ("count", "IFNode"), ("potential", "Readout"),
])
def test_decode_chooses_between_spikes_and_potential(decode, output_op):
    model = Both().eval()
    x = np.random.default_rng(4).uniform(-1, 1, (200, 6))
    result = trace_model(model, torch.zeros(2, 6), T, decode=decode)
    (out,) = result.graph.outputs
    node = result.graph[out]
    assert isinstance(node, Readout) == (output_op == "Readout")
    assert [r.decoded for r in result.outputs] == [output_op != "Readout", output_op == "Readout"]
    count, potential = torch_answers(model, x)
    expected = np.argmax(count if output_op != "Readout" else potential, axis=1)
    tied = int(((count == count.max(1, keepdims=True)).sum(1) > 1).sum())
    if output_op != "Readout":  # spike counts tie often: argmax takes the first maximum
        assert tied > 10
    got = predictions(result.graph, simulate(result.graph, x, T))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("returns, decode, what", [
    ("spikes", "potential", "decode (--decode) 'potential' reads the answer from a potential, "
                            "but the model returns only spikes; use --decode count or auto"),
    ("potential", "count", "decode (--decode) 'count' reads the answer from spike counts, but "
                           "the model returns only a potential (non-spiking values); use "
                           "--decode potential or auto"),
    ("both", "votes", "decode (--decode) = 'votes'; expected one of auto, count, potential"),
])
def test_a_decode_the_model_cannot_give_is_refused(returns, decode, what):
    with pytest.raises(ConversionError) as err:
        trace_model(Both(returns).eval(), torch.zeros(2, 6), T, decode=decode)
    assert str(err.value) == what
