"""Core mapping and the cost model: hand-checked placements, counts, hops and energies, and a
brute-force recount on a compiled example."""

from __future__ import annotations

import dataclasses
import itertools
import tracemalloc
from types import MappingProxyType

import numpy as np
import pytest

from snnc.analyses.geometry import Grid, Projection, axons, single_position_axons
from snnc.analyses.mapping import MappingError, format_core_map, map_to_cores
from snnc.backends.refsim import simulate
from snnc.errors import SnncError, UnsupportedNodeError
from snnc.ir import (
    LIF,
    NODE_TYPES,
    Add,
    Conv2d,
    Dense,
    FxChannelSlice,
    FxCLIF,
    FxConv2d,
    FxCubaLIF,
    FxDense,
    FxInput,
    FxLIF,
    FxMerge,
    FxNeuron,
    FxPartialSum,
    FxReadout,
    Graph,
    Input,
    Readout,
)
from snnc.targets import FLOAT, LOIHI2
from snnc.tools.cost import RULES, CostInputError, estimate_cost, format_cost
from snnc.tools.pass_runner import compile_graph

# The explicit synapse format (every synapse stored, one axon per source neuron), whose
# arithmetic these tests check by hand; Loihi 2's own format: tests/core/test_loihi2_memory.py.
T2 = dataclasses.replace(LOIHI2, synapse_format="explicit")


def w(rng, *shape):
    return (rng.integers(-60, 60, shape) * 2).astype(np.int64)


def lif(name, src):
    return FxLIF(name=name, inputs=(src,), dv=0, vth=100)


def dense_net(n_in, n_out):
    rng = np.random.default_rng(0)
    return Graph.build([FxInput(name="x", shape=(n_in,), scale=1.0),
                        FxDense(name="fc", inputs=("x",), weight=w(rng, n_out, n_in)),
                        lif("sn", "fc")])


def conv_net(c_in, hw, c_out, kernel=3, padding=0):
    rng = np.random.default_rng(0)
    return Graph.build([
        FxInput(name="x", shape=(c_in, hw, hw), scale=1.0),
        FxConv2d(name="conv", inputs=("x",), weight=w(rng, c_out, c_in, kernel, kernel),
                 padding=(padding, padding)),
        lif("sn", "conv")])


# -- mapping ---------------------------------------------------------------------------------

