"""Per-type rule tables and targets as data (no torch, no lava: both environments).

Every stage that interprets a neuron keys its rules by exact node type and refuses a type it
has no rule for, naming the node, its type and the types it supports; a coverage test per
stage holds the table to the IR's node types. Every width, shift and unit comes from the
target's one width table: a target with other widths changes what quantize and range
analysis do. Integer fields outside the widths (the weight exponent included) are refused or
reported on the reference simulator's path: Graph.build and the artifact loader, range
analysis, simulate.

Expected values are worked out by hand in the comments, from the equations in
snnc/ir/fixed.py, not read from the code under test.
"""

from __future__ import annotations

import dataclasses
import typing
from types import MappingProxyType

import numpy as np
import pytest

from snnc.analyses import range_analysis
from snnc.analyses.range_analysis import analyze_ranges
from snnc.artifact import Artifact, read_artifact, write_artifact
from snnc.backends.refsim import simulate
from snnc.errors import GraphError, SimulationInputError, SnncError, UnsupportedNodeError
from snnc.ir import (
    LIF,
    NODE_TYPES,
    Add,
    Dense,
    FxDense,
    FxInput,
    FxLIF,
    FxNeuron,
    Graph,
    Input,
    Neuron,
    Readout,
)
from snnc.ir.fixed import INT_FIELDS, width_problems
from snnc.ir.widths import FORMAT, Widths
from snnc.passes import quantize as quantize_module
from snnc.passes.quantize import QuantizationError, quantize
from snnc.targets import LOIHI2, Target

FIXED_NEURONS = {t for t in NODE_TYPES.values() if issubclass(t, FxNeuron)}
FLOAT_NEURONS = {t for t in NODE_TYPES.values()
                 if issubclass(t, Neuron) and not issubclass(t, FxNeuron)}
FIXED_TYPES = {t for name, t in NODE_TYPES.items() if name.startswith("Fx")} | {Add}


# -- a new neuron type, as a developer would add one -------------------------------------------

def float_net(neuron_cls=LIF) -> Graph:
    return Graph.build([
        Input(name="x", shape=(4,), encoding="spikes"),
        Dense(name="fc", inputs=("x",), weight=np.full((3, 4), 0.25)),
        neuron_cls(name="sn", inputs=("fc",), decay=0.5, threshold=1.0),
        Dense(name="head", inputs=("sn",), weight=np.full((2, 3), 0.5)),
        Readout(name="out", inputs=("head",)),
    ])


def fixed_net(weight: np.ndarray, du: int = 4095, vth: int = 1 << 10) -> Graph:
    """Spike input -> one FxDense -> one hard-reset FxLIF (no leak), weight_exp 0."""
    n = weight.shape[1]
    return Graph.build([
        FxInput(name="x", shape=(n,), bits=1, scale=1.0, encoding="spikes"),
        FxDense(name="syn", inputs=("x",), weight=weight),
        FxLIF(name="sn", inputs=("syn",), dv=0, du=du, vth=vth),
    ])


def swap(graph: Graph, node) -> Graph:
    """The graph with one node replaced, without Graph.build's checks (as another tool, or an
    edit in place, could produce)."""
    nodes = dict(graph.nodes)
    nodes[node.name] = node if node.type is not None else node.replace(
        type=graph[node.name].type)
    return Graph(MappingProxyType(nodes), graph.outputs)


def as_type(cls, node):
    """`node` re-made as an instance of `cls` (a subclass of its type), same fields."""
    fields = {f.name: getattr(node, f.name) for f in dataclasses.fields(node)}
    return cls(**fields)


# -- coverage: each stage's table against the IR's node types ----------------------------------

def test_quantize_has_a_rule_for_every_float_neuron_type():
    assert set(quantize_module.NEURON_RULES) == FLOAT_NEURONS


def test_range_analysis_has_a_rule_for_every_fixed_neuron_type():
    assert set(range_analysis.RULES) == FIXED_NEURONS


def test_the_width_check_covers_every_fixed_point_type_and_integer_field():
    assert set(INT_FIELDS) == FIXED_TYPES
    for cls, fields in INT_FIELDS.items():
        own = {f.name for f in dataclasses.fields(cls)}
        assert set(fields) <= own, cls
        assert set(fields) - {"weight"} <= set(FORMAT.ranges), cls
    # every integer field of a fixed-point neuron is a word of the format
    for cls in FIXED_NEURONS:
        hints = typing.get_type_hints(cls)
        integer = {f.name for f in dataclasses.fields(cls)
                   if f.name not in ("name", "inputs", "type")
                   and ("int" in str(hints[f.name]) or "ndarray" in str(hints[f.name]))}
        assert integer == set(INT_FIELDS[cls]), cls


# -- a new neuron type is refused at every stage -------------------------------------------------

def test_quantize_refuses_a_neuron_type_it_has_no_rule_for(new_types):
    plif, _ = new_types
    with pytest.raises(UnsupportedNodeError) as err:
        quantize(float_net(plif))
    message = str(err.value)
    assert "node 'sn' of type PLIF" in message and "quantize" in message
    assert "supported types: " in message and \
        "CLIF, Conv2d, CubaLIF, Dense, Input, LIF, Readout" in message


