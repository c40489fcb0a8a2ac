"""Loihi 2's synaptic memory (analyses/loihi2_memory.py, the `loihi2` target's format),
against what Intel's compiler did with PilotNet and against hand arithmetic.

Independent figures: Intel's per-core table for PilotNet LIF, printed by the Loihi 2 compiler
in lava-dl's benchmark.ipynb (cores per layer; synaptic memory entries per core), and the
activity its notebook shows (rates per layer, driven by the biases alone).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from snnc.analyses.loihi2_memory import conv_entries, dense_entries, strip_neurons
from snnc.analyses.mapping import map_to_cores
from snnc.backends.refsim import simulate
from snnc.ir import FxConv2d, FxDense, FxInput, FxLIF, FxMerge, Graph
from snnc.passes.split_fan_in import split_fan_in
from snnc.targets import LOIHI2
from snnc.tools.cost import estimate_cost

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "pilotnet.py"


@pytest.fixture(scope="module")
def pilotnet():
    spec = importlib.util.spec_from_file_location("snnc_bench_pilotnet", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_graph()


#: Intel's compiler on PilotNet LIF (benchmark.ipynb): cores, and SynMem entries per core
#: where this model's formula should give them (dense rows; the 64-channel kernels).
INTEL = {"input": 13, "conv1": 25, "conv2": 13, "conv3": 3, "conv4": 3, "conv5": 2,
         "fc1": 12, "fc2": 1, "fc3": 1, "out": 1}
INTEL_ENTRIES = {"conv5": 2880, "conv4": 2160, "fc2": 1300, "fc3": 150, "out": 10}


def test_pilotnet_maps_onto_the_cores_intels_compiler_used(pilotnet):
    core_map = map_to_cores(pilotnet, LOIHI2)
    assert {name: len(core_map.layers[name].cores) for name in INTEL} == INTEL
    assert core_map.n_cores == 74 and core_map.n_chips == 1
    for name, entries in INTEL_ENTRIES.items():
        assert core_map.layers[name].cores[0].synapse_bytes == entries * 8, name
    # fc1: every core reads all 2,560 inputs, as in Intel's table (AxonIn 2560)
    assert {c.fan_in for c in core_map.layers["fc1"].cores} == {2560}


def test_pilotnet_on_its_biases_fires_at_the_rates_the_chip_showed(pilotnet):
    run = simulate(pilotnet, np.zeros((1, 3, 66, 200)), 16)
    rates = {name: float(run.spikes[name].mean()) for name in run.spikes}
    assert rates["input"] == 0.0  # the measured run's input layer stayed silent
    quoted = {"conv1": 0.35, "conv2": 0.24, "conv3": 0.10, "conv4": 0.08, "conv5": 0.05}
    for name, rate in quoted.items():
        assert rates[name] == pytest.approx(rate, abs=0.015), name


def test_a_conv_strip_is_the_widest_power_of_two_columns_below_4096_neurons():
    assert strip_neurons((24, 32, 99), LOIHI2) == 4 * 32 * 24   # 8 columns: 6144
    assert strip_neurons((64, 8, 8), LOIHI2) == 4 * 8 * 64      # 8 columns: exactly 4096
    assert strip_neurons((8, 10, 30), LOIHI2) == 16 * 10 * 8    # 32 columns exceed 30
    assert strip_neurons((16, 300, 5), LOIHI2) == 255 * 16      # one column too tall: rows


def test_entry_counts_by_hand():
    w = np.full((64, 64, 3, 3), 8)  # 8 needs 5 signed bits: 64 x 5 bits = 5 words per tap
    assert conv_entries(w, LOIHI2) == 64 * 9 * 5
    assert dense_entries(2560, 17, LOIHI2) == 2560 * 5  # the 12,800 the compiler rejected
    assert dense_entries(2560, 9, LOIHI2) == 2560 * 3


def test_a_dense_layer_takes_cores_as_the_compilers_ratio_search_does():
    rng = np.random.default_rng(0)
    graph = Graph.build([
        FxInput(name="x", shape=(2560,), scale=1.0),
        FxDense(name="fc", inputs=("x",), weight=2 * rng.integers(-5, 6, (100, 2560))),
        FxLIF(name="sn", inputs=("fc",), dv=0, vth=100)])
    # 100 neurons: 2560 x 25 = 64,000 entries -> 6 cores of 17: 12,800 > 12,000 -> 12 of 9
    cores = map_to_cores(graph, LOIHI2).layers["sn"].cores
    assert [c.neurons for c in cores] == [9] * 11 + [1]
    assert cores[0].synapse_bytes == 2560 * 3 * 8


def test_a_kernel_larger_than_a_core_is_shared_out_by_channel_groups():
    rng = np.random.default_rng(1)
    weight = 2 * rng.integers(-60, 61, (256, 256, 3, 3))  # |w| <= 120: 8 signed bits
    graph = Graph.build([
        FxInput(name="x", shape=(256, 8, 8), scale=1.0),
        FxConv2d(name="c", inputs=("x",), weight=weight, padding=(1, 1)),
        FxLIF(name="sn", inputs=("c",), dv=0, vth=100)])
    entries = 256 * 9 * math.ceil(256 * 8 / 64)  # 73,728: 7 groups of at most 10,533
    assert conv_entries(weight, LOIHI2) == entries
    cores = map_to_cores(graph, LOIHI2).layers["sn"].cores
    per_core = (1 * 8 * 256) // 7  # a 1-column strip (2 would reach 4,096), shared by 7
    assert cores[0].neurons == per_core and len(cores) == math.ceil(256 * 64 / per_core)
    assert cores[0].synapse_bytes == math.ceil(entries / 7) * 8 <= 12000 * 8


def test_on_loihi2_only_dense_fan_ins_split_and_the_split_maps():
    rng = np.random.default_rng(2)
    graph = Graph.build([
        FxInput(name="x", shape=(512, 4, 4), scale=1.0),
        FxConv2d(name="c", inputs=("x",), weight=2 * rng.integers(-10, 11, (512, 512, 3, 3)),
                 padding=(1, 1)),
        FxLIF(name="sn", inputs=("c",), dv=0, vth=100),
        FxDense(name="fc", inputs=("sn",), weight=2 * rng.integers(-10, 11, (10, 8192))),
        FxLIF(name="out", inputs=("fc",), dv=0, vth=100)])
    result = split_fan_in(graph, LOIHI2)
    # the 3x3 conv reads 4,608 inputs per neuron, on population axons: not split; the dense
    # layer reads 8,192 > 4,096 axons: two partial sums of 256 channels x 16 positions
    assert isinstance(result.graph["c"], FxConv2d)
    assert isinstance(result.graph["fc"], FxMerge) and len(result.graph["fc"].inputs) == 2
    core_map = map_to_cores(result.graph, LOIHI2)
    assert all(c.fan_in <= 4096 for c in core_map.cores)
    explicit = dataclasses.replace(LOIHI2, synapse_format="explicit")
    assert isinstance(split_fan_in(graph, explicit).graph["c"], FxMerge)  # Loihi 1's rule


def test_a_loihi2_map_over_several_chips_charges_the_links(pilotnet):
    small_chips = dataclasses.replace(LOIHI2, mesh_width=4, mesh_height=4, cores_per_chip=16)
    core_map = map_to_cores(pilotnet, small_chips)
    assert core_map.n_cores == 74 and core_map.n_chips == 5  # the same cores, 16 a chip
    # input on cores 0-12 (chip 0), conv1 on 13-37: chips 0, 1 and 2
    assert {name: core_map.layers[name].chips for name in ("input", "conv1", "out")} == \
        {"input": 1, "conv1": 3, "out": 1}
    x = np.zeros((1, 3, 66, 200))
    run = simulate(pilotnet, x, 4)
    cost = estimate_cost(pilotnet, core_map, {**run.spikes, "x": x}, 4, small_chips)
    one_chip = estimate_cost(pilotnet, map_to_cores(pilotnet, LOIHI2),
                             {**run.spikes, "x": x}, 4, LOIHI2)
    assert cost.chip_hops.sum() > 0 and cost.energy_j["chip hops"] > 0
    assert one_chip.chip_hops.sum() == 0
    assert cost.static_energy_j == pytest.approx(5 * 0.232078 * cost.latency_s)
