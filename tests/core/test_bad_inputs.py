"""Bad inputs through every verb but compile, as a user runs them (issue 11): each row is a
real `snnc` process, and must fail with exit 1 or 2, one line on stderr naming the culprit,
no traceback, no "internal error", no file written or changed, nothing left in /dev/shm and
no process left (tests/bad_inputs.py says how each is checked). The compile rows are in
tests/compile/test_bad_inputs_compile.py. Runs in both environments.

Also here: what the table cannot show (Ctrl-C, a library's sys.exit, names that would forge
lines of the IR text, the pass named before a failing quantize)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.ir import Graph
from snnc.ir.printer import escape, format_name
from snnc.targets import LOIHI2
from snnc.tools.cli import EXIT_INTERRUPTED, cli
from snnc.tools.demo import tiny_network
from snnc.tools.pass_runner import PassError, compile_graph


def row(name: str, args: str, culprit: str, *, pending: str | None = None,
        env: dict[str, str] | None = None):
    """One bad input: `snnc ARGS` (run in the work folder), the text that must name the
    culprit, and, while another area's fix has not landed, the area it waits for."""
    marks = [pytest.mark.xfail(strict=True, reason=f"pending: {pending}")] if pending else []
    return pytest.param(args, culprit, env, id=name, marks=marks)


ART = "inspect q.snnc"
SIM = "simulate q.snnc --input x.npy"
CHK = "check q.snnc"
LAVA_SIM = f"{SIM} --backend lava --lava-timeout 60"
LAVA_CHK = f"{CHK} --backend lava --lava-timeout 60 --backend-samples 1"