def test_the_ir_width_check_refuses_a_fixed_point_type_it_does_not_know(new_types):
    _, fxplif = new_types
    with pytest.raises(UnsupportedNodeError, match="node 'sn' of type FxPLIF"):
        Graph.build([
            FxInput(name="x", shape=(2,), bits=1, scale=1.0, encoding="spikes"),
            FxDense(name="syn", inputs=("x",), weight=np.ones((2, 2), np.int64)),
            fxplif(name="sn", inputs=("syn",), dv=0, vth=4),
        ])


def test_range_analysis_refuses_a_fixed_point_neuron_type_it_has_no_rule_for(new_types):
    _, fxplif = new_types
    graph = fixed_net(np.ones((2, 3), np.int64))
    broken = swap(graph, as_type(fxplif, graph["sn"]))
    with pytest.raises(UnsupportedNodeError) as err:
        analyze_ranges(broken, 4)
    message = str(err.value)
    assert "range analysis" in message and "node 'sn' of type FxPLIF" in message
    assert ("FxCLIF, FxChannelSlice, FxConv2d, FxCubaLIF, FxDense, FxInput, FxLIF, FxMerge, "
            "FxPartialSum, FxReadout") in message


def test_the_reference_simulator_refuses_a_new_neuron_type(new_types):
    plif, fxplif = new_types
    with pytest.raises(UnsupportedNodeError, match="node 'sn' of type PLIF"):
        simulate(float_net(plif), np.ones((1, 4)), 2)
    graph = fixed_net(np.ones((2, 3), np.int64))
    with pytest.raises(UnsupportedNodeError, match="node 'sn' of type FxPLIF"):
        simulate(swap(graph, as_type(fxplif, graph["sn"])), np.ones((1, 3)), 2)


def test_quantize_still_gives_folding_advice_for_the_types_folding_removes():
    from snnc.ir import Flatten
    g = Graph.build([
        Input(name="x", shape=(2, 2)),
        Flatten(name="flat", inputs=("x",)),
        Dense(name="fc", inputs=("flat",), weight=np.ones((2, 4))),
        LIF(name="sn", inputs=("fc",), decay=1.0, threshold=1.0),
    ])
    with pytest.raises(QuantizationError, match=r"'flat' \(Flatten\).*fold it first"):
        quantize(g)


# -- targets as data -----------------------------------------------------------------------------

def test_a_target_holds_its_widths_in_one_table():
    assert LOIHI2.widths is FORMAT
    for gone in ("weight_bits", "state_bits", "vth_shift", "act_shift", "decay_bits"):
        assert not hasattr(LOIHI2, gone), gone  # on the widths, not repeated on the target
    assert FORMAT.decay_unity == 4096 and FORMAT.state_max == 2 ** 23 - 1
    assert FORMAT.ranges["weight_exp"] == (-8, 7) and FORMAT.ranges["vth"] == (0, 2 ** 17 - 1)


def test_quantize_takes_weight_bits_shifts_and_decay_unit_from_the_target():
    # 6-bit weights, threshold and activation shifts of 4, a decay unit of 1024.
    narrow = Target("narrow", True, widths=Widths(weight_bits=6, act_shift=4, vth_shift=4,
                                                  decay_bits=10))
    fixed = quantize(float_net(), quantize_module.QuantizeOptions(target=narrow)).graph
    sn = fixed["sn"]
    # decay 0.5 -> dv = round(1024 * 0.5) = 512 (Loihi 2: 2048)
    assert sn.dv == 512
    # fires on '>': reset_sub = vth << 4 (Loihi 2: vth << 6)
    assert sn.reset_sub == sn.vth * 16
    # S = (vth << 4) / 1.0 = 16384 and the weights are S * 0.25 = 4096 = w * 2^(e + 4), the
    # smallest e that keeps w in 6 bits [0, 63]: e = 3, w = 32 (8 bits and shift 6: w = 128)
    assert sn.vth == 1024 and sn.scale == 16384
    assert fixed["fc"].weight_exp == 3
    assert np.all(fixed["fc"].weight == 32)


def test_quantize_takes_the_weight_exponent_range_from_the_target():
    tight = Target("tight", True, widths=Widths(weight_exp_max=-3))
    g = float_net()
    g = swap(g, g["fc"].replace(weight=np.full((3, 4), 40.0)))
    # 40 * S (S = 64 * 1024) needs 2^(e + 6) * 255 >= 40 * 65536: e = 5 > -3
    with pytest.raises(QuantizationError, match="need weight exponent 5, beyond the target's -3"):
        quantize(g, quantize_module.QuantizeOptions(target=tight))


def test_range_analysis_takes_the_synaptic_input_width_from_the_target():
    graph = fixed_net(np.full((1, 4), 200, np.int64))  # a in [0, 800]
    assert all(r.ok for r in analyze_ranges(graph, 4))
    nine_bits = Target("small", True, widths=Widths(synaptic_input_bits=9))  # max 255
    (row,) = analyze_ranges(graph, 4, nine_bits)
    assert row.chip_overflow == ["synaptic input [0, 800] exceeds 9 bits"]


