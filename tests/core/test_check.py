"""`snnc check` with the reference-simulator backend, on a small quantized residual graph:
the JSON schema, accuracy figures recomputed here, exit codes, golden vectors, bad data.

Runs in both environments (no torch, no scikit-learn, no Lava)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.artifact import Artifact, read_artifact, write_artifact
from snnc.backends.refsim import simulate
from snnc.ir import Graph
from snnc.tools.cli import cli
from snnc.tools.evaluate import predictions
from snnc.tools.golden import make_golden

T = 3


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(4).random((40, 3, 5, 5))


def _artifact(tmp_path, compiled, inputs, *, reference=None, golden=None, graph=None):
    graph = graph or compiled.graph
    art = Artifact(graph, reference=reference or compiled.reference, target="loihi2",
                   meta={"timesteps": T},
                   golden=make_golden(graph, inputs, T) if golden is None else golden)
    path = tmp_path / "m.snnc"
    write_artifact(art, path)
    return path


def _swap(graph: Graph, node) -> Graph:
    return Graph.build([node if n.name == node.name else n for n in graph],
                       outputs=graph.outputs)


def _check(*args):
    return CliRunner().invoke(cli, ["check", *map(str, args)])


def test_json_report_holds_the_schema_and_recomputed_accuracy(tmp_path, compiled, inputs):
    path = _artifact(tmp_path, compiled, inputs)
    y = predictions(compiled.reference, simulate(compiled.reference, inputs, T))
    y[:5] = (y[:5] + 1) % 4  # five wrong labels: float accuracy is exactly 35/40
    np.savez(tmp_path / "d.npz", x=inputs, y=y)
    out = tmp_path / "r" / "check.json"
    result = _check(path, "--data", tmp_path / "d.npz", "--json", out,
                    "--max-accuracy-drop", 100)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["schema"] == "snnc.check/1" and doc["passed"] is True
    assert doc["total_mismatches"] == 0
    assert set(doc["equivalence"]["layers"]) == {"sn_a", "sn_b", "sn_c", "out"}
    assert doc["accuracy"]["float"] == 35 / 40
    fixed = predictions(compiled.graph, simulate(compiled.graph, inputs, T))
    assert doc["accuracy"]["fixed"] == float((fixed == y).mean())
    assert doc["accuracy"]["backend"] == doc["accuracy"]["fixed"]  # refsim hardware timing
    assert doc["accuracy"]["fixed_on_backend_samples"] == doc["accuracy"]["fixed"]
    assert doc["resources"]["cores"] >= 4 and doc["resources"]["fits"] is True
    e = doc["estimates"]
    assert e["energy_uj"] > 0 and e["latency_us"] > 0
    assert e["energy_uj"] == e["energy_dynamic_uj"]  # energy_uj stays the dynamic figure
    assert e["energy_total_uj"] == pytest.approx(e["energy_dynamic_uj"] + e["energy_static_uj"])
    # static: one chip's measured 0.232078 W over the latency; throughput: its inverse
    assert e["energy_static_uj"] == pytest.approx(0.232078 * e["latency_us"])
    assert e["inferences_per_s"] == pytest.approx(1e6 / e["latency_us"])
    assert e["synops_per_inference"] > 0
    assert {r["name"]: r["status"] for r in doc["rungs"]}["golden"] == "pass"
    assert "PASSED" in result.output


def test_json_to_stdout_is_only_json(tmp_path, compiled, inputs):
    result = _check(_artifact(tmp_path, compiled, inputs), "--json", "-")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"]["source"] == "golden"


def test_a_changed_golden_spike_fails_and_is_located(tmp_path, compiled, inputs):
    golden = make_golden(compiled.graph, inputs, T)
    spikes = golden["spikes/sn_b"].copy()
    spikes[2, 1, 0, 3, 4] = ~spikes[2, 1, 0, 3, 4]
    golden["spikes/sn_b"] = spikes
    path = _artifact(tmp_path, compiled, inputs, golden=golden)
    result = _check(path, "--json", tmp_path / "c.json")
    assert result.exit_code == 2, result.output
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc["passed"] is False and doc["golden"]["total_mismatches"] == 1
    first = doc["golden"]["first_mismatch"]
    assert (first["layer"], first["step"], first["sample"], first["neuron"]) == \
        ("sn_b", 2, 1, [0, 3, 4])
    assert first["reference"] == int(spikes[2, 1, 0, 3, 4])
    assert "FAILED: golden" in result.output


def test_accuracy_threshold_fails_the_check(tmp_path, compiled, inputs):
    # A float reference whose readout is negated: labels from it are what float gets right.
    fc = compiled.reference["fc"]
    flipped = _swap(compiled.reference, dataclasses.replace(fc, weight=-fc.weight,
                                                            bias=-np.asarray(fc.bias)))
    y = predictions(flipped, simulate(flipped, inputs, T))
    fixed = predictions(compiled.graph, simulate(compiled.graph, inputs, T))
    drop = 100 * (1 - (fixed == y).mean())
    assert drop > 1
    np.savez(tmp_path / "d.npz", x=inputs, y=y)
    path = _artifact(tmp_path, compiled, inputs, reference=flipped)
    result = _check(path, "--data", tmp_path / "d.npz")
    assert result.exit_code == 2 and "FAILED: accuracy" in result.output
    relaxed = _check(path, "--data", tmp_path / "d.npz", "--max-accuracy-drop", drop + 0.01)
    assert relaxed.exit_code == 0, relaxed.output


def test_a_possible_overflow_fails_the_range_rung(tmp_path, compiled, inputs):
    conv = compiled.graph["b"]
    loud = _swap(compiled.graph, dataclasses.replace(conv, weight_exp=7))
    path = _artifact(tmp_path, compiled, inputs, graph=loud)
    result = _check(path, "--json", "-")
    doc = json.loads(result.stdout)
    assert result.exit_code == 2
    assert {r["name"]: r["status"] for r in doc["rungs"]}["ranges"] == "FAIL"
    assert any(o["layer"] == "sn_b" for o in doc["ranges"]["overflows"])
    assert _check(path, "--allow-overflow").exit_code == 0


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((4, 3, 5))}, "x is shaped [4, 3, 5]"),
    ({"y": np.zeros(4, np.int64)}, "no array 'x'"),
    ({"x": np.zeros((4, 3, 5, 5)), "y": np.zeros(4)}, "y must be integer labels"),
    ({"x": np.full((4, 3, 5, 5), np.nan)}, "finite"),
    ({"x": np.zeros((4, 5, 3, 5, 5))}, "5 steps"),
])
def test_bad_data_is_a_one_line_error(tmp_path, compiled, inputs, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    result = _check(_artifact(tmp_path, compiled, inputs), "--data", tmp_path / "d.npz")
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_golden_and_files_are_one_line_errors(tmp_path, compiled, inputs):
    path = _artifact(tmp_path, compiled, inputs, golden={})
    result = _check(path)
    assert result.exit_code == 1 and "no golden vectors" in result.output
    for args, message in [((tmp_path / "none.snnc",), "none.snnc"),
                          ((path, "--data", "nope.npz"),
                           "expected golden, digits, digits32, random"),
                          ((path, "--data", "digits32"),
                           "--data digits32 gives inputs shaped [3, 32, 32], but the model's "
                           "input is [3, 5, 5]")]:
        result = _check(*args)
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output


def test_golden_vectors_round_trip_through_the_artifact(tmp_path, compiled, inputs):
    path = _artifact(tmp_path, compiled, inputs)
    golden = read_artifact(path).golden
    assert golden["inputs"].shape == (4, 3, 5, 5)
    assert golden["spikes/sn_c"].dtype == bool and golden["spikes/sn_c"].shape[:2] == (T, 4)
    direct = simulate(compiled.graph, inputs[:4], T)
    np.testing.assert_array_equal(golden["spikes/sn_c"], direct.spikes["sn_c"])
    np.testing.assert_array_equal(golden["readout/out"], direct.readout["out"])


def test_compare_tolerates_float_rounding_only_where_asked():
    from snnc.tools.golden import compare

    want = {"s": np.zeros((2, 3, 4), bool), "v": np.full((1, 3, 2), 0.1 + 0.2)}
    got = {"s": want["s"].copy(), "v": np.full((1, 3, 2), 0.3)}  # 0.1 + 0.2 != 0.3 in binary
    got["s"][1, 2, 3] = True
    exact = compare(got, want, reference="r", order=["s", "v"])
    assert exact.layers == {"s": 1, "v": 6}
    assert exact.first == {"layer": "s", "sample": 2, "step": 1, "neuron": [3],
                           "backend": 1, "reference": 0}
    loose = compare(got, want, reference="r", order=["s", "v"], rtol=1e-9)
    assert loose.layers == {"s": 1, "v": 0}
    got["v"][0, 1, 1] = 0.31
    assert compare(got, want, reference="r", order=["s", "v"], rtol=1e-9).layers["v"] == 1


# -- a check in parts: counts per batch, merged (issue 16) --------------------------------


def _labelled(compiled, inputs):
    from snnc.inputs import CheckData

    y = predictions(compiled.reference, simulate(compiled.reference, inputs, T))
    y[[3, 25, 33]] = (y[[3, 25, 33]] + 1) % 4  # wrong labels in both halves
    return CheckData(inputs, y, "test.npz")


def _run(compiled, inputs, data, *, backend=None, start=0, backend_samples=None, batch=128,
         golden=True):
    from snnc.backends import create_backend
    from snnc.tools.check import Thresholds, run_check

    art = Artifact(compiled.graph, reference=compiled.reference, target="loihi2",
                   meta={"timesteps": T},
                   golden=make_golden(compiled.graph, inputs, T) if golden else {})
    return run_check(art, "m.snnc", data, backend=backend or create_backend("refsim", art),
                     timesteps=T, thresholds=Thresholds(max_accuracy_drop=100),
                     backend_samples=backend_samples, batch=batch, start=start)


@pytest.mark.parametrize("split, batch, backend_samples", [
    (20, 128, None),   # halves; one batch each
    (13, 8, 30),       # uneven parts in several batches; the backend on the first 30 only
    (35, 16, 10),      # the second part holds no backend sample and no estimate sample
])
def test_two_parts_merged_give_the_json_of_one_run(compiled, inputs, split, batch,
                                                   backend_samples):
    from snnc.tools.check import merge_reports

    data = _labelled(compiled, inputs)
    whole = _run(compiled, inputs, data, backend_samples=backend_samples)
    first = _run(compiled, inputs, data.part(0, split), backend_samples=backend_samples,
                 batch=batch)
    second = _run(compiled, inputs, data.part(split, 40), start=split,
                  backend_samples=backend_samples, batch=batch)
    merged = merge_reports(first, second)
    assert merged.to_json() == whole.to_json()
    # Counts, not fractions: the figures of the whole, computed here from the labels.
    doc = whole.to_json()
    fixed = predictions(compiled.graph, simulate(compiled.graph, inputs, T))
    assert doc["accuracy"]["fixed"] == float((fixed == data.y).sum()) / 40
    n = backend_samples or 40
    assert doc["data"]["backend_samples"] == doc["accuracy"]["backend_samples"] == n
    assert doc["accuracy"]["fixed_on_backend_samples"] == float((fixed == data.y)[:n].sum()) / n
    assert doc["estimates"]["samples"] == 32
    full = simulate(compiled.graph, inputs, T).spikes
    for layer, spikes in full.items():
        np.testing.assert_array_equal(merged.raster[layer],
                                      spikes[:, 0].reshape(T, -1), err_msg=layer)
        assert doc["firing_rates"]["fixed"][layer] == float(spikes.sum()) / spikes.size


def test_first_mismatches_carry_the_sample_index_of_the_whole_data(compiled, inputs):
    """A backend that flips one spike of sample 27 and one of sample 5 (at a later step):
    each part reports its own with the global index, and the merge keeps the earlier step,
    as one run does."""
    from snnc.backends.refsim.backend import RefsimBackend
    from snnc.tools.check import merge_reports

    class Flipping(RefsimBackend):  # not registered: a subclass is not a registration
        def run(self, graph, x, timesteps):
            records = super().run(graph, x, timesteps)
            for i in range(x.shape[0]):
                for sample, step in ((27, 1), (5, 2)):
                    if np.array_equal(x[i], inputs[sample]):
                        records["sn_c"][step + 3, i, 1, 0, 0] ^= True  # sn_c's depth is 3
            return records

    from snnc.analyses.timing import schedule

    assert schedule(compiled.graph).depth["sn_c"] == 3
    data = _labelled(compiled, inputs)
    art = Artifact(compiled.graph, reference=compiled.reference, target="loihi2")
    runs = [_run(compiled, inputs, part, backend=Flipping(art), start=start, golden=False)
            for part, start in ((data, 0), (data.part(0, 20), 0), (data.part(20, 40), 20))]
    whole, first, second = (r.equivalence for r in runs)
    assert (first.first["sample"], first.first["step"]) == (5, 2)
    assert (second.first["sample"], second.first["step"]) == (27, 1)
    assert (whole.first["sample"], whole.first["step"], whole.first["neuron"]) == \
        (27, 1, [1, 0, 0])
    assert whole.total == 2
    assert merge_reports(runs[1], runs[2]).to_json() == runs[0].to_json()


def test_parts_merge_only_when_adjacent_and_alike(compiled, inputs):
    from snnc.errors import SnncError
    from snnc.tools.check import merge_reports

    data = _labelled(compiled, inputs)
    a = _run(compiled, inputs, data.part(0, 10))
    b = _run(compiled, inputs, data.part(20, 30), start=20)
    with pytest.raises(SnncError, match="the second starts at sample 20, the first covers "
                                        "samples 0 to 9"):
        merge_reports(a, b)
    from snnc.inputs import CheckData

    unlabelled = _run(compiled, inputs, CheckData(inputs[10:20], None, "test.npz"), start=10)
    with pytest.raises(SnncError, match="different data labelled: True and False"):
        merge_reports(a, unlabelled)
