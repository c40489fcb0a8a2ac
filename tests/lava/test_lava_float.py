"""Lava floating_pt against the reference simulator's float hardware-timed record.

The graphs are the float residual graphs of tests/conftest.py, folded by the float passes
(the FLOAT target: no quantization): graded input, a shortcut balanced by a DelayDense, LIF
hard and soft reset, CLIF, synapse biases, a readout; 20 samples each.

Lava sums a synapse's products in its own order (one matrix-vector product of the dense
matrix) and the reference in another (a convolution tap by tap), so float results can differ
in their last bits. Two kinds of test, then:

- exact: weights and biases on a 2^-6 grid and inputs on a 2^-8 grid make every synaptic
  sum exact in float64 whatever its order; everything after the sum is the same arithmetic,
  so every spike and every readout value must be equal, bit for bit;
- general: plain random float weights; spikes must still be equal (a difference needs a
  neuron within a few ulps of its threshold), and readout values agree to rounding only.
  Measured on three seeds (4, 5, 6; 20 samples): 0 spike mismatches; 181, 154 and 171 of the
  320 readout values inside the readout's window differ, by at most 5.3e-15.
"""

import numpy as np
import pytest

from snnc.artifact import Artifact, write_artifact
from snnc.backends.lava import lower, run
from snnc.ir import CLIF, LIF, Add, Conv2d, Dense, Graph, Input, Readout
from snnc.targets import FLOAT, LOIHI2
from snnc.tools.pass_runner import compile_graph

pytestmark = pytest.mark.timeout(300)  # a Lava run that breaks inside a worker can hang
T = 3
SAMPLES = 20


def mismatches(got, expected):
    return {name: int((got[name] != expected[name]).sum()) for name in expected}


def on_grid(graph: Graph, step: float = 2.0 ** -6) -> Graph:
    """The graph with every synapse weight and bias rounded to multiples of `step`."""
    def snap(a):
        return None if a is None else np.round(a / step) * step

    nodes = [n.replace(weight=snap(n.weight), bias=snap(n.bias))
             if isinstance(n, Conv2d | Dense) else n for n in graph]
    return Graph.build(nodes)


def folded(graph: Graph) -> Graph:
    return compile_graph(graph, FLOAT, timesteps=T).graph


def spiking_rate(record, graph):
    return float(np.mean([record[n.name].mean() for n in graph
                          if n.name in record and n.spiking]))


@pytest.mark.parametrize("seed, clif, sequence", [(0, False, False), (1, True, False),
                                                  (2, True, True)])
def test_float_lava_equals_the_reference_bit_for_bit_when_sums_are_exact(
        seed, clif, sequence, residual_graph, hardware_record):
    rng = np.random.default_rng(seed)
    graph = folded(on_grid(residual_graph(rng, clif, fc_bias=True)))
    shape = (T, SAMPLES, 3, 5, 5) if sequence else (SAMPLES, 3, 5, 5)
    x = rng.integers(0, 256, shape) / 256.0
    expected = hardware_record(graph, x, T)
    got = lower.run_float(graph, x, T)
    assert set(got) == set(expected)
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in expected.items()}
    assert mismatches(got, expected) == dict.fromkeys(expected, 0)
    assert 0.02 < spiking_rate(expected, graph) < 0.98  # not a comparison of silent layers


def _every_option(graph: Graph) -> Graph:
    """The residual graph's neurons with the parameters the plain fixture leaves at their
    defaults: per-channel thresholds, gain, a nonzero hard reset, '>' comparisons, a CLIF
    with another tau, a leaky readout. Thresholds on the grid, so ties happen."""
    th = np.array([0.5, 0.625, 0.75])
    new = {
        "sn_a": LIF(name="sn_a", inputs=("a",), decay=0.75, threshold=th, compare=">",
                    reset="hard", v_reset=-0.25, gain=0.75),
        "sn_b": CLIF(name="sn_b", inputs=("b",), tau=2.5, threshold=0.5, compare=">"),
        "sn_c": LIF(name="sn_c", inputs=("sum",), decay=0.5, threshold=th[::-1].copy(),
                    compare=">=", reset="soft"),
        "out": Readout(name="out", inputs=("fc",), decay=0.75, mean=False),
    }
    return Graph.build([new.get(n.name, n).replace(type=None) for n in graph])


def test_every_neuron_option_bit_for_bit(residual_graph, hardware_record):
    rng = np.random.default_rng(3)
    graph = folded(_every_option(on_grid(residual_graph(rng, fc_bias=True))))
    x = rng.integers(0, 256, (SAMPLES, 3, 5, 5)) / 256.0
    expected = hardware_record(graph, x, T)
    got = lower.run_float(graph, x, T)
    assert mismatches(got, expected) == dict.fromkeys(expected, 0)
    assert 0.02 < spiking_rate(expected, graph) < 0.98