# -- every integer field against the widths, the weight exponent included ----------------------

@pytest.mark.parametrize("exp", [1000, 64, 8, -9, -1000])
def test_graph_build_refuses_a_weight_exponent_outside_the_widths(exp):
    with pytest.raises(GraphError, match=rf"node 'syn' \(FxDense\): field weight_exp = {exp} "
                                         r"is outside the Loihi 2 range \[-8, 7\]"):
        fixed_net(np.ones((1, 2), np.int64)).nodes["syn"].replace(weight_exp=exp).infer(
            [FxInput(name="x", shape=(2,), bits=1, scale=1.0).infer([])])


def test_the_artifact_loader_refuses_a_weight_exponent_of_1000(tmp_path):
    graph = fixed_net(np.ones((1, 2), np.int64))
    broken = swap(graph, graph["syn"].replace(weight_exp=1000))
    path = write_artifact(Artifact(broken, target="loihi2", meta={"timesteps": 2}),
                          tmp_path / "bad.snnc")
    with pytest.raises(SnncError, match=r"'syn' \(FxDense\): field weight_exp = 1000 is "
                                        r"outside the Loihi 2 range \[-8, 7\]"):
        read_artifact(path)


@pytest.mark.parametrize("exp", [1000, 64])
def test_range_analysis_reports_a_weight_exponent_no_int64_shift_survives(exp):
    # Before: int64 << 64 gives 0 in numpy, so "no overflow possible".
    graph = fixed_net(np.full((1, 2), 3, np.int64))
    (row,) = analyze_ranges(swap(graph, graph["syn"].replace(weight_exp=exp)), 4)
    assert not row.ok
    assert (f"FxDense 'syn': weight_exp = {exp} is outside the Loihi 2 range [-8, 7]"
            in row.chip_overflow)
    # a = 6 << exp: far beyond 16 bits, so the synaptic input is reported too
    assert any(m.startswith("synaptic input [0, ") for m in row.chip_overflow)


def test_range_analysis_reports_a_very_negative_exponent_and_neuron_fields():
    graph = fixed_net(np.full((1, 2), 3, np.int64))
    broken = swap(swap(graph, graph["syn"].replace(weight_exp=-1000)),
                  graph["sn"].replace(dv=4096, du=4096))
    (row,) = analyze_ranges(broken, 4)
    assert row.chip_overflow == [
        "dv = 4096 is outside Lava's range [0, 4095]",
        "du = 4096 is outside Lava's range [0, 4095]",
        "FxDense 'syn': weight_exp = -1000 is outside the Loihi 2 range [-8, 7]",
    ]


def test_simulate_refuses_a_weight_exponent_outside_the_widths():
    graph = fixed_net(np.ones((1, 2), np.int64))
    broken = swap(graph, graph["syn"].replace(weight_exp=64))
    with pytest.raises(SimulationInputError, match=r"node 'syn' \(FxDense\): weight_exp = 64"):
        simulate(broken, np.ones((1, 2)), 2)


def test_width_problems_are_listed_per_field():
    graph = fixed_net(np.ones((1, 2), np.int64))
    bad = graph["sn"].replace(du=-1, bias_exp=True, bias_mant=np.array([0.5]))
    assert width_problems(bad) == [
        "bias_mant is an array of float64; expected integers in [-4096, 4095]",
        "bias_exp = True (bool) is not an integer; expected an integer in [0, 7]",
        "du = -1 is outside Lava's range [0, 4095]",
    ]


# -- range analysis reads du (current state) ------------------------------------------------------

def test_range_analysis_bounds_u_with_current_state():
    # One input spiking every step into weight 100: a = 100, a << 6 = 6400. With du = 2047,
    # u keeps (4095 - 2047) / 4096 = 1/2 of itself a step: 6400, 9600, 11200, 12000.
    graph = fixed_net(np.array([[100]], np.int64), du=2047, vth=1 << 16)
    (row,) = analyze_ranges(graph, 4)
    assert row.u[1] >= 12000  # before: 6400, as if u held no current
    record = simulate(graph, np.ones((1, 1)), 4, record_states=True)
    assert record.states["sn"]["u"].max() == 12000
    assert record.states["sn"]["v"].max() <= row.v[1]


def test_range_analysis_reports_u_wrapping_only_current_state_reaches():
    # 307 inputs of weight 255: a << 6 = 78285 * 64 = 5,010,240 < 2^23, but with du = 2047 u
    # reaches 5,010,240 * (1 + 1/2 + 1/4) > 2^23 at the third step and wraps (Lava too).
    graph = fixed_net(np.full((1, 307), 255, np.int64), du=2047)
    (row,) = analyze_ranges(graph, 4)
    assert any("wraps at 24 bits" in m for m in row.lava_overflow)
    u = simulate(graph, np.ones((1, 307)), 4, record_states=True).states["sn"]["u"]
    assert u.min() < 0  # the wrap is real: u went negative from positive input
    stateless = fixed_net(np.full((1, 307), 255, np.int64))
    (row,) = analyze_ranges(stateless, 4)
    assert row.lava_overflow == []
