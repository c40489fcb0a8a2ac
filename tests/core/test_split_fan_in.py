"""Fan-in splitting (passes/split_fan_in.py): a synapse whose neurons read more input axons
than a core accepts becomes partial sums on relay cores, merged with its exponent applied once.

The claims, each tested against something computed independently of the split:
- exact: the reference simulator gives the same spikes and readout with and without the split,
  in the trained model's timing and in the hardware timing (where the merge is one more hop,
  balanced against unsplit shortcuts), for random fan-ins, weights and exponents (negative
  included: a floor shift of the whole sum differs from the sum of shifted parts);
- the split graph maps where the unsplit one cannot, and no core reads more axons than the
  target allows (counted here from the graph's geometry, not from the mapper);
- range analysis bounds every partial sum against the graded payload's width;
- the cost model counts each synaptic operation once: the relays together do the unsplit
  layer's synops, and the merged layer one per nonzero partial sum it receives.
Tests use a target with a small input limit so that small networks split.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnc.analyses.mapping import MappingError, map_to_cores
from snnc.analyses.range_analysis import analyze_ranges
from snnc.analyses.timing import schedule
from snnc.backends.refsim import simulate
from snnc.ir import (
    Add,
    FxChannelSlice,
    FxConv2d,
    FxDense,
    FxInput,
    FxLIF,
    FxMerge,
    FxPartialSum,
    FxReadout,
    Graph,
)
from snnc.ir.widths import FORMAT
from snnc.passes.split_fan_in import split_fan_in
from snnc.targets import LOIHI2
from snnc.tools.cost import estimate_cost

T = 4


def small_target(axons: int):
    """Cores that accept `axons` input axons, counted one per source neuron (the explicit
    format: on Loihi 2's own, a convolution reads population axons and never splits)."""
    return dataclasses.replace(LOIHI2, name=f"axons{axons}", max_input_axons_per_core=axons,
                               synapse_format="explicit")


def weights(rng, shape) -> np.ndarray:
    """Mixed-sign 8-bit weights as Lava keeps them: even values in [-256, 254]."""
    return 2 * rng.integers(-128, 128, shape)


def residual_graph(rng, c: int, k: int, exps: tuple[int, int, int], hidden: int,
                   vth: int) -> Graph:
    """Graded input -> conv -> LIF -> [conv k x k -> Add <- 1x1 shortcut] -> LIF -> dense ->
    LIF -> dense -> readout. The k x k conv of c channels and the dense layers are what a
    small target splits; the shortcut stays whole and must wait for the merge."""
    e1, e2, e3 = exps
    return Graph.build([
        FxInput(name="x", shape=(2, 6, 6), scale=255.0),
        FxConv2d(name="c0", inputs=("x",), weight=weights(rng, (c, 2, 3, 3)), padding=(1, 1),
                 weight_exp=-6),
        FxLIF(name="s0", inputs=("c0",), dv=1024, vth=vth, bias_mant=int(rng.integers(0, 50)),
              bias_exp=3),
        FxConv2d(name="c1", inputs=("s0",), weight=weights(rng, (c, c, k, k)),
                 padding=(k // 2, k // 2), weight_exp=e1),
        FxConv2d(name="short", inputs=("s0",), weight=weights(rng, (c, c, 1, 1)), weight_exp=0),
        Add(name="sum", inputs=("c1", "short")),
        FxLIF(name="s1", inputs=("sum",), dv=2048, vth=vth, reset="soft", reset_sub=vth << 6),
        FxDense(name="fc", inputs=("s1",), weight=weights(rng, (hidden, c * 36)),
                weight_exp=e2),
        FxLIF(name="s2", inputs=("fc",), dv=0, vth=vth),
        FxDense(name="out_fc", inputs=("s2",), weight=weights(rng, (5, hidden)), weight_exp=e3),
        FxReadout(name="out", inputs=("out_fc",), dv=0, scale=1.0),
    ])


def same_run(a: Graph, b: Graph, x: np.ndarray, timing: str) -> None:
    ra, rb = simulate(a, x, T, timing=timing), simulate(b, x, T, timing=timing)
    assert ra.spikes.keys() == rb.spikes.keys()
    for name in ra.spikes:
        np.testing.assert_array_equal(ra.spikes[name], rb.spikes[name], err_msg=name)
    np.testing.assert_array_equal(ra.readout["out"], rb.readout["out"])


def core_axons(graph: Graph, core) -> int:
    """The distinct input axons of one core, counted neuron by neuron from the graph: the
    union over its neurons of the source neurons each reads (map order: channel innermost)."""
    node = graph[core.layer]
    shape = node.type.shape
    read: set[tuple[str, int]] = set()
    for term in graph.sum_terms(node.inputs[0]):
        if isinstance(term, FxMerge):  # each neuron reads its own relay neuron
            read |= {(r, n) for r in term.inputs for n in range(core.start, core.stop)}
            continue
        src, lo = graph[term.inputs[0]], 0
        if isinstance(src, FxChannelSlice):
            src, lo = graph[src.inputs[0]], src.start
        sshape = src.type.shape
        if isinstance(term, FxDense):  # every position of the channels it reads
            per = int(np.prod(sshape[1:]))
            read |= {(src.name, p * sshape[0] + lo + ch)
                     for ch in range(term.weight.shape[1] // per) for p in range(per)}
            continue
        kh, kw = term.weight.shape[2:]
        (sh, sw), (ph, pw) = term.stride, term.padding
        c_read = term.weight.shape[1]
        for n in range(core.start, core.stop):
            pos = n // shape[0]
            i, j = divmod(pos, shape[2])
            for p in range(kh):
                for q in range(kw):
                    y, xx = sh * i + p - ph, sw * j + q - pw
                    if 0 <= y < sshape[1] and 0 <= xx < sshape[2]:
                        read |= {(src.name, (y * sshape[2] + xx) * sshape[0] + lo + ch)
                                 for ch in range(c_read)}
    return len(read)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), c=st.integers(4, 9), k=st.sampled_from([1, 3]),
       exps=st.tuples(*[st.integers(FORMAT.weight_exp_min, 2)] * 3),
       hidden=st.integers(3, 12), axons=st.integers(40, 120))
def test_a_split_graph_spikes_exactly_as_the_unsplit_one(seed, c, k, exps, hidden, axons):
    rng = np.random.default_rng(seed)
    graph = residual_graph(rng, c, k, exps, hidden, vth=int(rng.integers(50, 400)))
    result = split_fan_in(graph, small_target(axons))
    assert result.changed  # the dense layer alone reads c * 36 >= 144 axons
    split = result.graph
    assert [n.name for n in split if isinstance(n, FxMerge)], result.notes
    x = rng.random((6, 2, 6, 6))
    same_run(graph, split, x, "zero")
    same_run(graph, split, x, "hardware")


def test_the_merge_is_one_more_hop_and_the_shortcut_waits_for_it():
    rng = np.random.default_rng(1)
    graph = residual_graph(rng, 8, 3, (-3, -5, -2), 6, vth=120)
    split = split_fan_in(graph, small_target(64)).graph
    assert isinstance(split["c1"], FxMerge) and isinstance(split["short"], FxConv2d)
    before, after = schedule(graph), schedule(split)
    # c1 reads 8 channels x 9 positions = 72 > 64 axons: split, one hop longer than the 1x1
    # shortcut, which the Add now delays by one step (it waited for nothing before).
    assert after.depth["s1"] == before.depth["s1"] + 1
    assert ("short", "sum") not in before.delays and after.delays[("short", "sum")] == 1
    # and the layer still gives the trained model's spikes in its window (test above)
    same_run(graph, split, rng.random((4, 2, 6, 6)), "hardware")


def test_negative_exponents_are_applied_once_to_the_whole_sum():
    """Two partial sums 3 and 3 with exponent -2: (3 + 3) >> 2 = 1, where shifting each part
    first would give 0 + 0. The merge must give the unsplit synapse's 1."""
    graph = Graph.build([
        FxInput(name="x", shape=(2,), scale=1.0),
        FxDense(name="fc", inputs=("x",), weight=np.array([[3, 3]]), weight_exp=-2),
        FxReadout(name="out", inputs=("fc",), dv=0, scale=1.0),
    ])
    split = split_fan_in(graph, small_target(1)).graph
    assert isinstance(split["fc"], FxMerge) and len(split["fc"].inputs) == 2
    x = np.ones((1, 2))  # payload 1 on both inputs: W @ x = 6, 6 >> 2 = 1, u = 1 << 6
    for g in (graph, split):
        assert simulate(g, x, 1).readout["out"].tolist() == [[64.0]]


def test_a_split_graph_maps_within_the_axon_limit_where_the_unsplit_cannot():
    rng = np.random.default_rng(3)
    graph = residual_graph(rng, 8, 3, (-3, -5, -2), 10, vth=120)
    target = small_target(64)
    with pytest.raises(MappingError, match="distinct input axons"):
        map_to_cores(graph, target)
    split = split_fan_in(graph, target).graph
    core_map = map_to_cores(split, target)
    relays = [n.name for n in split if isinstance(n, FxPartialSum)]
    assert relays and set(relays) <= set(core_map.layers)
    for core in core_map.cores:
        counted = core_axons(split, core)
        assert counted <= 64, (core.layer, counted)
        assert core.fan_in == counted, core.layer  # the mapper's count is exact here


def test_range_analysis_bounds_each_partial_sum_by_the_payload_width():
    graph = Graph.build([
        FxInput(name="x", shape=(40,), bits=1, scale=1.0),
        FxDense(name="fc", inputs=("x",), weight=np.full((2, 40), 254), weight_exp=-8),
        FxReadout(name="out", inputs=("fc",), dv=0, scale=1.0),
    ])
    split = split_fan_in(graph, small_target(16)).graph
    parts = [n for n in split if isinstance(n, FxDense)]
    assert len(parts) == 3  # 40 inputs in groups of at most 16
    # Partial sums reach 254 * 14 = 3556 at most: fine in 24 bits, not in a 12-bit payload.
    assert all(r.ok for r in analyze_ranges(split, T))
    narrow = dataclasses.replace(LOIHI2, widths=dataclasses.replace(FORMAT, message_bits=12))
    (row,) = analyze_ranges(split, T, narrow)
    flagged = [m for m in row.chip_overflow if "graded payload" in m]
    assert len(flagged) == 3 and "[0, 3556]" in " ".join(flagged)
    # the merged input's bound is the unsplit synapse's: 254 * 40 >> 8 = 39
    assert row.a == analyze_ranges(graph, T)[0].a == (0, 39)


def test_the_cost_model_counts_each_synaptic_operation_once():
    rng = np.random.default_rng(5)
    graph = residual_graph(rng, 6, 3, (-3, -5, -2), 8, vth=100)
    target = small_target(64)
    split = split_fan_in(graph, target).graph
    x = rng.random((3, 2, 6, 6))
    runs = {g: simulate(s, x, T) for g, s in (("whole", graph), ("split", split))}
    whole_map = map_to_cores(graph, LOIHI2)
    split_map = map_to_cores(split, target)
    costs = {}
    for key, g, cm in (("whole", graph, whole_map), ("split", split, split_map)):
        r = runs[key]
        costs[key] = estimate_cost(g, cm, {**r.sent, "x": x}, T,
                                   target).layer_totals()
    merge = split["fc"]
    relays = merge.inputs
    assert sum(costs["split"][r]["synops"] for r in relays) == pytest.approx(
        costs["whole"]["s2"]["synops"])
    # s2 reads one synapse per relay neuron: one op per nonzero partial sum, batch mean
    sent = sum(runs["split"].messages[r].sum() for r in relays) / len(x)
    assert costs["split"]["s2"]["synops"] == pytest.approx(sent)
    assert costs["split"]["s2"]["synops"] > 0