ROWS = [
    # -- artifacts that are not one (every verb reads them the same way) ----------------------
    row("inspect-missing", "inspect nope.snnc", "nope.snnc"),
    row("inspect-folder", "inspect afolder", "afolder"),
    row("inspect-empty-file", "inspect empty.snnc", "empty.snnc"),
    row("inspect-garbage", "inspect garbage.snnc", "garbage.snnc"),
    row("inspect-truncated", "inspect trunc.snnc", "trunc.snnc"),
    row("inspect-flipped-byte", "inspect flipped.snnc", "flipped.snnc"),
    row("inspect-newer-format", "inspect newer.snnc", "newer.snnc"),
    row("inspect-npy-as-artifact", "inspect x.npy", "x.npy"),
    row("inspect-fifo", "inspect fifo.snnc", "fifo.snnc"),
    row("inspect-device", "inspect devfull", "devfull"),
    row("inspect-deep-json", "inspect deep.snnc", "deep.snnc"),
    row("inspect-meta-list", "inspect meta-list.snnc", "meta-list.snnc"),
    row("inspect-meta-timesteps-str", "inspect meta-ts-four.snnc", "meta.timesteps"),
    row("inspect-meta-trace-check-str", "inspect meta-trace-str.snnc",
        "meta.trace_check"),
    row("simulate-meta-timesteps-frac", "simulate meta-ts-frac.snnc --input x.npy",
        "meta.timesteps"),
    row("simulate-meta-timesteps-huge", "simulate meta-ts-huge.snnc --input x.npy",
        "meta.timesteps"),
    row("simulate-missing-artifact", "simulate nope.snnc --input x.npy", "nope.snnc"),
    row("simulate-fifo-artifact", "simulate fifo.snnc --input x.npy", "fifo.snnc"),
    row("check-missing-artifact", "check nope.snnc", "nope.snnc"),
    row("check-truncated", "check trunc.snnc", "trunc.snnc"),
    row("check-meta-list", "check meta-list.snnc", "meta-list.snnc"),
    row("check-meta-trace-check-str", "check meta-trace-str.snnc", "meta.trace_check"),
    row("check-no-artifact-argument", "check", "ARTIFACT"),
    # -- inspect --cost-data ------------------------------------------------------------------
    row("cost-data-missing", f"{ART} --cost-data nope.npy", "--cost-data"),
    row("cost-data-empty-batch", f"{ART} --cost-data empty.npy", "--cost-data"),
    row("cost-data-zero-bytes", f"{ART} --cost-data zero.npy", "--cost-data"),
    row("cost-data-npz", f"{ART} --cost-data d.npz", "--cost-data"),
    row("cost-data-huge-header", f"{ART} --cost-data huge.npy", "huge.npy"),
    row("cost-samples-zero", f"{ART} --cost-samples 0", "--cost-samples"),
    row("cost-samples-negative", f"{ART} --cost-samples -3", "--cost-samples"),
    # -- simulate --input and options ---------------------------------------------------------
    row("input-missing", "simulate q.snnc --input nope.npy", "nope.npy"),
    row("input-empty-batch", "simulate q.snnc --input empty.npy", "empty.npy"),
    row("input-zero-bytes", "simulate q.snnc --input zero.npy", "zero.npy"),
    row("input-text-file", "simulate q.snnc --input text.npy", "text.npy"),
    row("input-folder", "simulate q.snnc --input afolder", "afolder"),
    row("input-fifo", "simulate q.snnc --input fifo.npy", "fifo.npy"),
    row("input-complex", "simulate q.snnc --input cplx.npy", "cplx.npy"),
    row("input-nan", "simulate q.snnc --input nan.npy", "nan.npy"),
    row("input-wrong-shape", "simulate q.snnc --input wrong.npy", "wrong.npy"),
    row("input-scalar", "simulate q.snnc --input scalar.npy", "scalar.npy"),
    row("input-pickled", "simulate q.snnc --input pickled.npy", "pickled.npy"),
    row("input-huge-header", "simulate q.snnc --input huge.npy", "huge.npy"),
    row("input-truncated-data", "simulate q.snnc --input short.npy", "short.npy"),
    row("input-option-missing", "simulate q.snnc", "--input"),
    row("simulate-T-zero", f"{SIM} -T 0", "--timesteps"),
    row("simulate-T-negative", f"{SIM} -T -1", "--timesteps"),
    row("simulate-T-huge", f"{SIM} -T 99999999999999999999", "--timesteps"),
    row("simulate-T-word", f"{SIM} -T four", "--timesteps"),
    row("simulate-timing-unknown", f"{SIM} --timing warp", "--timing"),
    row("simulate-engine-unknown", f"{SIM} --engine gpu", "--engine"),
    row("simulate-backend-unknown", f"{SIM} --backend chip", "--backend"),
    row("simulate-no-reference", "simulate a.snnc --input x.npy --reference", "a.snnc"),
    row("simulate-lava-timeout-nan", f"{SIM} --lava-timeout nan", "--lava-timeout"),
    row("simulate-lava-timeout-zero", f"{SIM} --lava-timeout 0", "--lava-timeout"),
    row("simulate-lava-timeout-negative", f"{SIM} --lava-timeout -5", "--lava-timeout"),
    row("simulate-output-is-artifact", f"{SIM} -o q.snnc", "q.snnc"),
    row("simulate-output-is-input", f"{SIM} -o x.npy", "x.npy"),
    row("simulate-output-device", f"{SIM} -o devfull", "devfull"),
    row("simulate-output-under-file", f"{SIM} -o notafolder/out.npz", "notafolder"),
    row("simulate-weight-exp-64", "simulate wexp64.snnc --input x.npy", "fc1"),
    # -- Lava runs refused before Lava starts, or failing by name -----------------------------
    row("lava-empty-batch", "simulate q.snnc --input empty.npy --backend lava "
        "--lava-timeout 60", "empty.npy"),
    row("lava-python-folder", f"{LAVA_SIM} --lava-python afolder", "afolder"),
    row("lava-python-false", f"{LAVA_SIM} --lava-python /bin/false", "/bin/false"),
    row("lava-python-exits-0", f"{LAVA_SIM} --lava-python ./exit0.sh", "exit0.sh"),
    row("lava-python-missing", f"{LAVA_SIM} --lava-python nope/python", "nope/python"),
    row("check-lava-python-false", f"{LAVA_CHK} --lava-python /bin/false", "/bin/false"),
    # -- check --------------------------------------------------------------------------------
    row("accuracy-drop-nan", f"{CHK} --max-accuracy-drop nan", "--max-accuracy-drop"),
    row("accuracy-drop-inf", f"{CHK} --max-accuracy-drop inf", "--max-accuracy-drop"),
    row("accuracy-drop-negative", f"{CHK} --max-accuracy-drop -1", "--max-accuracy-drop"),
    row("max-mismatches-negative", f"{CHK} --max-mismatches -1", "--max-mismatches"),
    row("max-chips-zero", f"{CHK} --max-chips 0", "--max-chips"),
    row("samples-zero", f"{CHK} --samples 0", "--samples"),
    row("backend-samples-zero", f"{CHK} --backend-samples 0", "--backend-samples"),
    row("check-backend-unknown", f"{CHK} --backend chip", "--backend"),
    row("check-lava-timeout-nan", f"{CHK} --lava-timeout nan", "--lava-timeout"),
    row("check-lava-timeout-zero", f"{CHK} --lava-timeout 0", "--lava-timeout"),
    row("check-T-huge", f"{CHK} -T 99999999999999999999", "--timesteps"),
    row("data-unknown", f"{CHK} --data nope", "--data"),
    row("data-npy", f"{CHK} --data x.npy", "--data"),
    row("data-empty-batch", f"{CHK} --data emptyd.npz", "emptyd.npz"),
    row("data-labels-out-of-range", f"{CHK} --data badlab.npz", "badlab.npz"),
    row("data-labels-fractional", f"{CHK} --data fraclab.npz", "fraclab.npz"),
    row("data-labels-too-few", f"{CHK} --data shortlab.npz", "shortlab.npz"),
    row("data-complex", f"{CHK} --data cplx.npz", "cplx.npz"),
    row("data-no-x", f"{CHK} --data nox.npz", "nox.npz"),
    row("data-text-file", f"{CHK} --data text.npz", "text.npz"),
    row("data-huge-header", f"{CHK} --data huge.npz", "huge.npz"),
    row("json-empty-name", f"{CHK} --json ''", "--json"),
    row("json-is-artifact", f"{CHK} --json q.snnc", "q.snnc"),
    row("json-device", f"{CHK} --json devfull", "devfull"),
    row("report-is-file", f"{CHK} --report x.npy", "--report"),
    row("weight-exp-1000", "check wexp1000.snnc", "fc1"),
    row("weight-exp-64", "check wexp64.snnc", "fc1"),
    row("threshold-negative", "check vth-neg.snnc", "sn1"),
    # -- demo and the command line itself -----------------------------------------------------
    row("demo-T-zero", "demo -o out.snnc -T 0", "--timesteps"),
    row("demo-T-huge", "demo -o out.snnc -T 99999999999999999999", "--timesteps"),
    row("demo-batch-zero", "demo -o out.snnc --batch 0", "--batch"),
    row("demo-batch-huge", "demo -o out.snnc --batch 99999999999", "--batch"),
    row("demo-output-folder", "demo -o afolder", "afolder"),
    row("demo-output-device", "demo -o devfull", "devfull"),
    row("demo-output-under-file", "demo -o notafolder/a.snnc", "notafolder"),
    row("demo-unknown-option", "demo --frobnicate", "--frobnicate"),
    row("unknown-verb", "frobnicate q.snnc", "frobnicate"),
    # -- compile where torch is missing (the Lava environment; here torch is hidden) ----------
    row("compile-without-torch", "compile m.py:f --weights w.pt -T 4 --input-shape 1,8,8 "
        "-o out.snnc", "compile environment", env={"PYTHONPATH": "notorch"}),
]


