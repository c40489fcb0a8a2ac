"""`snnc check` on Lava in two parts, merged, and in batches of 2: the same report as one
run (issues 16 and 13).

Lava runs about a second a sample plus its start-up, so this uses 4 samples of a small
residual graph and an artifact without golden vectors (no golden run): 10 Lava runs in all.
"""

from __future__ import annotations

import numpy as np
import pytest

from snnc.artifact import Artifact, write_artifact
from snnc.backends import create_backend
from snnc.backends.refsim import simulate
from snnc.inputs import CheckData
from snnc.targets import LOIHI2
from snnc.tools.check import Thresholds, merge_reports, run_check
from snnc.tools.evaluate import predictions
from snnc.tools.pass_runner import compile_graph

T = 3


@pytest.mark.timeout(900)
def test_lava_check_in_two_parts_merges_to_one_run(residual_graph, tmp_path):
    compiled = compile_graph(residual_graph(np.random.default_rng(5), True, fc_bias=True),
                             LOIHI2, timesteps=T)
    art = Artifact(compiled.graph, reference=compiled.reference, target="loihi2",
                   meta={"timesteps": T})
    path = tmp_path / "m.snnc"
    write_artifact(art, path)
    x = np.random.default_rng(6).random((4, 3, 5, 5))
    y = predictions(compiled.graph, simulate(compiled.graph, x, T))
    y[2] = (y[2] + 1) % 4  # one wrong label, in the second half
    data = CheckData(x, y, "test.npz")
    lava = create_backend("lava", art, path)

    def check(part: CheckData, start: int, batch: int | None = None):
        return run_check(art, str(path), part, backend=lava, timesteps=T,
                         thresholds=Thresholds(max_accuracy_drop=100), backend_samples=None,
                         start=start, batch=batch)

    whole = check(data, 0)
    merged = merge_reports(check(data.part(0, 2), 0), check(data.part(2, 4), 2))
    doc = whole.to_json()
    assert merged.to_json() == doc
    assert check(data, 0, batch=2).to_json() == doc  # Lava runs 32 at once unless asked
    assert doc["backend"] == "lava" and doc["equivalence"]["samples"] == 4
    assert doc["total_mismatches"] == 0 and doc["lava_floating_pt"]["total_mismatches"] == 0
    assert doc["accuracy"]["backend"] == doc["accuracy"]["fixed"] == 3 / 4
    assert [r["name"] for r in doc["rungs"]][4:7] == ["equivalence", "lava floating_pt",
                                                      "golden"]