def test_dense_layer_is_bound_by_memory_on_loihi2():
    layer = map_to_cores(dense_net(100, 10_000), T2).layers["sn"]
    per_core = T2.sram_bytes_per_core // (100 * 1 + 8)  # 1213 neurons of 108 B each
    assert per_core == 1213
    assert len(layer.cores) == -(-10_000 // per_core) == 9
    assert [c.neurons for c in layer.cores] == [1213] * 8 + [10_000 - 8 * 1213]
    assert {c.fan_in for c in layer.cores} == {100}
    assert layer.cores[0].synapse_bytes == 1213 * 100 and layer.cores[0].bound == "memory"


def test_dense_layer_is_bound_by_neurons_with_room_to_spare():
    big = dataclasses.replace(T2, sram_bytes_per_core=1 << 24)
    cores = map_to_cores(dense_net(100, 10_000), big).layers["sn"].cores
    assert len(cores) == -(-10_000 // big.neurons_per_core) == 2
    assert [(c.neurons, c.bound) for c in cores] == [(8192, "neurons"), (1808, "layer end")]


def test_fan_in_beyond_the_axon_limit_names_the_layer():
    with pytest.raises(MappingError, match=r"'sn'.*5000 distinct input axons.*4096.*over by 904"):
        map_to_cores(dense_net(5000, 10), T2)


def test_a_neuron_larger_than_core_memory_names_the_layer():
    small = dataclasses.replace(T2, sram_bytes_per_core=64)
    with pytest.raises(MappingError, match=r"'sn'.*108 B.*64 B.*over by 44 B"):
        map_to_cores(dense_net(100, 10), small)


def test_conv_slices_read_the_union_of_their_receptive_fields():
    # 1 x 5 x 5 input, 3 x 3 kernel, no padding: a 3 x 3 output, one channel.
    one = map_to_cores(conv_net(1, 5, 1), dataclasses.replace(T2, neurons_per_core=2))
    cores = one.layers["sn"].cores
    assert cores[0].fan_in == 3 * 4            # (0,0), (0,1): rows 0-2, cols 0-3
    assert cores[1].fan_in == 9 + 9 - 2        # (0,2), (1,0): overlap rows 1-2, col 2
    assert cores[0].synapse_bytes == 18 and cores[0].state_bytes == 16
    # With an axon limit of 12, a core takes two positions of a row, then a row ends it.
    tight = dataclasses.replace(T2, max_input_axons_per_core=12)
    cores = map_to_cores(conv_net(1, 5, 1), tight).layers["sn"].cores
    assert [(c.start, c.stop) for c in cores] == [(0, 2), (2, 3), (3, 5), (5, 6), (6, 8), (8, 9)]
    assert [c.fan_in for c in cores] == [12, 9, 12, 9, 12, 9]
    assert [c.bound for c in cores] == ["axons"] * 5 + ["layer end"]


def test_neurons_are_numbered_channels_last():
    # Two output channels: a 3-neuron core holds position (0,0) whole and (0,1) channel 0.
    cores = map_to_cores(conv_net(2, 5, 2), dataclasses.replace(T2, neurons_per_core=3))
    first = cores.layers["sn"].cores[0]
    assert first.fan_in == 2 * 3 * 4 and first.synapse_bytes == 3 * 18
    grid = Grid.of((2, 3, 3))
    x = np.arange(18).reshape(1, 2, 3, 3)
    assert grid.to_map_order(x)[0, :4].tolist() == [0, 9, 1, 10]
    assert grid.counts(0, 3).tolist() == [2, 1, 0, 0, 0, 0, 0, 0, 0]


def test_cores_fill_the_mesh_row_by_row_then_the_next_chip():
    mesh = dataclasses.replace(T2, neurons_per_core=2000, sram_bytes_per_core=1 << 24,
                               mesh_width=2, mesh_height=2, cores_per_chip=4)
    core_map = map_to_cores(dense_net(10, 10_000), mesh)
    assert [(c.chip, c.x, c.y) for c in core_map.cores] == [
        (0, 0, 0), (0, 1, 0), (0, 0, 1), (0, 1, 1), (1, 0, 0)]
    assert core_map.n_cores == 5 and core_map.n_chips == 2
    assert core_map.mesh_xy()[0].tolist() == [0, 1, 0, 1, 2]
    text = format_core_map(core_map, per_core=True)
    assert "sn" in text and "5 cores on 2 chip(s)" in text


def test_float_targets_and_float_graphs_are_refused():
    with pytest.raises(SnncError, match="'float' is not a chip"):
        map_to_cores(dense_net(4, 4), FLOAT)
    graph = Graph.build([Input(name="x", shape=(4,)),
                         Dense(name="fc", inputs=("x",), weight=np.ones((3, 4))),
                         LIF(name="sn", inputs=("fc",), decay=1.0, threshold=1.0)])
    with pytest.raises(UnsupportedNodeError, match="'fc'"):
        map_to_cores(graph, T2)


# -- cost: hand-checked counts ---------------------------------------------------------------

def tiny_chain():
    rng = np.random.default_rng(1)
    return Graph.build([FxInput(name="x", shape=(4,), scale=1.0),
                        FxDense(name="d1", inputs=("x",), weight=w(rng, 3, 4)), lif("s1", "d1"),
                        FxDense(name="d2", inputs=("s1",), weight=w(rng, 2, 3)),
                        FxReadout(name="out", inputs=("d2",), dv=0)])


def test_counts_time_and_energy_of_a_tiny_dense_chain():
    graph = tiny_chain()
    core_map = map_to_cores(graph, T2)  # s1 on core 0 at (0, 0), out on core 1 at (1, 0)
    x = np.zeros((2, 2, 4))             # [T, batch, 4]; sample 1 sends nothing
    x[0, 0] = [1, 0, 1, 0]
    x[1, 0] = [1, 1, 1, 1]
    s1 = np.zeros((2, 2, 3), bool)
    s1[0, 0] = [1, 0, 0]
    s1[1, 0] = [0, 1, 1]
    r = estimate_cost(graph, core_map, {"x": x, "s1": s1}, 2, T2)
    # Means over a batch of two, sample 1 idle: half of sample 0's counts.
    assert r.synops.tolist() == [[3.0, 1.0], [6.0, 2.0]]         # 2*3, 1*2 / 4*3, 2*2
    assert r.neuron_updates.tolist() == [3, 2]
    assert r.messages.tolist() == [[0.5, 0.0], [1.0, 0.0]]
    assert r.input_messages.tolist() == [1.0, 2.0]
    assert r.hops_x.tolist() == [[0.5, 0.0], [1.0, 0.0]] and not r.hops_y.any()
    assert not r.input_hops_x.any()                               # port (0,0) = core 0
    assert r.route_s == T2.time_per_hop_x_s
    # Sample 0, step 0: core 0 does 6 synops, 3 updates, sends 1; core 1: 2 synops, 2 updates.
    busy0 = 6 * T2.time_per_synop_s + 3 * 8.4e-9 + 1 * 2.1e-9
    assert r.busy_s[0, 0] == pytest.approx((busy0 + 3 * 8.4e-9) / 2)
    steps = [busy0, 12 * T2.time_per_synop_s + 3 * 8.4e-9 + 2 * 2.1e-9]  # core 0 is slower
    idle = 3 * 8.4e-9
    expect = [(s + idle) / 2 + 4.1e-9 + 465e-9 for s in steps]
    assert r.step_s == pytest.approx(expect)
    assert r.latency_s == pytest.approx(sum(expect))
    energy = {"synops": 24 * 23.6e-12 / 2, "neuron updates": 5 * 2 * 81e-12,
              "messages": (3 + 6) * 1.7e-12 / 2, "hops": 3 * 3.0e-12 / 2,
              "chip hops": 0.0}  # one chip
    assert r.energy_j == pytest.approx(energy)
    assert r.dynamic_energy_j == pytest.approx(sum(energy.values()))
    # static: one chip's measured idle power over the latency
    assert r.static_energy_j == pytest.approx(0.232078 * r.latency_s)
    assert r.total_energy_j == pytest.approx(r.dynamic_energy_j + r.static_energy_j)
    text = format_cost(r)
    assert "s1" in text and f"static {r.static_energy_j * 1e6:.4f} uJ (1 chip(s)" in text


def test_hops_between_cores_split_into_x_and_y():
    rng = np.random.default_rng(2)
    graph = Graph.build([FxInput(name="x", shape=(4,), scale=1.0),
                         FxDense(name="d1", inputs=("x",), weight=w(rng, 2, 4)), lif("s1", "d1"),
                         FxDense(name="d2", inputs=("s1",), weight=w(rng, 4, 2)), lif("s2", "d2"),
                         FxDense(name="d3", inputs=("s2",), weight=w(rng, 1, 4)),
                         FxReadout(name="out", inputs=("d3",), dv=0)])
    mesh = dataclasses.replace(T2, neurons_per_core=2, mesh_width=2, mesh_height=2,
                               cores_per_chip=4)
    core_map = map_to_cores(graph, mesh)
    # s1 on core 0 (0,0); s2 split over core 1 (1,0) and core 2 (0,1); out on core 3 (1,1).
    assert [(c.layer, c.x, c.y) for c in core_map.cores] == [
        ("s1", 0, 0), ("s2", 1, 0), ("s2", 0, 1), ("out", 1, 1)]
    spikes = {"x": np.zeros((1, 4)), "s1": np.array([[[1, 1]]], bool),
              "s2": np.array([[[1, 0, 0, 1]]], bool)}
    r = estimate_cost(graph, core_map, spikes, 1, mesh)
    assert r.messages.tolist() == [[4, 1, 1, 0]]  # each s1 spike reaches both s2 cores
    assert r.hops_x.tolist() == [[2, 0, 1, 0]]    # core 0 -> 1, core 2 -> 3
    assert r.hops_y.tolist() == [[2, 1, 0, 0]]    # core 0 -> 2, core 1 -> 3
    assert r.synops.tolist() == [[0, 4, 4, 2]]
    assert r.input_messages.tolist() == [0]
    assert r.route_s == mesh.time_per_hop_y_s
    assert r.energy_j["hops"] == pytest.approx(3 * 3.0e-12 + 3 * 4.0e-12)


def test_missing_or_misshapen_spikes_are_refused():
    graph = tiny_chain()
    core_map = map_to_cores(graph, T2)
    with pytest.raises(CostInputError, match="no spikes for layer 's1'"):
        estimate_cost(graph, core_map, {"x": np.ones((1, 4))}, 2, T2)
    with pytest.raises(CostInputError, match=r"'s1'.*timesteps=3"):
        estimate_cost(graph, core_map, {"s1": np.zeros((2, 1, 3), bool)}, 3, T2)
    r = estimate_cost(graph, core_map, {"s1": np.zeros((2, 1, 3), bool)}, 2, T2)
    assert r.input_assumed_dense and r.input_messages.tolist() == [4, 4]


# -- cost: one rule per node type ------------------------------------------------------------

def test_the_cost_model_has_a_rule_for_exactly_the_fixed_point_node_types():
    fixed = {t for name, t in NODE_TYPES.items() if name.startswith("Fx")} | {Add}
    assert set(RULES) == fixed == {FxInput, FxConv2d, FxDense, Add, FxLIF, FxCLIF, FxCubaLIF,
                                   FxReadout, FxChannelSlice, FxPartialSum, FxMerge}
    for node_type, rule in RULES.items():
        # A split fan-in's relays update and send like spiking neurons (graded partial sums).
        neuron = issubclass(node_type, FxNeuron) or node_type is FxPartialSum
        assert rule.updates == (1 if neuron else 0), node_type
        # What sends messages: the input's pixels, the spiking neurons and the relays.
        sends = node_type in (FxInput, FxPartialSum) or (neuron and node_type.spiking)
        assert (rule.sends is not None) == sends, node_type


@pytest.fixture
def fx_odd_lif():
    """A new fixed-point neuron type subclassing FxLIF, registered in NODE_TYPES as every node
    type is, removed afterwards."""
    before = dict(NODE_TYPES)

    @dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
    class FxOddLIF(FxLIF):
        """A LIF that would update twice a step, say: the cost model cannot know."""

    yield FxOddLIF
    NODE_TYPES.clear()
    NODE_TYPES.update(before)


def test_the_cost_model_refuses_a_neuron_type_it_has_no_rule_for(fx_odd_lif):
    graph = tiny_chain()
    core_map = map_to_cores(graph, T2)  # the map of the LIF graph: the mapper refuses FxOddLIF
    odd = fx_odd_lif(**{f.name: getattr(graph["s1"], f.name) for f in dataclasses.fields(FxLIF)})
    nodes = dict(graph.nodes, s1=odd)  # as another tool could write it, past Graph.build
    graph = Graph(MappingProxyType(nodes), graph.outputs)
    with pytest.raises(UnsupportedNodeError, match="the core mapper .*node 's1' of type FxOddLIF"):
        map_to_cores(graph, T2)
    with pytest.raises(UnsupportedNodeError) as err:
        estimate_cost(graph, core_map, {"s1": np.zeros((2, 1, 3), bool)}, 2, T2)
    assert str(err.value) == (
        "the cost model cannot handle node 's1' of type FxOddLIF; supported types: Add, "
        "FxCLIF, FxChannelSlice, FxConv2d, FxCubaLIF, FxDense, FxInput, FxLIF, FxMerge, "
        "FxPartialSum, FxReadout")


# -- cost: brute-force recount on a compiled example ------------------------------------------

def float_net():
    rng = np.random.default_rng(3)
    return Graph.build([
        Input(name="x", shape=(2, 6, 6)),
        Conv2d(name="conv1", inputs=("x",), weight=rng.normal(0, 0.6, (4, 2, 3, 3)),
               bias=rng.normal(0.1, 0.05, 4), padding=(1, 1)),
        LIF(name="sn1", inputs=("conv1",), decay=0.5, threshold=0.5),
        Conv2d(name="conv2", inputs=("sn1",), weight=rng.normal(0, 0.5, (4, 4, 3, 3)),
               padding=(1, 1), stride=(2, 2)),
        Conv2d(name="short", inputs=("sn1",), weight=rng.normal(0, 0.5, (4, 4, 1, 1)),
               stride=(2, 2)),
        Add(name="add", inputs=("conv2", "short")),
        LIF(name="sn2", inputs=("add",), decay=0.5, threshold=0.5),
        Dense(name="fc", inputs=("sn2",), weight=rng.normal(0, 0.4, (5, 36))),
        Readout(name="out", inputs=("fc",))])


def readers(graph, core_map, layer):
    """Brute force: (source, source map index) -> {core: [synapses, nonzero synapses]} it
    reaches (a core reads the neuron through every synapse; only nonzero weights do work)."""
    out = {}
    node_cores = core_map.layers[layer].cores
    for syn in (graph[i] for i in _synapse_names(graph, graph[layer].inputs[0])):
        src = graph[syn.inputs[0]]
        sgrid, dgrid = Grid.of(src.type.shape), Grid.of(graph[layer].type.shape)
        for core in node_cores:
            for n in range(core.start, core.stop):
                pos = n // dgrid.channels
                oh, ow = divmod(pos, dgrid.width)
                co = n % dgrid.channels
                if isinstance(syn, FxDense):  # IR (flat C, H, W) indices of n and of j
                    row = co * dgrid.positions + pos
                    read = [(j, syn.weight[row, (j % sgrid.channels) * sgrid.positions
                                           + j // sgrid.channels]) for j in range(sgrid.size)]
                else:
                    (kh, kw), (sh, sw), (ph, pw) = syn.weight.shape[2:], syn.stride, syn.padding
                    read = [((ih * sgrid.width + iw) * sgrid.channels + c, syn.weight[co, c, p, q])
                            for p, q in itertools.product(range(kh), range(kw))
                            for ih, iw in [(sh * oh + p - ph, sw * ow + q - pw)]
                            if 0 <= ih < sgrid.height and 0 <= iw < sgrid.width
                            for c in range(sgrid.channels)]
                for j, weight in read:
                    hits = out.setdefault((src.name, j), {}).setdefault(core.index, [0, 0])
                    hits[0] += 1
                    hits[1] += int(weight != 0)
    return out


def _synapse_names(graph, name):
    node = graph[name]
    return [s for i in node.inputs for s in _synapse_names(graph, i)] if isinstance(node, Add) \
        else [name]


@pytest.mark.parametrize("mesh, chips", [((4, 2), 2), ((2, 1), 7)])
def test_compiled_example_matches_a_brute_force_recount(mesh, chips):
    fixed = compile_graph(float_net(), T2, timesteps=4).graph
    small = dataclasses.replace(T2, neurons_per_core=20, mesh_width=mesh[0], mesh_height=mesh[1],
                                cores_per_chip=mesh[0] * mesh[1], max_input_axons_per_core=60)
    core_map = map_to_cores(fixed, small)
    assert core_map.n_chips == chips
    # quantization leaves zero weights, which the synop count must skip
    assert any(np.any(n.weight == 0) for n in fixed if isinstance(n, FxConv2d | FxDense))
    for c in core_map.cores:
        assert c.neurons <= 20 and c.fan_in <= 60
        assert c.synapse_bytes + c.state_bytes <= small.sram_bytes_per_core
    frames = np.random.default_rng(4).random((3, 2, 6, 6))
    frames[:, :, :2] = 0  # some pixels send nothing
    sim = simulate(fixed, frames, 4)
    spikes = dict(sim.spikes, x=frames)
    report = estimate_cost(fixed, core_map, spikes, 4, small)

    gx, gy = core_map.mesh_xy()
    core_of = {}
    for c in core_map.cores:
        core_of.update({(c.layer, n): c.index for n in range(c.start, c.stop)})
    k = core_map.n_cores
    syn, msg, hops = np.zeros((4, 3, k)), np.zeros((4, 3, k)), np.zeros((4, 3, k))
    links = np.zeros((4, 3, k))  # chip-to-chip links crossed, at the sending core
    port_msgs, port_links = np.zeros((4, 3)), np.zeros((4, 3))
    # chips on a square grid, row by row: 2 chips side by side, 7 on rows of 3
    row = int(np.ceil(np.sqrt(chips)))
    chip = {c.index: (c.chip % row, c.chip // row) for c in core_map.cores}

    def link(a, b):  # chip-to-chip links between two grid places
        return abs(a[0] - b[0]) + abs(a[1] - b[1])
    route = 0.0  # the longest connection: mesh hops plus chip-to-chip links
    sent = {"x": Grid.of((2, 6, 6)).to_map_order(np.rint(frames * fixed["x"].scale) != 0)[None]}
    sent.update({n: Grid.of(s.shape[2:]).to_map_order(s) for n, s in sim.spikes.items()})
    for layer in core_map.layers:
        for (src, j), hits in readers(fixed, core_map, layer).items():
            fired = np.broadcast_to(sent[src][..., j], (4, 3)).astype(float)
            home = core_of.get((src, j))
            x0, y0 = (0, 0) if home is None else (gx[home], gy[home])
            for core, (_, nonzero) in hits.items():
                syn[:, :, core] += fired * nonzero
                d = abs(gx[core] - x0) + abs(gy[core] - y0)
                crossed = link(chip[core], (0, 0) if home is None else chip[home])
                route = max(route, abs(gx[core] - x0) * small.time_per_hop_x_s
                            + abs(gy[core] - y0) * small.time_per_hop_y_s
                            + crossed * small.time_per_chip_hop_s)
                if home is None:  # the input port is on chip 0
                    port_msgs += fired
                    port_links += fired * link(chip[core], (0, 0))
                else:
                    msg[:, :, home] += fired
                    hops[:, :, home] += fired * d
                    links[:, :, home] += fired * link(chip[core], chip[home])
    # Both synapses from sn1 into sn2 count synops; a spike sends one message per core.
    assert np.allclose(report.synops, syn.mean(axis=1))
    assert np.allclose(report.messages, msg.mean(axis=1))
    assert np.allclose(report.hops_x + report.hops_y, hops.mean(axis=1))
    assert np.allclose(report.input_messages, port_msgs.mean(axis=1))
    assert np.allclose(report.chip_hops, links.mean(axis=1))
    assert np.allclose(report.input_chip_hops, port_links.mean(axis=1))
    assert report.chip_hops.sum() + report.input_chip_hops.sum() > 0  # two chips talk
    assert report.route_s == pytest.approx(route) and route > small.time_per_chip_hop_s
    total = (report.synops.sum() * small.energy_per_synop_j
             + report.neuron_updates.sum() * 4 * small.energy_per_neuron_update_j
             + (report.messages.sum() + report.input_messages.sum()) * small.energy_per_message_j
             + (report.hops_x.sum() + report.input_hops_x.sum()) * small.energy_per_hop_x_j
             + (report.hops_y.sum() + report.input_hops_y.sum()) * small.energy_per_hop_y_j
             + links.mean(axis=1).sum() * small.energy_per_chip_hop_j
             + port_links.mean(axis=1).sum() * small.energy_per_chip_hop_j)
    assert report.dynamic_energy_j == pytest.approx(total)
    assert report.static_energy_j == pytest.approx(
        chips * small.static_power_per_chip_w * report.latency_s)
    assert "sn2" in format_core_map(core_map) and "out" in format_cost(report)


# -- mapping at scale: time and memory linear in the layer -----------------------------------

def brute_axons(projections, first, end):
    """Distinct source neurons read by destination positions [first, end), by enumeration."""
    read = set()
    for proj in projections:
        for pos in range(first, end):
            if proj.kernel is None:
                read.update((proj.source, j) for j in range(proj.src.size))
                continue
            oh, ow = divmod(pos, proj.dst.width)
            (kh, kw), (sh, sw), (ph, pw) = proj.kernel, proj.stride, proj.padding
            for p, q in itertools.product(range(kh), range(kw)):
                ih, iw = sh * oh + p - ph, sw * ow + q - pw
                if 0 <= ih < proj.src.height and 0 <= iw < proj.src.width:
                    read.update((proj.source, (ih * proj.src.width + iw, c))
                                for c in range(proj.src.channels))
    return len(read)


def random_projections(rng, n_convs):
    """Convs of random geometry (stride above and below the kernel, padding) from one source
    into one destination grid, and a dense synapse from a second source."""
    h, w = int(rng.integers(4, 13)), int(rng.integers(4, 13))
    src = Grid(int(rng.integers(1, 4)), h, w, 3)
    shape = None
    projs = []
    while len(projs) < n_convs:
        k, s = int(rng.integers(1, 5)), int(rng.integers(1, 4))
        p = int(rng.integers(0, k))
        out = ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        if min(out) < 1 or (shape is not None and out != shape):
            continue
        shape = out
        projs.append(Projection(f"c{len(projs)}", "a", src, Grid(2, *out, 3), (k, k), (s, s),
                                (p, p)))
    dense = Projection("d", "b", Grid(5), projs[0].dst)
    return projs, dense


def test_axon_counts_match_an_enumeration_of_receptive_fields():
    rng = np.random.default_rng(7)
    for trial in range(60):
        projs, dense = random_projections(rng, int(rng.integers(1, 4)))
        positions = projs[0].dst.positions
        single = single_position_axons(projs, positions)
        assert single.tolist() == [brute_axons(projs, p, p + 1) for p in range(positions)]
        for _ in range(5):  # ranges within a row, across rows, the whole layer
            first = int(rng.integers(0, positions))
            end = int(rng.integers(first + 1, positions + 1))
            assert axons(projs, first, end) == brute_axons(projs, first, end), (trial, first)
            assert axons([*projs, dense], first, end) == brute_axons(projs, first, end) + 5
    # Nine convs from one source: counted position by position instead of 2^9 terms.
    projs, _ = random_projections(np.random.default_rng(8), 9)
    positions = projs[0].dst.positions
    assert single_position_axons(projs, positions).tolist() == [
        brute_axons(projs, p, p + 1) for p in range(positions)]


def big_conv_net(hw, layers, channels=4):
    rng = np.random.default_rng(0)
    nodes, src, c_in = [FxInput(name="x", shape=(1, hw, hw), scale=1.0)], "x", 1
    for i in range(layers):
        nodes += [FxConv2d(name=f"conv{i}", inputs=(src,),
                           weight=w(rng, channels, c_in, 3, 3), padding=(1, 1)),
                  lif(f"sn{i}", f"conv{i}")]
        src, c_in = f"sn{i}", channels
    return Graph.build(nodes)


@pytest.mark.parametrize("hw, layers", [(300, 1), (200, 2)])
def test_large_layers_map_and_cost_in_memory_linear_in_their_size(hw, layers):
    graph = big_conv_net(hw, layers)
    neurons = 4 * hw * hw  # per layer
    # 1024-neuron cores: 352 cores for 300 x 300 x 4 neurons, so that a table of cores x
    # positions would show (352 x 90,000 int64: 253 MB), as would np.eye(positions) (8.1 GB;
    # 92 MB even in 1024-row chunks).
    target = dataclasses.replace(T2, neurons_per_core=1024)
    rng = np.random.default_rng(1)
    spikes = {"x": rng.random((1, 1, hw, hw)),
              **{f"sn{i}": rng.random((2, 1, 4, hw, hw)) < 0.1 for i in range(layers - 1)}}
    tracemalloc.start()
    try:
        core_map = map_to_cores(graph, target)
        report = estimate_cost(graph, core_map, spikes, 2, target)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Linear structures hold a few dozen bytes per neuron: per-neuron sends and hops
    # (float64 x 3), per-position sums, and per core the source cells it reads (about the
    # positions it holds, times the kernel's overlap), each pair with its core, distance and
    # route time. 256 B per neuron of a layer is 92 MB at 300 x 300, 41 MB at 200 x 200.
    assert peak < 256 * neurons, peak
    for i in range(layers):
        cores = core_map.layers[f"sn{i}"].cores
        assert [c.start for c in cores] == [0] + [c.stop for c in cores[:-1]]
        assert cores[-1].stop == neurons
        assert all(c.neurons <= 1024 and c.fan_in <= target.max_input_axons_per_core
                   and c.synapse_bytes + c.state_bytes <= target.sram_bytes_per_core
                   for c in cores)
    assert report.neuron_updates.sum() == neurons * layers
    # Every input pixel with a nonzero payload sends once per step to each core reading it.
    assert report.input_messages.sum() > 0


def test_a_full_size_input_maps_on_loihi2():
    """1 x 300 x 300 into a 3 x 3 conv of 4 channels: 360,000 neurons whose fan-in is at most
    9 synapses (8 + 9 B each): memory ends every core but the last, at 7,710 neurons of
    17 B if all were interior (131,072 B); edge neurons need less, so no core holds fewer."""
    cores = map_to_cores(big_conv_net(300, 1), T2).layers["sn0"].cores
    assert all(c.bound == "memory" for c in cores[:-1]) and cores[-1].bound == "layer end"
    assert min(c.neurons for c in cores[:-1]) >= T2.sram_bytes_per_core // 17 == 7710
    # A core reads the input rows of the output rows its positions span, plus the halo.
    assert all(c.fan_in <= 300 * (-(-c.neurons // (4 * 300)) + 3) for c in cores)
