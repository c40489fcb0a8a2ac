"""The lowering registry: which node types lower to Lava, and the errors for the rest."""

import numpy as np
import pytest

from snnc.backends.lava import lower
from snnc.backends.lava.validate import LavaBuildError
from snnc.errors import SimulationInputError, UnsupportedNodeError
from snnc.ir import (
    CLIF,
    LIF,
    Add,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    CubaLIF,
    Dense,
    FxChannelSlice,
    FxCLIF,
    FxConv2d,
    FxCubaLIF,
    FxDense,
    FxInput,
    FxLIF,
    FxMerge,
    FxPartialSum,
    FxReadout,
    Graph,
    Input,
    Readout,
)
from snnc.targets import LOIHI2
from snnc.tools.pass_runner import compile_graph

pytestmark = pytest.mark.timeout(120)
T = 2


def test_fixed_and_float_node_types_share_one_registry():
    assert set(lower.LOWERINGS) == {FxInput, FxConv2d, FxDense, FxLIF, FxCLIF, FxCubaLIF,
                                    FxReadout, Add, Input, Conv2d, Dense, LIF, CLIF, CubaLIF,
                                    Readout, FxChannelSlice, FxPartialSum, FxMerge}


def test_a_type_registers_once():
    with pytest.raises(TypeError, match="already registered"):
        lower.lowering(LIF)(lambda node, build: [])


def _with_batch_norm() -> Graph:
    c = 2
    return Graph.build([
        Input(name="x", shape=(c, 4, 4)),
        Conv2d(name="conv", inputs=("x",), weight=np.ones((c, c, 3, 3)), padding=(1, 1)),
        BatchNorm(name="bn", inputs=("conv",), mean=np.zeros(c), var=np.ones(c),
                  weight=np.ones(c), bias=np.zeros(c)),
        LIF(name="sn", inputs=("bn",), decay=0.5, threshold=1.0),
    ])


@pytest.mark.parametrize("run", ["run_float", "run_fixed"])
def test_a_node_without_lowering_is_named_with_the_supported_types(monkeypatch, run):
    monkeypatch.setattr(lower, "GradedSource", None)  # nothing may be built
    with pytest.raises(UnsupportedNodeError) as err:
        getattr(lower, run)(_with_batch_norm(), np.zeros((1, 2, 4, 4)), T)
    message = str(err.value)
    assert "node 'bn' of type BatchNorm" in message
    assert "supported types: Add, CLIF, Conv2d, CubaLIF, Dense, FxCLIF" in message
    assert (err.value.node_name, err.value.node_type) == ("bn", "BatchNorm")


def test_a_pool_between_neurons_is_unsupported_until_folded():
    graph = Graph.build([
        Input(name="x", shape=(1, 4, 4)),
        Conv2d(name="conv", inputs=("x",), weight=np.ones((1, 1, 1, 1))),
        LIF(name="sn", inputs=("conv",), decay=0.5, threshold=1.0),
        AvgPool2d(name="pool", inputs=("sn",), kernel=(2, 2), stride=(2, 2)),
    ])
    with pytest.raises(UnsupportedNodeError, match="node 'pool' of type AvgPool2d"):
        lower.run_float(graph, np.zeros((1, 1, 4, 4)), T)


def test_a_neuron_reading_the_input_directly_is_refused():
    graph = Graph.build([Input(name="x", shape=(3,)),
                         LIF(name="sn", inputs=("x",), decay=0.5, threshold=1.0)])
    with pytest.raises(LavaBuildError, match="layer 'sn' \\(LIF\\) reads 'x' \\(Input\\)"):
        lower.run_float(graph, np.zeros((1, 3)), T)


def test_run_float_refuses_a_quantized_graph(residual_graph):
    graph = compile_graph(residual_graph(np.random.default_rng(0)), LOIHI2, timesteps=T).graph
    with pytest.raises(LavaBuildError, match="layer 'x' \\(FxInput\\) is fixed-point"):
        lower.run_float(graph, np.zeros((1, 3, 5, 5)), T)


@pytest.mark.parametrize("shape, text", [((1, 3, 5, 4), "expected an array shaped"),
                                         ((T + 1, 1, 3, 5, 5), "has 3 time steps")])
def test_an_input_of_the_wrong_shape_is_refused(residual_graph, shape, text):
    with pytest.raises(SimulationInputError, match=text):
        lower.run_float(residual_graph(np.random.default_rng(0)), np.zeros(shape), T)
