"""The Lava backend's per-type tables: which neuron type runs as which SnncNeuron kind, the
kinds each model steps, and what validation checks; a new neuron type is refused by each.

The lowering registry (`@lowering`) already refuses a type without a lowering; the tables
here are what a lowering looks up, so a new type that is given a lowering (or reaches it some
other way) still cannot run as a look-alike of an old one. The widths Lava's own LIF model
uses are compared with the one width table, figures written out here from lava-nc 0.10's
source (AbstractPyLifModelFixed.__init__).
"""

import dataclasses
from types import MappingProxyType

import numpy as np
import pytest
from lava.proc.lif.models import PyLifModelBitAcc

from snnc.backends.lava import lower, validate
from snnc.backends.lava.models import processes
from snnc.backends.lava.validate import LavaBuildError, validate_for_lava
from snnc.errors import UnsupportedNodeError
from snnc.ir import LIF, NODE_TYPES, FxLIF, FxNeuron, Graph, Neuron
from snnc.ir.fixed import INT_FIELDS
from snnc.ir.widths import FORMAT
from snnc.targets import LOIHI2
from snnc.tools.pass_runner import compile_graph

pytestmark = pytest.mark.timeout(120)
T = 2

FIXED_NEURONS = {t for t in NODE_TYPES.values() if issubclass(t, FxNeuron)}
FLOAT_NEURONS = {t for t in NODE_TYPES.values()
                 if issubclass(t, Neuron) and not issubclass(t, FxNeuron)}


@pytest.fixture(scope="module")
def graphs(residual_graph):
    """(float, fixed) residual graphs: LIF hard and soft, CLIF, a readout."""
    g = residual_graph(np.random.default_rng(3), True)
    return g, compile_graph(g, LOIHI2, timesteps=T).graph


def retyped(graph: Graph, name: str, cls) -> Graph:
    """The graph with node `name` re-made as `cls` (same fields), without Graph.build."""
    node = graph[name]
    nodes = dict(graph.nodes)
    nodes[name] = cls(**{f.name: getattr(node, f.name) for f in dataclasses.fields(node)})
    return Graph(MappingProxyType(nodes), graph.outputs)


# -- coverage ------------------------------------------------------------------------------------

def test_every_neuron_type_has_a_kind_at_each_precision():
    assert set(lower.FIXED_NEURONS) == FIXED_NEURONS
    assert set(lower.FLOAT_NEURONS) == FLOAT_NEURONS


def test_each_model_steps_every_kind():
    kinds = set(processes.KINDS.values())
    assert set(processes.PySnncNeuronFixed.STEPS) == kinds
    assert set(processes.PySnncNeuronFloat.STEPS) == kinds


def test_validation_checks_every_fixed_point_type_the_width_table_knows():
    assert set(validate.CHECKS) == set(INT_FIELDS)


def test_lavas_own_lif_words_are_the_width_table():
    m = PyLifModelBitAcc({})
    # lava-nc 0.10: uv_bitwidth 24, decay_shift 12 (unity 4096), vth_shift 6, act_shift 6
    assert (m.uv_bitwidth, m.decay_shift, m.vth_shift, m.act_shift) == (24, 12, 6, 6)
    assert (FORMAT.state_bits, FORMAT.decay_bits, FORMAT.vth_shift, FORMAT.act_shift) == \
        (m.uv_bitwidth, m.decay_shift, m.vth_shift, m.act_shift)
    assert FORMAT.decay_unity == m.decay_unity


# -- a new neuron type ---------------------------------------------------------------------------

def test_validation_names_a_fixed_point_type_it_has_no_checks_for(graphs, new_types):
    _, fxplif = new_types
    with pytest.raises(LavaBuildError) as err:
        validate_for_lava(retyped(graphs[1], "sn_b", fxplif))
    assert "layer 'sn_b' (FxPLIF) is not a fixed-point node run_fixed runs" in str(err.value)
    assert ("supported types: Add, FxCLIF, FxChannelSlice, FxConv2d, FxCubaLIF, FxDense, "
            "FxInput, FxLIF, FxMerge, FxPartialSum, FxReadout") in str(err.value)


def test_the_fixed_kind_table_refuses_a_new_type_given_a_lowering(graphs, new_types,
                                                                   monkeypatch):
    """A developer registers the FxLIF lowering (and its checks) for a new type but gives it
    no kind: it must not run as an FxLIF."""
    _, fxplif = new_types
    monkeypatch.setitem(lower.LOWERINGS, fxplif, lower.LOWERINGS[FxLIF])
    monkeypatch.setitem(validate.CHECKS, fxplif, validate.CHECKS[FxLIF])
    monkeypatch.setitem(INT_FIELDS, fxplif, INT_FIELDS[FxLIF])
    with pytest.raises(UnsupportedNodeError) as err:
        lower.run_fixed(retyped(graphs[1], "sn_b", fxplif), np.zeros((1, 3, 5, 5)), T)
    message = str(err.value)
    assert "the Lava fixed_pt neuron model cannot handle node 'sn_b' of type FxPLIF" in message
    assert "supported types: FxCLIF, FxCubaLIF, FxLIF, FxReadout" in message


def test_the_float_kind_table_refuses_a_new_type_given_a_lowering(graphs, new_types,
                                                                  monkeypatch):
    plif, _ = new_types
    monkeypatch.setitem(lower.LOWERINGS, plif, lower.LOWERINGS[LIF])
    with pytest.raises(UnsupportedNodeError) as err:
        lower.run_float(retyped(graphs[0], "sn_b", plif), np.zeros((1, 3, 5, 5)), T)
    message = str(err.value)
    assert "the Lava floating_pt neuron model cannot handle node 'sn_b' of type PLIF" in message
    assert "supported types: CLIF, CubaLIF, LIF, Readout" in message


def test_a_kind_no_model_steps_is_refused_when_the_process_is_built():
    params = processes.FloatParams(threshold=np.ones(2), bias=np.zeros(2), decay=1.0)
    with pytest.raises(LavaBuildError, match="SnncNeuron kind 'plif' is not one its models "
                                             "run; known kinds: hard, soft, clif, readout"):
        processes.SnncNeuron(shape=(2,), steps=2, kind="plif", start=0, end=2, period=3,
                             params=params, record_file="unused.npy")
