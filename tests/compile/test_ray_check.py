"""`snnc check --ray` (issue 15, part 3): the samples sharded over a two-worker local Ray
cluster give exactly the JSON of one process, for the reference simulator and for Lava; a
worker killed mid-run is retried and reported; every sample is checked once, in order.

One local cluster for the module (each start costs seconds); the check finds it started and
uses it. Lava: 4 samples of a small graph without golden vectors (6 Lava runs in all)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys

import numpy as np
import pytest
import ray
from click.testing import CliRunner

from snnc.artifact import Artifact, write_artifact
from snnc.backends.refsim import simulate
from snnc.backends.refsim.backend import RefsimBackend
from snnc.errors import SnncError
from snnc.inputs import CheckData
from snnc.targets import LOIHI2
from snnc.tools import shard
from snnc.tools.check import Thresholds, run_check
from snnc.tools.cli import cli
from snnc.tools.evaluate import predictions
from snnc.tools.golden import make_golden
from snnc.tools.pass_runner import compile_graph

T = 3
N = 40
WRONG = [3, 25, 33]  # wrongly labelled samples, in both shards
INPUTS = np.random.default_rng(4).random((N, 3, 5, 5))
#: (sample, step) of each flipped sn_c spike (fixed point): sample 27's step-1 flip, in the
#: second shard, is the first mismatch of the whole data (step before sample)
FLIPS = ((27, 1), (5, 2))


class Flipping(RefsimBackend):
    """The reference simulator with FLIPS flipped: mismatches in both shards. Not registered;
    this module is shipped to the workers by value (see `cluster`)."""

    def run(self, graph, x, timesteps):
        records = super().run(graph, x, timesteps)
        for i in range(x.shape[0]):
            for sample, step in FLIPS:
                if graph == "fixed" and np.array_equal(x[i], INPUTS[sample]):
                    records["sn_c"][step + 3, i, 1, 0, 0] ^= True  # sn_c's depth is 3
        return records


class Dying(RefsimBackend):
    """Kills its own process on sample 20 (shard 1's first), at every attempt."""

    def run(self, graph, x, timesteps):
        if np.array_equal(x[0], INPUTS[20]):
            os.kill(os.getpid(), signal.SIGKILL)
        return super().run(graph, x, timesteps)


class Failing(RefsimBackend):
    def run(self, graph, x, timesteps):
        raise SnncError("failing backend: refused")


@pytest.fixture(scope="module")
def cluster():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, object_store_memory=shard.OBJECT_STORE_BYTES)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the backends above
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def compiled(residual_graph):
    return compile_graph(residual_graph(np.random.default_rng(3), False, fc_bias=True),
                         LOIHI2, timesteps=T)


@pytest.fixture(scope="module")
def labelled(compiled):
    y = predictions(compiled.reference, simulate(compiled.reference, INPUTS, T))
    y[WRONG] = (y[WRONG] + 1) % 4
    return CheckData(INPUTS, y, "test.npz")


@pytest.fixture(scope="module")
def files(compiled, labelled, tmp_path_factory):
    """The artifact (with golden vectors: shard 0 runs that rung) and the data file."""
    folder = tmp_path_factory.mktemp("ray")
    art = Artifact(compiled.graph, reference=compiled.reference, target="loihi2",
                   meta={"timesteps": T}, golden=make_golden(compiled.graph, INPUTS, T))
    write_artifact(art, folder / "m.snnc")
    np.savez(folder / "d.npz", x=labelled.x, y=labelled.y)
    return art, folder


def _check(*args):
    return CliRunner().invoke(cli, ["check", *map(str, args)])


def _api(art, path, data, kind, sharded: bool, **extra):
    settings = {"backend": kind(art, path), "timesteps": T, "backend_samples": None,
                "thresholds": Thresholds(max_accuracy_drop=100), **extra}
    if sharded:
        return shard.run_sharded(art, str(path), data, workers=2, **settings)
    return run_check(art, str(path), data, **settings)


def test_ray_check_writes_the_json_of_one_process(cluster, files):
    art, folder = files
    common = [folder / "m.snnc", "--data", folder / "d.npz", "--max-accuracy-drop", "100"]
    one = _check(*common, "--json", folder / "one.json")
    two = _check(*common, "--ray", "--workers", "2", "--batch-size", "3",
                 "--json", folder / "two.json")
    assert one.exit_code == two.exit_code == 0, two.output
    doc = json.loads((folder / "one.json").read_text())
    assert json.loads((folder / "two.json").read_text()) == doc
    assert "ray: 2 shards on 2 workers" in two.output and "no shard retried" in two.output
    # what one process found, against figures known without snnc's counts
    assert doc["data"]["samples"] == doc["equivalence"]["samples"] == N
    assert doc["accuracy"]["float"] == (N - len(WRONG)) / N
    assert doc["golden"]["total_mismatches"] == 0 and doc["estimates"]["samples"] == 32


