"""The ONNX backend: the fixed-point program as one ONNX step, run in onnxruntime, equals the
reference simulator bit for bit at every layer and step (hardware timing, pipeline fill
included), and the hand-derived values of the golden cases.

Covered: every golden fixed-point case (every neuron type, exponents, ties, wraps, clips),
a split fan-in (channel slices, relays, merges) against its unsplit graph, random residual
graphs (LIF hard and soft reset, CLIF, readout; frame, sequence, spike and signed graded
inputs), two shipped examples through the command line, the exported file run by plain
onnxruntime, and every refusal and damaged file as one error line with no output.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnc import __version__
from snnc.artifact import Artifact, write_artifact
from snnc.backends import create_backend
from snnc.backends.onnx import OnnxError
from snnc.backends.onnx.export import build_model, read_onnx
from snnc.backends.onnx.lower import LOWERINGS
from snnc.backends.refsim import fixed_ops, hardware_record, simulate
from snnc.errors import UnsupportedNodeError
from snnc.ir import (
    Add,
    FxConv2d,
    FxCubaLIF,
    FxDense,
    FxInput,
    FxLIF,
    FxPartialSum,
    FxReadout,
    Graph,
    Input,
)
from snnc.ir.neuron import CUBA_RESETS
from snnc.passes.split_fan_in import split_fan_in
from snnc.targets import LOIHI2
from snnc.tools.pass_runner import compile_graph

ROOT = Path(__file__).resolve().parents[2]
SNNC = [sys.executable, "-m", "snnc.tools.cli"]
T = 3


def onnx_run(graph: Graph, x: np.ndarray, timesteps: int) -> dict[str, np.ndarray]:
    return create_backend("onnx").run(graph, x, timesteps)


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    bad = {k: int((np.asarray(got[k]) != np.asarray(want[k])).sum()) for k in want}
    assert bad == dict.fromkeys(want, 0)
    for k in want:
        assert got[k].shape == want[k].shape, k


# -- every node type ----------------------------------------------------------------------------

def test_every_fixed_point_node_type_has_a_lowering():
    assert set(LOWERINGS) == set(fixed_ops.FIXED_RULES) | {Add}


def test_golden_cases_match_their_hand_derived_values_and_the_reference(golden):
    """Every fixed-point golden case: the ONNX run's record equals the reference simulator's
    hardware record at every step, and, read in each layer's window, the case's expected
    values (derived by hand in the case file)."""
    seen = set()
    for case in golden.load_cases():
        if case.precision != "fixed":
            continue
        records = onnx_run(case.graph, case.inputs, case.timesteps)
        assert_same(records, hardware_record(case.graph, case.inputs, case.timesteps))
        got = golden.hardware_values(case, records)
        keys = [k for k in case.expected if golden.EXPOSES["lava-fixed"](case, k)]
        assert keys, case.name
        for key in keys:
            want, have = case.expected[key], np.asarray(got[key], np.float64)
            np.testing.assert_allclose(have, want, rtol=0, atol=case.atol,
                                       err_msg=f"{case.name}: {key}")
        seen |= {type(n) for n in case.graph}
    assert seen >= set(LOWERINGS) - {type(n) for n in split_graph(0)}, \
        "a node type is exercised by no case"


def weights(rng, shape) -> np.ndarray:
    """Mixed-sign weights as Lava keeps them: even values in [-256, 254] (halved to int8)."""
    return 2 * rng.integers(-128, 128, shape)


def split_graph(seed: int) -> Graph:
    """Graded input -> conv -> LIF -> [conv 3x3 + 1x1 shortcut] -> LIF -> dense -> readout,
    split for cores of 40 input axons: channel slices, relays and merges, the shortcut
    delayed to meet the merge; negative exponents (floor shifts of negative sums)."""
    rng = np.random.default_rng(seed)
    c = 6
    graph = Graph.build([
        FxInput(name="x", shape=(2, 6, 6), scale=255.0),
        FxConv2d(name="c0", inputs=("x",), weight=weights(rng, (c, 2, 3, 3)), padding=(1, 1),
                 weight_exp=-6),
        FxLIF(name="s0", inputs=("c0",), dv=1024, vth=200, bias_mant=30, bias_exp=3),
        FxConv2d(name="c1", inputs=("s0",), weight=weights(rng, (c, c, 3, 3)), padding=(1, 1),
                 weight_exp=-3),
        FxConv2d(name="short", inputs=("s0",), weight=rng.integers(0, 256, (c, c, 1, 1))),
        Add(name="sum", inputs=("c1", "short")),
        FxLIF(name="s1", inputs=("sum",), dv=2048, vth=150, reset="soft", reset_sub=150 << 6),
        FxDense(name="fc", inputs=("s1",), weight=-rng.integers(0, 256, (5, c * 36)),
                weight_exp=-2),
        FxReadout(name="out", inputs=("fc",), dv=100, scale=1.0),
    ])
    target = dataclasses.replace(LOIHI2, name="axons40", max_input_axons_per_core=40,
                                 synapse_format="explicit")
    return split_fan_in(graph, target).graph


@pytest.mark.parametrize("seed", [0, 1])
def test_a_split_fan_in_matches_the_reference(seed):
    graph = split_graph(seed)
    ops = {n.op for n in graph}
    assert {"FxChannelSlice", "FxPartialSum", "FxMerge"} <= ops
    x = np.random.default_rng(seed).random((5, 2, 6, 6))
    records = onnx_run(graph, x, 4)
    assert_same(records, hardware_record(graph, x, 4))
    assert records["s1"].any() and records["s0"].any()


@pytest.mark.parametrize("reset", CUBA_RESETS)
@pytest.mark.parametrize("delayed", [True, False])
def test_every_cuba_reset_and_current_decay_matches_the_reference(reset, delayed):
    """FxCubaLIF's every reset rule, delayed or not, with a current state (du < 4095), and
    an FxLIF with a current state and soft reset, on random weights and biases."""
    rng = np.random.default_rng(len(reset) + 7 * delayed)
    vth = 40
    graph = Graph.build([
        FxInput(name="x", shape=(12,), scale=255.0),
        FxDense(name="fc1", inputs=("x",), weight=weights(rng, (16, 12)), weight_exp=-5),
        FxCubaLIF(name="cuba", inputs=("fc1",), du=int(rng.integers(500, 3000)), dv=900,
                  vth=vth, reset=reset, reset_delay=delayed, reset_sub=(vth << 6) + 1,
                  bias_mant=rng.integers(-200, 200, 16), bias_exp=2),
        FxDense(name="fc2", inputs=("cuba",), weight=weights(rng, (8, 16)), weight_exp=1),
        FxLIF(name="lif", inputs=("fc2",), du=1500, dv=300, vth=vth, reset="soft",
              reset_sub=vth << 6),
        FxDense(name="fc3", inputs=("lif",), weight=weights(rng, (3, 8))),
        FxReadout(name="out", inputs=("fc3",), dv=10, bias_mant=-5, bias_exp=1),
    ])
    x = rng.random((6, 8, 12))
    records = onnx_run(graph, x, 6)
    assert_same(records, hardware_record(graph, x, 6))
    assert 0 < records["cuba"].mean() < 1 and records["lif"].any()


# -- random residual graphs, compiled from float IR --------------------------------------------

@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), clif=st.booleans(),
       source=st.sampled_from(["frame", "sequence", "spikes", "signed"]))
def test_random_residual_graphs_match_the_reference(residual_graph, seed, clif, source):
    rng = np.random.default_rng(seed)
    graph = residual_graph(rng, clif, fc_bias=True)
    calibration = None
    if source == "spikes":
        graph = Graph.build([Input(name="x", shape=(3, 5, 5), encoding="spikes"),
                             *list(graph)[1:]])
        x = (rng.random((T, 6, 3, 5, 5)) < 0.4).astype(float)
    elif source == "signed":
        x = rng.normal(0, 1, (6, 3, 5, 5))
        calibration = x
    else:
        x = rng.random((T, 6, 3, 5, 5) if source == "sequence" else (6, 3, 5, 5))
    fixed = compile_graph(graph, LOIHI2, timesteps=T, calibration=calibration).graph
    if source == "signed":
        assert fixed["x"].signed
    assert_same(onnx_run(fixed, x, T), hardware_record(fixed, x, T))


# -- shipped examples through the command line --------------------------------------------------

def snnc(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([*SNNC, *args], capture_output=True, text=True, cwd=ROOT,
                         timeout=600)
    if ok:
        assert res.returncode == 0, res.stderr
    return res


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """Two shipped examples compiled (STBP ResNet, CLIF VGG) and exported to ONNX."""
    folder = tmp_path_factory.mktemp("onnx-examples")
    out = {}
    for name in ("stbp_resnet", "clif_vgg"):
        art = folder / f"{name}.snnc"
        snnc("compile", f"examples/models.py:{name}", "--weights",
             f"examples/checkpoints/{name}.pt", "-T", "4", "--input-shape", "1,8,8",
             "--check-data", "digits", "--check-samples", "8", "-o", str(art))
        model = folder / f"{name}.onnx"
        snnc("export", str(art), "--format", "onnx", "-o", str(model))
        out[name] = (art, model)
    return out


@pytest.mark.parametrize("name, from_file", [("stbp_resnet", True), ("clif_vgg", False)])
def test_check_backend_onnx_reports_no_mismatch_on_shipped_examples(examples, name, from_file):
    """The exported file (--onnx-model), or the artifact exported in memory, checked on
    digits: 0 mismatches against the reference simulator at every step, golden vectors."""
    art, model = examples[name]
    extra = ("--onnx-model", str(model)) if from_file else ()
    doc = json.loads(snnc("check", str(art), "--backend", "onnx", "--data", "digits",
                          "--samples", "24", "--json", "-", *extra).stdout)
    assert doc["backend"] == "onnx" and doc["passed"]
    assert doc["total_mismatches"] == 0
    assert doc["data"]["backend_samples"] == 24
    assert sum(doc["equivalence"]["compared"].values()) > 24 * 4 * 1000
    rungs = {r["name"]: r["status"] for r in doc["rungs"]}
    assert rungs["equivalence"] == "pass" and rungs["golden"] == "pass"


def test_the_exported_file_runs_in_plain_onnxruntime(examples):
    """The file alone, read with onnx and run with onnxruntime by a loop written here from
    its documented interface (no snnc code), gives the reference simulator's record."""
    art_path, path = examples["stbp_resnet"]
    model = onnx.load(path)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["snnc.target"] == "loihi2" and meta["snnc.timesteps"] == "4"
    assert meta["snnc.version"] == __version__ and meta["snnc.timing"] == "hardware"
    assert json.loads(meta["snnc.input_shape"]) == {"input": [1, 8, 8]}
    assert "[batch, 1, 8, 8]" in meta["snnc.input_layout"]
    assert {n.op_type for n in model.graph.node} >= {"ConvInteger", "MatMulInteger"}
    latency = int(meta["snnc.latency"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((7, 1, 8, 8))
    state_in = [i for i in session.get_inputs() if i.name.startswith("state/")]
    states = {}
    for i in state_in:
        dims = [7 if d == "batch" else d for d in i.shape]
        states[i.name] = np.zeros(dims, {"tensor(int64)": np.int64,
                                         "tensor(uint8)": np.uint8}[i.type])
    layers = [o.name for o in session.get_outputs() if not o.name.startswith("state_next/")]
    got = {k: [] for k in layers}
    for _ in range(4 + latency):
        out = dict(zip([o.name for o in session.get_outputs()],
                       session.run(None, {"input": x, **states}), strict=True))
        states = {k: out["state_next/" + k[len("state/"):]] for k in states}
        for k in layers:
            got[k].append(out[k])
    from snnc.artifact import read_artifact

    want = hardware_record(read_artifact(art_path).graph, x, 4)
    assert set(want) == set(layers)
    for k in layers:
        np.testing.assert_array_equal(np.stack(got[k]).astype(want[k].dtype), want[k],
                                      err_msg=k)


# -- refusals and damaged files: one line, nothing written --------------------------------------

def one_line_error(res: subprocess.CompletedProcess, *words: str) -> str:
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def damaged(model: bytes) -> dict[str, bytes]:
    """Truncations at several points, garbage, an empty file, a model without snnc's
    metadata, and one whose node reads a tensor nothing produces."""
    cut = {f"truncated-{f}": model[:int(len(model) * f)] for f in (0.02, 0.3, 0.7, 0.999)}
    m = onnx.load_from_string(model)
    plain = onnx.ModelProto()
    plain.CopyFrom(m)
    del plain.metadata_props[:]
    broken = onnx.ModelProto()
    broken.CopyFrom(m)
    broken.graph.node[5].input[0] = "nothing"
    weight = max(m.graph.initializer, key=lambda t: len(t.raw_data)).raw_data
    at = model.index(weight) + len(weight) // 2
    flipped = model[:at] + bytes([model[at] ^ 4]) + model[at + 1:]
    return {**cut, "garbage": b"\x08\x07" + bytes(range(256)) * 4, "empty": b"",
            "no-metadata": plain.SerializeToString(), "dangling": broken.SerializeToString(),
            "weight-bit-flipped": flipped}


def test_damaged_models_are_refused_in_one_line_with_no_output(examples, tmp_path):
    art, model = examples["clif_vgg"]
    stbp_model = examples["stbp_resnet"][1]
    files = damaged(model.read_bytes())
    for name, data in files.items():
        bad = tmp_path / f"{name}.onnx"
        bad.write_bytes(data)
        with pytest.raises(OnnxError, match="--onnx-model"):
            read_onnx(bad)
    # through the command line: the option's check refuses the file before any work
    for name in ("truncated-0.7", "dangling", "no-metadata"):
        out = tmp_path / f"{name}.json"
        res = snnc("check", str(art), "--backend", "onnx", "--onnx-model",
                   str(tmp_path / f"{name}.onnx"), "--json", str(out), ok=False)
        one_line_error(res, "--onnx-model")
        assert not out.exists()
    line = one_line_error(snnc("check", str(art), "--backend", "onnx", "--onnx-model",
                               str(stbp_model), ok=False), "--onnx-model")
    assert "export the model from this artifact" in line
    assert "nothing" in str(pytest.raises(OnnxError, read_onnx, tmp_path / "dangling.onnx")
                            .value)
    assert "snnc.sha256" in str(pytest.raises(OnnxError, read_onnx,
                                              tmp_path / "weight-bit-flipped.onnx").value)


def test_a_float_artifact_is_refused_and_nothing_is_written(tmp_path, residual_graph):
    graph = residual_graph(np.random.default_rng(0))
    path = write_artifact(Artifact(graph, target="float", meta={"timesteps": T}),
                          tmp_path / "float.snnc")
    out = tmp_path / "float.onnx"
    one_line_error(snnc("export", str(path), "--format", "onnx", "-o", str(out), ok=False),
                   "targets float")
    assert not out.exists()


def test_an_unknown_node_type_is_refused_by_name(new_types):
    """A neuron type of the next issue, put in a graph without Graph.build's checks (as
    another tool could write it), is refused by the exporter naming layer and type."""
    _, fxplif = new_types
    graph = Graph.build([
        FxInput(name="x", shape=(4,), scale=1.0),
        FxDense(name="fc", inputs=("x",), weight=np.ones((2, 4), np.int64)),
        FxLIF(name="odd", inputs=("fc",), dv=0, vth=1)])
    fields = {f.name: getattr(graph["odd"], f.name) for f in dataclasses.fields(graph["odd"])}
    nodes = {**graph.nodes, "odd": fxplif(**fields)}
    with pytest.raises(UnsupportedNodeError, match="ONNX exporter .*'odd' of type FxPLIF"):
        build_model(Graph(MappingProxyType(nodes), graph.outputs))


@pytest.mark.parametrize("bits, signed", [(12, False), (16, True), (24, True)])
def test_graded_inputs_wider_than_8_bits_run_exactly_cut_into_bytes(bits, signed):
    """A payload of more than 8 bits reaches ConvInteger as byte planes (floor shifts of
    negative payloads included), summed in int64."""
    rng = np.random.default_rng(bits)
    node = FxInput(name="x", shape=(2, 5, 5), scale=float((1 << (bits - 1)) - 1), bits=bits,
                   signed=signed)
    graph = Graph.build([
        node,
        FxConv2d(name="c", inputs=("x",), weight=weights(rng, (3, 2, 3, 3)), padding=(1, 1),
                 weight_exp=-7),
        FxReadout(name="r", inputs=("c",), dv=0)])
    x = rng.uniform(-1.2 if signed else 0, 1.2, (4, 2, 5, 5))
    records = onnx_run(graph, x, 2)
    assert_same(records, hardware_record(graph, x, 2))
    assert np.abs(records["r"]).max() > 1 << 16


def test_values_the_integer_operators_cannot_hold_are_refused_naming_the_layer():
    relay = Graph.build([
        FxInput(name="x", shape=(4,), scale=1.0),
        FxDense(name="fc", inputs=("x",), weight=np.ones((2, 4), np.int64)),
        FxPartialSum(name="p", inputs=("fc",)),
        FxDense(name="odd", inputs=("p",), weight=np.ones((2, 2), np.int64)),
        FxReadout(name="r", inputs=("odd",), dv=0)])
    with pytest.raises(OnnxError, match="layer 'odd' .*not spikes or a graded payload"):
        build_model(relay)
    n = 33100  # 255 * 255 * n > 2^31: the int32 accumulator could overflow
    big = Graph.build([
        FxInput(name="x", shape=(n,), scale=1.0),
        FxDense(name="fc", inputs=("x",), weight=np.full((1, n), 255, np.int64)),
        FxReadout(name="r", inputs=("fc",), dv=0)])
    with pytest.raises(OnnxError, match="layer 'fc' .*int32 accumulator"):
        build_model(big)
    x = np.full((1, n), 1.0)  # not refused by the reference simulator: it sums in float64
    assert simulate(big, x, 1).readout["r"].max() > 0


def test_without_onnx_installed_the_backend_says_what_to_install(monkeypatch):
    """The Lava environment has neither onnx nor onnxruntime: the registry still loads, and
    exporting or running is one clear error (sys.modules[name] = None makes import fail)."""
    graph = split_graph(0)
    for missing in ("onnx", "onnxruntime"):
        with monkeypatch.context() as patch:
            patch.setitem(sys.modules, missing, None)
            with pytest.raises(OnnxError, match=f"needs {missing} .*snnc\\[interchange\\]"):
                create_backend("onnx").run(graph, np.zeros((1, 2, 6, 6)), 2)
