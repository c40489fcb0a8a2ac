"""`snnc check` in batches (issue 13, item 5): the reference simulator and the backend run
`--batch-size` samples at a time and add up counts and comparisons, so the report is the
same for every batch size (counts, first-mismatch locations, accuracy, agreement) while no
run holds more than one batch. `--data random` is made a batch at a time.

Runs in both environments (no torch, no scikit-learn, no Lava)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.artifact import Artifact, write_artifact
from snnc.backends.refsim import simulate
from snnc.backends.refsim.backend import RefsimBackend
from snnc.inputs import CheckData, RandomFrames, load_data
from snnc.tools.check import BATCH, Thresholds, run_check
from snnc.tools.cli import cli
from snnc.tools.evaluate import predictions
from snnc.tools.golden import make_golden

T = 3
N = 40
#: (sample, step, precision) of each flipped sn_c spike: sample 27's step-1 flip comes
#: first in the whole data (step before sample) though sample 5 is in an earlier batch.
FLIPS = ((27, 1, "fixed"), (5, 2, "fixed"), (38, 0, "float"), (2, 2, "float"))


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(4).random((N, 3, 5, 5))


@pytest.fixture(scope="module")
def labelled(compiled, inputs):
    y = predictions(compiled.reference, simulate(compiled.reference, inputs, T))
    y[[3, 25, 33]] = (y[[3, 25, 33]] + 1) % 4  # wrong labels in several batches
    return CheckData(inputs, y, "test.npz")


def _artifact(compiled, inputs) -> Artifact:
    return Artifact(compiled.graph, reference=compiled.reference, target="loihi2",
                    meta={"timesteps": T}, golden=make_golden(compiled.graph, inputs, T))


def _flipping(inputs):
    """A backend with a float rung that flips the sn_c spikes of FLIPS and records the size
    of every batch it is given."""

    class Flipping(RefsimBackend):  # not registered: a subclass is not a registration
        float_rung = "refsim float"
        batches: list[tuple[str, int]] = []

        def run(self, graph, x, timesteps):
            records = super().run(graph, x, timesteps)
            self.batches.append((graph, x.shape[0]))
            for i in range(x.shape[0]):
                for sample, step, precision in FLIPS:
                    if graph == precision and np.array_equal(x[i], inputs[sample]):
                        records["sn_c"][step + 3, i, 1, 0, 0] ^= True  # sn_c's depth is 3
            return records

    return Flipping


@pytest.mark.parametrize("backend_samples", [None, 10])
def test_every_batch_size_gives_the_report_of_one_batch(compiled, inputs, labelled,
                                                         backend_samples):
    art = _artifact(compiled, inputs)
    kind = _flipping(inputs)
    docs = {}
    for batch in (1, 3, BATCH, N):
        kind.batches.clear()
        report = run_check(art, "m.snnc", labelled, backend=kind(art), timesteps=T,
                           thresholds=Thresholds(max_accuracy_drop=100),
                           backend_samples=backend_samples, batch=batch)
        docs[batch] = report.to_json()
        n = backend_samples or N
        runs = -(-n // batch)  # one run per batch and precision, none larger than the batch
        assert [b for b in kind.batches if b[0] == "fixed"][:runs] == \
            [("fixed", min(batch, n - k * batch)) for k in range(runs)]
        assert sum(p == "float" for p, _ in kind.batches) == runs
    assert docs[1] == docs[3] == docs[BATCH] == docs[N]  # N: one batch
    doc = docs[1]
    whole = doc["equivalence"]
    if backend_samples is None:
        assert whole["total_mismatches"] == 2
        assert (whole["first_mismatch"]["sample"], whole["first_mismatch"]["step"],
                whole["first_mismatch"]["neuron"]) == (27, 1, [1, 0, 0])
        floats = doc["refsim_float"]
        assert floats["total_mismatches"] == 2
        assert (floats["first_mismatch"]["sample"], floats["first_mismatch"]["step"]) == (38, 0)
    else:  # the backend ran samples 0 to 9: only sample 5's flip, and sample 2's in float
        assert whole["total_mismatches"] == 1
        assert (whole["first_mismatch"]["sample"], whole["first_mismatch"]["step"]) == (5, 2)
        assert doc["refsim_float"]["first_mismatch"]["sample"] == 2
    assert doc["accuracy"]["float"] == (N - 3) / N
    assert doc["accuracy"]["backend_samples"] == (backend_samples or N)
    assert doc["agreement"] and doc["estimates"]["samples"] == 32


def _check(*args):
    return CliRunner().invoke(cli, ["check", *map(str, args)])


@pytest.mark.parametrize("data", ["labelled", "random"])
def test_batch_size_on_the_command_line_leaves_the_json_unchanged(tmp_path, compiled,
                                                                   inputs, labelled, data):
    path = tmp_path / "m.snnc"
    write_artifact(_artifact(compiled, inputs), path)
    if data == "labelled":
        np.savez(tmp_path / "d.npz", x=labelled.x, y=labelled.y)
        source = [tmp_path / "d.npz"]
    else:
        source = ["random", "--samples", 37]
    docs = []
    for batch in ([], ["--batch-size", 1], ["--batch-size", 3], ["--batch-size", 64]):
        out = tmp_path / f"c{len(docs)}.json"
        result = _check(path, "--data", *source, "--json", out, "--max-accuracy-drop", 100,
                        *batch)
        assert result.exit_code == 0, result.output
        docs.append(json.loads(out.read_text()))
    assert docs[0] == docs[1] == docs[2] == docs[3]
    assert docs[0]["data"]["samples"] == (N if data == "labelled" else 37)


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_a_batch_size_below_one_is_refused(tmp_path, compiled, inputs, value):
    path = tmp_path / "m.snnc"
    write_artifact(_artifact(compiled, inputs), path)
    result = _check(path, "--batch-size", value)
    assert result.exit_code == 2
    assert "--batch-size" in result.output and "Traceback" not in result.output


def test_random_data_is_made_per_batch_with_the_values_of_one_draw(compiled, inputs):
    data = load_data("random", _artifact(compiled, inputs), 23, T, seed=7)
    assert isinstance(data.x, RandomFrames) and data.samples == 23
    whole = np.random.default_rng(7).random((23, 3, 5, 5))
    for start, stop in ((0, 23), (0, 1), (5, 9), (20, 128), (22, 23)):
        np.testing.assert_array_equal(data.part(start, stop).x, whole[start:stop])
    assert load_data("random", _artifact(compiled, inputs), None, T).samples == 32
    with pytest.raises(TypeError, match="contiguous slices"):
        data.x[::2]


def test_parts_in_small_batches_merge_into_the_report_of_one_run(compiled, inputs, labelled):
    """Batches within a part carry the part's `start`: sample 27's flip, in the second part's
    third batch of 3, is located at 27."""
    from snnc.tools.check import merge_reports

    art = _artifact(compiled, inputs)
    kind = _flipping(inputs)

    def check(data, start=0, batch=BATCH):
        return run_check(art, "m.snnc", data, backend=kind(art), timesteps=T,
                         thresholds=Thresholds(max_accuracy_drop=100), backend_samples=None,
                         batch=batch, start=start)

    whole = check(labelled)
    merged = merge_reports(check(labelled.part(0, 20), batch=3),
                           check(labelled.part(20, N), start=20, batch=3))
    assert merged.to_json() == whole.to_json()
    assert merged.equivalence.first["sample"] == 27


def test_a_backend_has_its_own_default_batch(compiled, inputs, labelled):
    """A backend with a cost per run (Lava starts a process) declares `check_batch_size`: the
    check gives it runs of that many samples unless a batch is asked for, and an asked-for
    batch bounds it too; the report is the same."""
    from snnc.backends import Backend, BackendError, get_backend, register

    art = _artifact(compiled, inputs)

    class Costly(_flipping(inputs)):
        check_batch_size = 24

    def check(batch):
        Costly.batches.clear()
        doc = run_check(art, "m.snnc", labelled, backend=Costly(art), timesteps=T,
                        thresholds=Thresholds(max_accuracy_drop=100), backend_samples=None,
                        batch=batch).to_json()
        return doc, [n for p, n in Costly.batches if p == "float"]

    (own, sizes), (asked, smaller) = check(None), check(3)
    assert sizes == [24, 16] and smaller == [3] * 13 + [1]
    assert own == asked == check(BATCH)[0]
    assert get_backend("lava").check_batch_size == get_backend("lava").check_samples == 32
    assert Backend.check_batch_size is None
    for bad in (0, 2.5, True):
        class Bad(RefsimBackend):
            name = "bad_check_batch_size"
            check_batch_size = bad

        with pytest.raises(BackendError, match="check_batch_size"):
            register(Bad)
