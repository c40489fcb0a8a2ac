"""What the tracer refuses, and how it says so: module path, type, and what is supported."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn

from snnc.frontends.torch import ConversionError, trace, trace_model
from snnc.ir import LIF, Dense

T = 4


class Net(nn.Module):
    """conv -> extra -> LIF -> flatten -> fc, single-step unless told otherwise."""

    def __init__(self, extra: nn.Module | None = None, mode: str = "s"):
        super().__init__()
        self.conv = layer.Conv2d(1, 2, 3, padding=1, step_mode=mode)
        self.extra = extra or nn.Identity()
        self.sn = neuron.LIFNode(step_mode=mode)
        self.flat = layer.Flatten(step_mode=mode)
        self.fc = layer.Linear(2 * 4 * 4, 3, step_mode=mode)

    def forward(self, x):
        return self.fc(self.flat(self.sn(self.extra(self.conv(x)))))


def trace_net(model, x=None, **kw):
    return trace(model, torch.zeros(2, 1, 4, 4) if x is None else x, T, **kw)


def test_unsupported_module_names_path_type_and_supported_list():
    with pytest.raises(ConversionError) as info:
        trace_net(Net(nn.ReLU()))
    message = str(info.value)
    assert "module 'extra' (torch.nn.modules.activation.ReLU) is not supported" in message
    assert "torch.nn.Conv2d" in message and "spikingjelly.activation_based.neuron.LIFNode" \
        in message
    assert "Register a converter" in message


def test_max_pooling_is_refused_with_its_reason():
    with pytest.raises(ConversionError, match=r"module 'extra' .*MaxPool2d.*max pooling over "
                                              r"spikes has no exact lowering on Loihi"):
        trace_net(Net(nn.MaxPool2d(1)))


class Doubler(nn.Module):
    def forward(self, x):
        return self.inner(x) * 2

    def __init__(self):
        super().__init__()
        self.inner = nn.Identity()


def test_unsupported_function_names_it_and_the_module():
    with pytest.raises(ConversionError, match=r"torch function 'mul' in module 'extra' is "
                                              r"not supported on traced values"):
        trace_net(Net(Doubler()))


class AddConstant(nn.Module):
    def __init__(self):
        super().__init__()
        self.inner = nn.Identity()

    def forward(self, x):
        return self.inner(x) + 1.0


def test_adding_a_constant_is_refused():
    with pytest.raises(ConversionError, match="only the sum of two traced values"):
        trace_net(Net(AddConstant()))


def test_ambiguous_example_input_asks_for_the_shape():
    with pytest.raises(ConversionError, match=r"cannot tell whether the example input of shape "
                                              r"\[4, 1, 4, 4\] is \[T=4, N, ...\]"):
        trace_net(Net(), torch.zeros(4, 1, 4, 4))
    assert trace_net(Net(), torch.zeros(4, 1, 4, 4), input_shape=(1, 4, 4)) is not None


def test_requested_step_mode_is_checked():
    with pytest.raises(ConversionError, match=r"step_mode='multi' was requested, but neuron "
                                              r"'sn' runs single-step"):
        trace_net(Net(), step_mode="multi")
    with pytest.raises(ConversionError, match="step_mode must be one of"):
        trace_net(Net(), step_mode="both")


def test_a_model_without_neurons_is_refused():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    with pytest.raises(ConversionError, match="no spiking neuron modules that snnc recognizes"):
        trace_net(model)


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.sn = neuron.LIFNode()

    def forward(self, x):
        return self.sn(self.fc(self.sn(x)))


def test_a_neuron_called_twice_per_step_is_refused():
    with pytest.raises(ConversionError, match=r"module 'sn' \(LIFNode\) is called more than "
                                              r"once per step"):
        trace(Twice(), torch.zeros(2, 4), T)


def test_nan_weights_name_the_tensor():
    model = Net()
    with torch.no_grad():
        model.fc.weight[0, 0] = float("nan")
    with pytest.raises(ConversionError, match=r"fc.weight holds 1 NaN or infinite value"):
        trace_net(model)


def test_a_model_that_fails_on_the_input_says_so():
    with pytest.raises(ConversionError, match=r"running the model on an input of shape "
                                              r"\[5, 2, 4, 4\] failed: RuntimeError"):
        trace_net(Net(), torch.zeros(2, 2, 4, 4))


def test_non_spiking_surrogate_is_refused():
    from spikingjelly.activation_based import surrogate

    sg = surrogate.Sigmoid(spiking=False)
    with pytest.raises(ConversionError, match="non-spiking surrogate"):
        trace_net(Net(neuron.IFNode(surrogate_function=sg)))


class Scale(nn.Module):
    """A user's module: multiplies by a fixed factor."""

    def __init__(self, k: float):
        super().__init__()
        self.k = k

    def forward(self, x):
        return x * self.k


class ScaledModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.scale = Scale(0.5)
        self.sn = neuron.IFNode()

    def forward(self, x):
        return self.sn(self.scale(self.fc(x)))


def test_per_call_converters_extend_the_registry():
    def scale(ctx, m, x):
        n = ctx.shape(x)[0]
        return ctx.emit(Dense(name=ctx.name, inputs=(x,), weight=m.k * np.eye(n)))

    with pytest.raises(ConversionError, match=r"module 'scale' \(.*Scale\) is not supported"):
        trace(ScaledModel(), torch.zeros(2, 3), T)
    graph = trace(ScaledModel(), torch.zeros(2, 3), T, converters={Scale: scale})
    assert graph["scale"].op == "Dense"
    assert "Scale" not in str(sorted(n.op for n in graph))


def test_a_converter_that_misreads_the_output_shape_is_caught():
    def wrong(ctx, m, x):  # claims the output has as many features as the input... times 2
        n = ctx.shape(x)[0]
        return ctx.emit(Dense(name=ctx.name, inputs=(x,), weight=np.ones((2 * n, n))))

    with pytest.raises(ConversionError, match=r"module 'scale' .*its converter describes an "
                                              r"output of per-sample shape \(6,\), but the "
                                              r"module returned a tensor of shape \(5, 3\)"):
        trace(ScaledModel(), torch.zeros(2, 3), T, converters={Scale: wrong})


def test_neuron_names_follow_module_paths():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3)
            self.sn1 = neuron.LIFNode()

        def forward(self, x):
            return self.sn1(self.fc(x)) + x

    model = nn.Sequential(nn.Linear(3, 3), neuron.IFNode(), nn.Sequential(Block(), Block()))
    result = trace_model(model, torch.zeros(2, 3), T)
    neurons = [n.name for n in result.graph if isinstance(n, LIF)]
    assert neurons == ["1", "2.0.sn1", "2.1.sn1"]
    assert "2.0.add" in result.graph.nodes
