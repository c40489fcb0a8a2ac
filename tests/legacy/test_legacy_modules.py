"""The legacy spikingjelly API (`spikingjelly.clock_driven`, 0.0.0.0.12), against the legacy
package itself: runs in the legacy environment (.venv-legacy), `make test-legacy`.

Every mapped class must spike exactly like the legacy package's own forward (the trace check:
float64, every neuron layer and step, forward hooks on the modules) on inputs that make it
fire often, in single-step form (`LIFNode`, one call per step) and multi-step form
(`MultiStepLIFNode`, `[T, N, ...]` per call); every refused class fails on one line with the
module path, its type, the reason and what is accepted.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import spikingjelly
import torch
from spikingjelly.clock_driven import layer, neuron, surrogate
from torch import nn

from snnc.backends.refsim import simulate
from snnc.frontends.torch import ConversionError, ConvertContext, trace_model
from snnc.frontends.torch.check import check_trace
from snnc.frontends.torch.registry import find_converter, supported_types
from snnc.frontends.torch.spikingjelly_legacy import REFUSED, REFUSED_LAYERS
from snnc.ir import LIF, BatchNorm

T = 5
F_IN, F_HID, F_OUT = 16, 12, 5
W_LEARNED = 0.83  # PLIF's w after "training" (init_tau=2 gives w=0)


def test_this_is_the_legacy_package():
    assert spikingjelly.__file__ and not hasattr(__import__("spikingjelly"), "activation_based")
    from importlib.metadata import version

    assert version("spikingjelly") == "0.0.0.0.12"


class Net(nn.Module):
    """Linear -> sn -> Linear -> out neuron. Single-step ('s'): plain Linear on [N, 16], the
    caller loops; multi-step ('m'): Linear in a SeqToANNContainer on [T, N, 16], MultiStep
    neurons, the time-averaged output."""

    def __init__(self, sn: nn.Module, mode: str, fc1: nn.Module | None = None):
        super().__init__()
        torch.manual_seed(3)
        self.mode = mode
        wrap = (lambda m: layer.SeqToANNContainer(m)) if mode == "m" else (lambda m: m)
        self.fc1 = fc1 if fc1 is not None else wrap(nn.Linear(F_IN, F_HID))
        self.sn = sn
        self.fc2 = wrap(nn.Linear(F_HID, F_OUT))
        self.out = (neuron.MultiStepLIFNode if mode == "m" else neuron.LIFNode)(
            tau=2.0, v_threshold=0.4)
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() == 2:
                    p.mul_(4.0)

    def forward(self, x):
        y = self.out(self.fc2(self.sn(self.fc1(x))))
        return y.mean(0) if self.mode == "m" else y


def run_check(sn: nn.Module, mode: str, name: str = "sn", **kw):
    """Trace and check; returns (the trace, the firing rate of neuron `name`, the trace
    check)."""
    model = Net(sn, mode, **kw)
    rng = np.random.default_rng(7)
    if mode == "m":
        result = trace_model(model, torch.zeros(T, 2, F_IN), T, input_layout="TN")
        x = rng.uniform(-0.5, 1.5, (T, 16, F_IN))
    else:
        result = trace_model(model, torch.zeros(2, F_IN), T)
        x = rng.uniform(-0.5, 1.5, (16, F_IN))
    report = check_trace(model, result, x, T)
    rate = float(simulate(result.graph, x, T).spikes[name].mean())
    return result, rate, report


def assert_exact(sn: nn.Module, mode: str, name: str = "sn", **kw) -> LIF:
    result, rate, report = run_check(sn, mode, name, **kw)
    assert result.step_mode == {"s": "single", "m": "multi"}[mode]
    assert report.total_mismatches == 0, report.table()
    assert [a.name for a in report.layers] == [name, "out"]
    assert all(a.compared > 0 for a in report.layers)
    assert 0.15 < rate < 0.85, rate  # fires often, and not always
    return result.graph[name]


def single_or_multi(single: type, multi: type, mode: str, **kw) -> nn.Module:
    return (multi if mode == "m" else single)(**kw)


# -- the mapped neurons ----------------------------------------------------------------------

RESETS = {"hard0": 0.0, "hard-0.3": -0.3, "soft": None}


@pytest.mark.parametrize("mode", ["s", "m"])
@pytest.mark.parametrize("reset", sorted(RESETS))
@pytest.mark.parametrize("decay_input", [True, False])
def test_lif_traces_exactly(decay_input, reset, mode):
    sn = single_or_multi(neuron.LIFNode, neuron.MultiStepLIFNode, mode, tau=1.5,
                         decay_input=decay_input, v_threshold=0.6, v_reset=RESETS[reset],
                         surrogate_function=surrogate.ATan())
    node = assert_exact(sn, mode)
    assert node.decay == pytest.approx(1.0 - 1.0 / 1.5)
    assert node.gain == pytest.approx(1.0 / 1.5 if decay_input else 1.0)
    assert (node.reset, node.v_reset) == (("soft", 0.0) if reset == "soft"
                                          else ("hard", RESETS[reset]))
    assert (node.threshold, node.compare) == (pytest.approx(0.6), ">=")


@pytest.mark.parametrize("mode", ["s", "m"])
@pytest.mark.parametrize("reset", sorted(RESETS))
def test_if_traces_exactly(reset, mode):
    sn = single_or_multi(neuron.IFNode, neuron.MultiStepIFNode, mode, v_threshold=0.8,
                         v_reset=RESETS[reset])
    node = assert_exact(sn, mode)
    assert (node.decay, node.gain) == (1.0, 1.0)


@pytest.mark.parametrize("mode", ["s", "m"])
@pytest.mark.parametrize("reset", sorted(RESETS))
@pytest.mark.parametrize("decay_input", [True, False])
def test_plif_traces_exactly_with_its_learned_tau(decay_input, reset, mode):
    sn = single_or_multi(neuron.ParametricLIFNode, neuron.MultiStepParametricLIFNode, mode,
                         init_tau=2.0, decay_input=decay_input, v_threshold=0.6,
                         v_reset=RESETS[reset])
    with torch.no_grad():
        sn.w.fill_(W_LEARNED)
    node = assert_exact(sn, mode)
    q = 1.0 / (1.0 + math.exp(-float(np.float32(W_LEARNED))))  # 1/tau of the float32 w
    assert node.decay == pytest.approx(1.0 - q, abs=1e-12)
    assert node.gain == pytest.approx(q if decay_input else 1.0, abs=1e-12)


def test_detach_reset_and_cupy_fp32_inference_do_not_change_the_cpu_forward():
    """detach_reset only changes gradients; cupy_fp32_inference only acts on a CUDA device
    (it needs cupy, which this environment lacks, so it is set after construction)."""
    sn = neuron.LIFNode(tau=2.0, v_threshold=0.6, detach_reset=True)
    sn.cupy_fp32_inference = True
    assert_exact(sn, "s")


# -- containers, dropout, tdBN ----------------------------------------------------------------

def test_multi_step_container_runs_single_step_modules_over_the_sequence():
    """MultiStepContainer(Linear, IFNode): the legacy way to make single-step modules
    multi-step; its children are converted in order, and the neuron keeps its state across
    the steps the container loops over."""
    fc1 = layer.MultiStepContainer(nn.Linear(F_IN, F_HID))
    sn = layer.MultiStepContainer(neuron.IFNode(v_threshold=0.6, v_reset=None))
    node = assert_exact(sn, "m", "sn.0", fc1=fc1)
    assert isinstance(node, LIF) and node.reset == "soft"


@pytest.mark.parametrize("mode, cls", [
    ("s", layer.Dropout), ("s", layer.Dropout2d),
    ("m", layer.MultiStepDropout), ("m", layer.MultiStepDropout2d)])
def test_dropout_is_the_identity_at_inference(mode, cls):
    """The legacy dropouts keep one mask per sample in training and return their input at
    inference (the 2d ones make their channel mask only in training, so any shape does)."""
    sn = single_or_multi(neuron.LIFNode, neuron.MultiStepLIFNode, mode, tau=1.5,
                         v_threshold=0.6)
    assert_exact(nn.Sequential(cls(0.5), sn), mode, "sn.1")
    result, _, _ = run_check(nn.Sequential(cls(0.5), sn), mode, "sn.1")
    assert [n.op for n in result.graph] == ["Input", "Dense", "LIF", "Dense", "LIF"]


@pytest.mark.parametrize("dims", [1, 2])
def test_tdbn_is_batch_norm_over_the_merged_batch(dims):
    """MultiStepThresholdDependentBatchNorm{1,2}d at inference: (x - mean) / sqrt(var + eps)
    * weight + bias per channel, the same for every step (numpy here, against the module),
    and the IR BatchNorm node holds those statistics."""
    c = 6
    cls = getattr(layer, f"MultiStepThresholdDependentBatchNorm{dims}d")
    bn = cls(alpha=1.0 / math.sqrt(2.0), v_th=0.5, num_features=c)
    rng = np.random.default_rng(2)
    with torch.no_grad():
        bn.running_mean.copy_(torch.from_numpy(rng.normal(0, 1, c)))
        bn.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2, c)))
        bn.bias.copy_(torch.from_numpy(rng.normal(0, 0.3, c)))
    assert torch.allclose(bn.weight, torch.full((c,), 0.5 / math.sqrt(2.0)))  # alpha * v_th
    bn.eval()
    shape = (T, 3, c) if dims == 1 else (T, 3, c, 4, 4)
    x = rng.normal(0, 1, shape)
    view = (1, 1, c) + (1,) * (len(shape) - 3)
    mean, var = (bn.running_mean.double().numpy().reshape(view),
                 bn.running_var.double().numpy().reshape(view))
    w, b = bn.weight.double().detach().numpy().reshape(view), \
        bn.bias.double().detach().numpy().reshape(view)
    expected = (x - mean) / np.sqrt(var + bn.eps) * w + b
    with torch.no_grad():
        got = bn.double()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)

    if dims == 1:
        model = Net(nn.Sequential(bn.float(), neuron.MultiStepLIFNode(tau=2.0,
                                                                       v_threshold=0.2)),
                    "m", fc1=layer.SeqToANNContainer(nn.Linear(F_IN, c)))
        model.fc2 = layer.SeqToANNContainer(nn.Linear(c, F_OUT))
        result = trace_model(model, torch.zeros(T, 2, F_IN), T, input_layout="TN")
        x_in = np.random.default_rng(7).uniform(-0.5, 1.5, (T, 16, F_IN))
        report = check_trace(model, result, x_in, T)
        assert report.total_mismatches == 0, report.table()
        (node,) = [n for n in result.graph if isinstance(n, BatchNorm)]
        np.testing.assert_array_equal(node.mean, bn.running_mean.numpy())
        np.testing.assert_array_equal(node.weight, bn.weight.detach().numpy())


# -- refusals --------------------------------------------------------------------------------

def one_line(err, path: str, type_name: str, *fragments: str) -> str:
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"module '{path}' ({type_name}): "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


REFUSED_RUNS = {  # constructed and run in a model: the error comes from the trace
    "QIFNode": (lambda: neuron.QIFNode(), "quadratic membrane dynamics (QIF)"),
    "EIFNode": (lambda: neuron.EIFNode(), "exponential membrane dynamics (EIF)"),
    "LIAFNode": (lambda: neuron.LIAFNode(torch.relu, False), "analog activation"),
}


@pytest.mark.parametrize("name", sorted(REFUSED_RUNS))
def test_refused_neurons_fail_in_one_line_with_the_reason(name):
    make, *fragments = REFUSED_RUNS[name]
    with pytest.raises(ConversionError) as err:
        run_check(make(), "s")
    one_line(err, "sn", name, *fragments, "accepted from spikingjelly.clock_driven: IFNode")


def test_multi_step_eif_is_refused_too():
    with pytest.raises(ConversionError) as err:
        run_check(neuron.MultiStepEIFNode(), "m")
    one_line(err, "sn", "MultiStepEIFNode", "exponential membrane dynamics")


def test_every_refused_class_has_a_specific_reason():
    """Each class of the two refusal tables gets its own reason from the registered
    converter (not the generic 'is not supported'), without having to run it."""
    for table, module in ((REFUSED, neuron), (REFUSED_LAYERS, layer)):
        for name in table:
            cls = getattr(module, name)
            m = cls.__new__(cls)
            nn.Module.__init__(m)
            ctx = ConvertContext("sn", T, {}, lambda node: node.name, None)
            with pytest.raises(ConversionError) as err:
                find_converter(m)(ctx, m, "x")
            message = one_line(err, "sn", name, table[name], "; accepted from ")
            assert "not supported" not in message


def test_a_subclass_that_overrides_the_update_is_refused_not_traced_as_its_base():
    """The CLIF authors' neuron without a converter: a LIFNode subclass with its own
    neuronal_charge must not compile as a LIFNode."""

    class MyCLIF(neuron.LIFNode):
        def __init__(self, tau=2.0, decay_input=False, v_threshold=1.0, v_reset=None,
                     surrogate_function=None, detach_reset=False,
                     cupy_fp32_inference=False):
            super().__init__(tau, decay_input, v_threshold, v_reset,
                             surrogate_function or surrogate.ATan(),
                             detach_reset, cupy_fp32_inference)
            self.register_memory("m", 0.0)

        def neuronal_charge(self, x):
            super().neuronal_charge(x)
            self.m = self.m * torch.sigmoid(self.v / self.tau)

    with pytest.raises(ConversionError) as err:
        run_check(MyCLIF(), "s")
    one_line(err, "sn", "MyCLIF", "subclasses LIFNode and overrides neuronal_charge",
             "register a converter for the class")


def test_a_multi_step_subclass_that_overrides_forward_is_refused():
    class Doubled(neuron.MultiStepIFNode):
        def forward(self, x_seq):
            return super().forward(2 * x_seq)

    with pytest.raises(ConversionError) as err:
        run_check(Doubled(), "m")
    one_line(err, "sn", "Doubled", "subclasses MultiStepIFNode and overrides forward")


def test_a_non_spiking_surrogate_is_refused():
    sn = neuron.LIFNode(surrogate_function=surrogate.Sigmoid(spiking=False))
    with pytest.raises(ConversionError) as err:
        run_check(sn, "s")
    one_line(err, "sn", "LIFNode", "does not output binary spikes")


def test_another_backend_is_refused():
    """backend='cupy' needs cupy (and CUDA tensors) to run, which this environment lacks, so
    the converter is called directly here."""
    sn = neuron.MultiStepLIFNode(tau=2.0)
    sn.backend = "cupy"
    ctx = ConvertContext("sn", T, {}, lambda node: node.name, None)
    with pytest.raises(ConversionError) as err:
        find_converter(sn)(ctx, sn, "x")
    one_line(err, "sn", "MultiStepLIFNode", "backend='cupy'", "backend='torch'")


def test_the_legacy_classes_are_listed_as_supported_and_the_refused_ones_not():
    names = supported_types()
    for name in ("neuron.LIFNode", "neuron.MultiStepParametricLIFNode",
                 "layer.MultiStepContainer", "layer.MultiStepThresholdDependentBatchNorm2d"):
        assert f"spikingjelly.clock_driven.{name}" in names
    assert not any(n.endswith(".QIFNode") or n.endswith(".NeuNorm") for n in names)