def _nested_sums(rng: np.random.Generator, c: int = 3) -> Graph:
    """A sum inside a sum, as the float passes leave a pre-activation residual network:

        x -> a -> sn_a -> b -> sn_b -> c --+-- inner --+--> sn_out -> fc -> out
        x -> s (shortcut) -----------------'            |
                         sn_b -> d -> sn_d -> e --------'

    The shortcut waits 2 steps to meet c in `inner`, and `inner` 1 more to meet e."""
    def conv(name, src, k=3):
        return Conv2d(name=name, inputs=(src,), weight=rng.normal(0, 0.7, (c, c, k, k)),
                      bias=rng.normal(0.1, 0.1, c), padding=(k // 2, k // 2))

    def lif(name, src, reset="hard"):
        return LIF(name=name, inputs=(src,), decay=0.5, threshold=0.6, compare=">=",
                   reset=reset)

    return Graph.build([
        Input(name="x", shape=(c, 5, 5)),
        conv("a", "x"), lif("sn_a", "a"), conv("b", "sn_a"), lif("sn_b", "b", "soft"),
        conv("c", "sn_b"), conv("s", "x", 1), Add(name="inner", inputs=("c", "s")),
        conv("d", "sn_b"), lif("sn_d", "d"), conv("e", "sn_d"),
        Add(name="outer", inputs=("e", "inner")), lif("sn_out", "outer", "soft"),
        Dense(name="fc", inputs=("sn_out",), weight=rng.normal(0, 0.3, (4, c * 25)),
              bias=rng.normal(0, 0.1, 4)),
        Readout(name="out", inputs=("fc",)),
    ])


def test_delays_through_nested_sums(hardware_record):
    rng = np.random.default_rng(9)
    graph = folded(on_grid(_nested_sums(rng)))
    assert lower.make_plan(graph, T, 1).delays == {"a": 0, "b": 0, "c": 1, "s": 3, "d": 0,
                                                    "e": 0, "fc": 0}
    x = rng.integers(0, 256, (SAMPLES, 3, 5, 5)) / 256.0
    expected = hardware_record(graph, x, T)
    assert mismatches(lower.run_float(graph, x, T), expected) == dict.fromkeys(expected, 0)
    assert 0.02 < spiking_rate(expected, graph) < 0.98


def test_float_lava_with_unrounded_weights(residual_graph, hardware_record):
    rng = np.random.default_rng(4)
    graph = folded(residual_graph(rng, True, fc_bias=True))
    x = rng.random((SAMPLES, 3, 5, 5))
    expected = hardware_record(graph, x, T)
    got = lower.run_float(graph, x, T)
    spikes = {n: c for n, c in mismatches(got, expected).items() if graph[n].spiking}
    assert spikes == dict.fromkeys(spikes, 0)
    np.testing.assert_allclose(got["out"], expected["out"], rtol=1e-12, atol=1e-12)


def test_a_corrupted_float_lowering_is_detected(monkeypatch, residual_graph, hardware_record):
    rng = np.random.default_rng(0)
    graph = folded(on_grid(residual_graph(rng, fc_bias=True)))
    x = rng.integers(0, 256, (SAMPLES, 3, 5, 5)) / 256.0
    original = lower.synapse_bias

    def off(node, build):  # layer sn_b: every bias a quarter up
        bias = original(node, build)
        return bias + 0.25 if node.name == "sn_b" else bias

    monkeypatch.setattr(lower, "synapse_bias", off)
    bad = mismatches(lower.run_float(graph, x, T), hardware_record(graph, x, T))
    assert bad["sn_a"] == 0 and bad["sn_b"] > 0


@pytest.mark.parametrize("precision", ["fixed", "float"])
def test_the_runner_script_runs_either_graph_of_an_artifact(precision, tmp_path, residual_graph,
                                                             hardware_record):
    rng = np.random.default_rng(7)
    compiled = compile_graph(on_grid(residual_graph(rng, True, fc_bias=True)), LOIHI2,
                             timesteps=T)
    path = write_artifact(Artifact(compiled.graph, reference=compiled.reference,
                                   target="loihi2", meta={"timesteps": T}), tmp_path / "m.snnc")
    x = rng.integers(0, 256, (4, 3, 5, 5)) / 256.0
    np.save(tmp_path / "x.npy", x)
    argv = [str(path), "--input", str(tmp_path / "x.npy"), "--timesteps", str(T),
            "--output", str(tmp_path / "out.npz"), "--precision", precision]
    assert run.main(argv) == 0
    graph = compiled.graph if precision == "fixed" else compiled.reference
    expected = hardware_record(graph, x, T)
    with np.load(tmp_path / "out.npz") as got:
        assert set(got.files) == set(expected)
        assert mismatches(got, expected) == dict.fromkeys(expected, 0)


def test_the_runner_script_says_when_a_float_artifact_has_no_fixed_graph(tmp_path, capsys,
                                                                          residual_graph):
    graph = folded(residual_graph(np.random.default_rng(0)))
    path = write_artifact(Artifact(graph, target="float"), tmp_path / "f.snnc")
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 5, 5)))
    argv = [str(path), "--input", str(tmp_path / "x.npy"), "--timesteps", str(T),
            "--output", str(tmp_path / "out.npz")]
    assert run.main(argv) == 1
    assert capsys.readouterr().err.strip() == (
        "snnc: error: the artifact holds a float graph (target 'float'); run it with "
        "--precision float")
