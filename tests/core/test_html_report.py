"""The HTML page of `snnc check`: files, embedded images, escaping, missing parts, failures."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snnc import fileio
from snnc.errors import SnncError
from snnc.tools import html_report
from snnc.tools.html_report import PLOTS, write_html_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EVIL = "<script>alert(1)</script>"


def full_report(passed: bool = True) -> dict:
    return {
        "schema": "snnc.check/1", "artifact": "build/x.snnc", "target": "loihi2",
        "backend": "lava", "passed": passed,
        "data": {"source": "digits", "samples": 360, "backend_samples": 32},
        "rungs": [{"name": "validation", "passed": True, "detail": "graph ok"},
                  {"name": "equivalence", "passed": passed, "detail": "0 mismatches"}],
        "resources": {"cores": 8, "chips": 1, "fits": True, "layers": {"conv1": 2, EVIL: 6}},
        "ranges": {"overflows": [{"layer": EVIL, "where": "chip", "what": "v exceeds 24 bits"}]},
        "accuracy": {"float": 0.98, "fixed": 0.99, "backend": 1.0},
        "agreement": {"sn1": 0.995, EVIL: 0.9, "a$b$c": 1.0},
        "firing_rates": {"float": {"sn1": 0.1, EVIL: 0.2, "a$b$c": 0.0},
                         "fixed": {"sn1": 0.11, EVIL: 0.21}},
        "equivalence": {"reference": "refsim (hardware timing)", "total_mismatches": 1,
                        "layers": {"sn1": 0, EVIL: 1},
                        "first_mismatch": {"layer": EVIL, "sample": 0, "step": 3,
                                           "neuron": [2, 1, 4], "backend": 1, "reference": 0}},
        "golden": {"samples": 4, "total_mismatches": 0, "layers": {"sn1": 0}},
        "estimates": {"cycles_per_step": 1234.0, "latency_us": 100.0, "energy_uj": 11.4},
        "thresholds": {"max_mismatches": 0, "max_accuracy_drop": 1.0},
    }


def small_raster() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"sn1": rng.random((6, 10)) < 0.3,
            EVIL: rng.random((6, 600)) < 0.05,  # above the subsampling limit
            "silent": np.zeros((6, 3), dtype=bool)}


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """One full report, written once for the tests that only read it (plotting is slowish)."""
    out = tmp_path_factory.mktemp("html") / "report" / "nested"  # created if missing
    index = write_html_report(full_report(), small_raster(), out)
    assert index == out / "index.html"
    return index


def test_writes_index_and_three_pngs(written):
    out = written.parent
    index = written
    assert index.is_file()
    for name in PLOTS:
        assert (out / name).read_bytes().startswith(PNG_MAGIC), name
    assert sorted(p.name for p in out.iterdir()) == sorted([*PLOTS, "index.html"])


def test_files_are_readable_by_others(written):
    # A report is shared or served; mkstemp's private 0600 files would not be.
    for path in written.parent.iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask(), path.name


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_embedded_images_are_the_png_files(written):
    page = written.read_text(encoding="utf-8")
    embedded = [base64.b64decode(s) for s in re.findall(r'data:image/png;base64,([^"]+)"', page)]
    assert embedded == [(written.parent / name).read_bytes() for name in PLOTS]
    # Self-contained: nothing fetched from elsewhere, no scripts.
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()


def test_layer_names_are_escaped(written):
    page = written.read_text(encoding="utf-8")
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "[2, 1, 4]" in page  # the first mismatch's neuron index


def test_passed_and_failed_badges(tmp_path):
    page = write_html_report(full_report(), {}, tmp_path / "ok").read_text(encoding="utf-8")
    assert "PASSED" in page and "FAILED" not in page
    page = write_html_report(full_report(passed=False), {}, tmp_path / "bad").read_text(
        encoding="utf-8")
    assert re.search(r'class="badge fail">FAILED<', page)


def test_missing_optional_parts_still_render(tmp_path):
    report = full_report()
    for key in ("equivalence", "golden", "estimates", "firing_rates"):
        del report[key]
    report["accuracy"]["backend"] = None
    report["data"]["backend_samples"] = None
    index = write_html_report(report, {}, tmp_path)
    page = index.read_text(encoding="utf-8")
    assert "not run" in page
    for name in PLOTS:
        assert (tmp_path / name).read_bytes().startswith(PNG_MAGIC), name


def test_minimal_report_renders(tmp_path):
    report = {"schema": "snnc.check/1", "artifact": "x.snnc", "passed": None,
              "agreement": None, "ranges": None, "resources": None}
    page = write_html_report(report, {}, tmp_path).read_text(encoding="utf-8")
    assert "UNKNOWN" in page


def test_report_as_snnc_check_writes_it(tmp_path):
    # Forms CheckReport.to_json emits beyond the minimal schema: skipped rungs, sample counts
    # beside accuracies, a first mismatch that is a shape error, Lava floating_pt, per-layer rows.
    report = full_report()
    report["rungs"].append({"name": "golden", "passed": None, "status": "skipped",
                            "detail": "no golden vectors"})
    report["accuracy"] |= {"samples": 360, "backend_samples": 32}
    report["equivalence"]["first_mismatch"] = {"layer": EVIL, "detail": "shape [1] vs [2]"}
    report["lava_floating_pt"] = {"reference": "float reference graph", "samples": 32,
                                  "total_mismatches": 0, "layers": {"sn1": 0},
                                  "compared": {"sn1": 640}, "first_mismatch": None}
    report["layers"] = [{"layer": EVIL, "op": "LIF", "neurons": 600, "cores": None,
                         "rate_float": 0.2, "rate_fixed": None, "agreement": 0.9,
                         "mismatches": 1}]
    page = write_html_report(report, {}, tmp_path).read_text(encoding="utf-8")
    assert "skipped" in page
    assert "36000.00%" not in page and "3200.00%" not in page  # counts are not accuracies
    assert "shape [1] vs [2]" in page
    assert "float reference graph" in page
    assert EVIL not in page


def test_a_failing_plot_leaves_no_index_and_no_temp_files(tmp_path, monkeypatch):
    def broken(raster):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(html_report, "_plot_raster", broken)
    with pytest.raises(RuntimeError, match="plot failed"):
        write_html_report(full_report(), small_raster(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_write_leaves_no_index_and_no_temp_files(tmp_path, monkeypatch):
    real_replace = fileio.os.replace

    def replace(src, dst):
        if Path(dst).name == "index.html":
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        write_html_report(full_report(), small_raster(), tmp_path)
    # All or nothing (issue 11): the plots moved in before the failure are taken back out.
    assert list(tmp_path.iterdir()) == []


def test_raster_of_wrong_rank_names_the_layer(tmp_path):
    with pytest.raises(SnncError, match="'sn1'.*\\(6,\\)"):
        write_html_report(full_report(), {"sn1": np.zeros(6, dtype=bool)}, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_directory_that_is_a_file_is_a_readable_error(tmp_path):
    target = tmp_path / "taken"
    target.write_text("")
    with pytest.raises(SnncError, match="taken"):
        write_html_report(full_report(), {}, target)


def test_import_does_not_load_matplotlib():
    code = "import sys, snnc.tools.html_report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parent)
    assert out.stdout.strip() == "False"