@pytest.mark.parametrize("args, culprit, env", ROWS)
def test_bad_input_fails_cleanly(bad_inputs, bad_folder, args, culprit, env):
    bad_inputs.run_bad(bad_folder, args, culprit, env=env)


def test_the_table_covers_every_verb():
    verbs = {p.values[0].split()[0] for p in ROWS}
    assert {"inspect", "simulate", "check", "demo", "compile"} <= verbs
    assert len(ROWS) >= 60


# -- Ctrl-C and sys.exit at the CLI boundary ---------------------------------------------------

def _raise_in_read_artifact(monkeypatch, exc: BaseException) -> None:
    import snnc.artifact

    def read_artifact(path):
        raise exc

    monkeypatch.setattr(snnc.artifact, "read_artifact", read_artifact)


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, bad_template):
    _raise_in_read_artifact(monkeypatch, KeyboardInterrupt())
    result = CliRunner().invoke(cli, ["inspect", str(bad_template / "q.snnc")])
    assert result.exit_code == EXIT_INTERRUPTED == 130
    assert result.output.strip().splitlines() == ["snnc: interrupted"]


def test_a_library_calling_sys_exit_is_an_internal_error_not_its_status(monkeypatch,
                                                                         bad_template):
    _raise_in_read_artifact(monkeypatch, SystemExit(4))
    result = CliRunner().invoke(cli, ["inspect", str(bad_template / "q.snnc")])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("snnc: internal error:") and "sys.exit(4)" in line