def test_first_mismatch_and_counts_merge_across_shards(cluster, files, labelled):
    art, folder = files
    path = folder / "m.snnc"
    report, run = _api(art, path, labelled, Flipping, True)
    doc = report.to_json()
    assert doc == _api(art, path, labelled, Flipping, False).to_json()
    assert run.shards == [(0, 20), (20, 40)] and run.retried == {}
    eq = doc["equivalence"]
    assert eq["total_mismatches"] == len(FLIPS) and eq["layers"]["sn_c"] == len(FLIPS)
    first = eq["first_mismatch"]
    assert (first["layer"], first["sample"], first["step"], first["neuron"]) == \
        ("sn_c", 27, 1, [1, 0, 0])


def test_a_killed_worker_is_retried_and_reported(cluster, files, labelled, monkeypatch):
    art, folder = files
    path = folder / "m.snnc"
    monkeypatch.setenv(shard.KILL_ENV, "1")  # shard 1's worker dies after its first batch
    report, run = _api(art, path, labelled, RefsimBackend, True, batch=4)
    assert run.retried == {1: 1} and run.attempts == {0: 1, 1: 2}
    assert "shard 1 (samples 20 to 39) ran 2 times" in run.summary()
    monkeypatch.delenv(shard.KILL_ENV)
    assert report.to_json() == _api(art, path, labelled, RefsimBackend, False).to_json()
    assert report.data["samples"] == N


def test_a_shard_whose_worker_always_dies_fails_the_check_by_name(cluster, files, labelled,
                                                                   monkeypatch):
    art, folder = files
    monkeypatch.setattr(shard, "MAX_RETRIES", 1)  # two attempts, both killed
    with pytest.raises(SnncError, match=r"^ray: shard 1 \(samples 20 to 39\) failed after 2 "
                                        r"attempts \(at most 2\): "):
        _api(art, folder / "m.snnc", labelled, Dying, True)


def test_an_error_in_a_shard_is_the_check_s_error(cluster, files, labelled):
    art, folder = files
    with pytest.raises(SnncError, match="failing backend: refused"):
        _api(art, folder / "m.snnc", labelled, Failing, True)


@pytest.mark.timeout(600)
def test_ray_check_on_lava_writes_the_json_of_one_process(cluster, compiled, tmp_path):
    art = Artifact(compiled.graph, reference=compiled.reference, target="loihi2",
                   meta={"timesteps": T})  # no golden vectors: no golden run
    write_artifact(art, tmp_path / "m.snnc")
    np.savez(tmp_path / "d.npz", x=INPUTS[:4],
             y=predictions(compiled.graph, simulate(compiled.graph, INPUTS[:4], T)))
    common = [tmp_path / "m.snnc", "--backend", "lava", "--data", tmp_path / "d.npz"]
    one = _check(*common, "--json", tmp_path / "one.json")
    two = _check(*common, "--ray", "--workers", "2", "--json", tmp_path / "two.json")
    assert one.exit_code == two.exit_code == 0, two.output
    doc = json.loads((tmp_path / "one.json").read_text())
    assert json.loads((tmp_path / "two.json").read_text()) == doc
    assert "ray: 2 shards on 2 workers" in two.output
    assert doc["backend"] == "lava" and doc["equivalence"]["samples"] == 4
    assert doc["total_mismatches"] == 0 and doc["lava_floating_pt"]["total_mismatches"] == 0
    assert doc["accuracy"]["backend"] == 1.0


@pytest.mark.parametrize("samples,backend,parts", [(40, 40, 2), (41, 41, 3), (360, 32, 2),
                                                   (5, 0, 2), (3, 2, 4), (1, 1, 8)])
def test_the_plan_checks_every_sample_once_in_order(samples, backend, parts):
    ranges = shard.plan(samples, backend, parts)
    assert [i for a, b in ranges for i in range(a, b)] == list(range(samples))
    for first, stop in ((0, backend), (backend, samples)):  # each side split near-evenly
        sizes = [b - a for a, b in ranges if first <= a < stop]
        assert len(sizes) == min(parts, stop - first)
        assert not sizes or max(sizes) - min(sizes) <= 1


def test_workers_without_ray_is_refused(files):
    art, folder = files
    result = _check(folder / "m.snnc", "--workers", "2")
    assert result.exit_code == 2 and "--workers needs --ray" in result.output


def test_ray_not_installed_is_one_line(files, monkeypatch):
    art, folder = files
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = _check(folder / "m.snnc", "--ray")
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "snnc: error: --ray needs Ray, an optional extra of snnc: pip install 'snnc[ray]'")