def test_an_error_message_with_a_newline_stays_one_line(monkeypatch, bad_template):
    from snnc.errors import SnncError

    _raise_in_read_artifact(monkeypatch, SnncError("layer 'a\nsnnc: forged line\x1b[2J'"))
    result = CliRunner().invoke(cli, ["inspect", str(bad_template / "q.snnc")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "snnc: error: layer 'a\\nsnnc: forged line\\x1b[2J'"]


# -- names that would forge IR lines or drive the terminal -------------------------------------

FORGED = "sn1\n%forged : b1[4] = LIF(%x)"
MARKUP = "[/bold][red]sn2\x1b[31m\r"


def test_format_name_leaves_plain_names_and_quotes_the_rest():
    assert format_name("layer2.sn1") == "layer2.sn1"
    assert format_name("features.0") == "features.0"
    assert format_name(FORGED) == '"sn1\\n%forged : b1[4] = LIF(%x)"'
    assert format_name(MARKUP) == '"[/bold][red]sn2\\x1b[31m\\r"'
    assert format_name('a"b') == '"a\\"b"'
    assert format_name("a\\nb") == '"a\\\\nb"'  # a real backslash and n: not a newline
    assert format_name("a\nb") != format_name("a\\nb")
    assert escape("tab\there\u2028") == "tab\\there\\u2028"
    assert escape("C:\\plain") == "C:\\plain"


def _hostile_artifact(path) -> None:
    from snnc.artifact import Artifact, write_artifact
    from snnc.tools.golden import make_golden

    names = {"sn1": FORGED, "sn2": MARKUP}

    def rename(n):
        return names.get(n, n)

    g = tiny_network()
    g = Graph.build([n.replace(name=rename(n.name), inputs=tuple(map(rename, n.inputs)))
                     for n in g], g.outputs)
    compiled = compile_graph(g, LOIHI2, timesteps=4)
    write_artifact(Artifact(compiled.graph, reference=compiled.reference, target="loihi2",
                            meta={"timesteps": 4, "note\n%forged": "x\x1b[2J"},
                            golden=make_golden(compiled.graph, np.zeros((2, 1, 8, 8)), 4)),
                   path)


@pytest.mark.parametrize("verb", ["inspect", "simulate", "check"])
def test_hostile_layer_names_print_escaped_on_one_line(bad_inputs, tmp_path, verb):
    import subprocess

    _hostile_artifact(tmp_path / "h.snnc")
    np.save(tmp_path / "x.npy", np.full((2, 1, 8, 8), 0.5))
    extra = {"inspect": ["--cost-data", "random"], "simulate": ["--input", "x.npy"],
             "check": []}[verb]
    proc = subprocess.run([str(bad_inputs.SNNC), verb, "h.snnc", *extra], cwd=tmp_path,
                          capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert not any(line.startswith("%forged") for line in lines), proc.stdout
    assert "\x1b" not in proc.stdout and "\r" not in proc.stdout
    assert '"[/bold][red]sn2\\x1b[31m\\r"' in proc.stdout  # rich markup shown as text
    assert '"sn1\\n%forged : b1[4] =' in proc.stdout  # check's table wraps at the spaces
    if verb == "inspect":  # the IR text: every node on its own line, the names quoted
        assert any(line.startswith('%"sn1\\n%forged') for line in lines)
        assert any(line.startswith('%"[/bold][red]sn2\\x1b[31m\\r"') for line in lines)
        assert "meta.note\\n%forged x\\x1b[2J" in proc.stdout


# -- pass errors name the passes that ran --------------------------------------------------------

def test_a_quantize_failure_names_the_float_passes_before_it():
    g = tiny_network()
    g = Graph.build([n.replace(weight=np.zeros_like(n.weight)) if n.name == "fc2" else n
                     for n in g], g.outputs)
    with pytest.raises(PassError, match=r"pass quantize failed \(passes before it: "
                                        r"canonicalize, fold_batchnorm, materialize_shortcuts, "
                                        r"fold_pooling, cleanup\): synapse 'fc2'"):
        compile_graph(g, LOIHI2, timesteps=4)
