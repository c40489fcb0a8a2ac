"""Bad inputs to `snnc compile` (issue 11), each a real `snnc` process that must fail with
exit 1 or 2, one line on stderr naming the culprit, no traceback, no "internal error", no
file written or changed (the checkpoint included), nothing left in /dev/shm and no process
left: the same runner as tests/core/test_bad_inputs.py (tests/bad_inputs.py), with
checkpoints and model files made here with torch. Also: Ctrl-C in the user's model."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import torch

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODEL = f"{EXAMPLES / 'stbp_custom.py'}:stbp_custom_net"
STATE = EXAMPLES / "checkpoints" / "stbp_custom.pt"

MODELS = {
    "exit3.py": """
        def f():
            raise SystemExit(3)
    """,
    "exit5.py": """
        import sys
        sys.exit(5)
        def f():
            pass
    """,
    "fwdexit.py": """
        import sys
        import torch

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(64, 2)

            def forward(self, x):
                sys.exit(7)

        def f():
            return Net()
    """,
    "raise.py": """
        def f():
            raise ValueError("no width given")
    """,
    "notmodule.py": """
        def f():
            return 42
    """,
    "sigint.py": """
        import os
        import signal
        import time

        def f():
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C in the terminal sends
            time.sleep(30)
    """,
}


def _build(folder: Path) -> None:
    for name, text in MODELS.items():
        (folder / name).write_text(textwrap.dedent(text))
    shutil.copyfile(STATE, folder / "w.pt")
    data = STATE.read_bytes()
    (folder / "zero.pt").write_bytes(b"")
    (folder / "half.pt").write_bytes(data[:len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    (folder / "flipped.pt").write_bytes(bytes(flipped))
    state = torch.load(STATE, weights_only=True)
    state = state.get("net", state)
    first = next(k for k, v in state.items() if v.is_floating_point() and v.ndim >= 2)

    def variant(name: str, **changes) -> None:
        torch.save({**state, **changes}, folder / name)

    variant("sparse.pt", **{first: state[first].to_sparse()})
    variant("meta.pt", **{first: torch.empty_like(state[first], device="meta")})
    variant("cplx.pt", **{first: state[first].to(torch.complex64)})
    variant("nan.pt", **{first: torch.full_like(state[first], float("nan"))})
    variant("shape.pt", **{first: state[first][:1]})
    variant("extra.pt", bogus_key=torch.zeros(2))
    torch.save([1, 2], folder / "list.pt")
    torch.save({"p": Path("/")}, folder / "code.pt")  # unpickling it would build a Path
    torch.save({f"fc.{k}": v for k, v in torch.nn.Linear(64, 2).state_dict().items()},
               folder / "fw.pt")  # fits fwdexit.py's Net
    (folder / "first-key.txt").write_text(first)


@pytest.fixture(scope="module")
def compile_template(bad_template, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-compile") / "template"
    shutil.copytree(bad_template, folder, symlinks=True)
    _build(folder)
    return folder


@pytest.fixture
def compile_folder(bad_inputs, compile_template, tmp_path):
    return bad_inputs.copy_inputs(compile_template, tmp_path / "work")


def row(name: str, args: str, culprit: str, *, pending: str | None = None):
    marks = [pytest.mark.xfail(strict=True, reason=f"pending: {pending}")] if pending else []
    return pytest.param(args, culprit, id=name, marks=marks)


REST = "-T 4 --input-shape 1,8,8 -o out.snnc"
C = f"compile {MODEL} --weights w.pt {REST}"
FIRST = "{first}"  # the checkpoint's first weight tensor, filled in at run time

ROWS = [
    # -- the user's model code ------------------------------------------------------------------
    row("model-exits-in-factory", f"compile exit3.py:f --weights w.pt {REST}", "exit3.py:f"),
    row("model-exits-at-import", f"compile exit5.py:f --weights w.pt {REST}", "exit5.py:f"),
    row("model-exits-in-forward", f"compile fwdexit.py:f --weights fw.pt {REST}",
        "fwdexit.py:f"),
    row("model-factory-raises", f"compile raise.py:f --weights w.pt {REST}", "raise.py:f"),
    row("model-not-a-module", f"compile notmodule.py:f --weights w.pt {REST}",
        "notmodule.py:f"),
    row("model-file-missing", f"compile nope.py:f --weights w.pt {REST}", "nope.py"),
    row("model-no-factory", f"compile stbp_custom_net --weights w.pt {REST}",
        "stbp_custom_net"),
    row("model-attribute-missing", f"compile {EXAMPLES / 'stbp_custom.py'}:nothing "
        f"--weights w.pt {REST}", "nothing"),
    row("model-package-missing", f"compile no_such_pkg.mod:f --weights w.pt {REST}",
        "no_such_pkg"),
    row("model-kwargs-list", f"{C} --model-kwargs '[1,2]'", "--model-kwargs"),
    row("model-kwargs-bad-json", f"{C} --model-kwargs '{{bad'", "--model-kwargs"),
    row("model-kwargs-deep", f"{C} --model-kwargs '{'[' * 100_000}'", "--model-kwargs"),
    row("model-kwargs-unknown-name", f"{C} --model-kwargs '{{\"nope\": 1}}'", "nope"),
    # -- the checkpoint -------------------------------------------------------------------------
    row("weights-missing", f"compile {MODEL} --weights nope.pt {REST}", "nope.pt"),
    row("weights-option-missing", f"compile {MODEL} {REST}", "--weights"),
    row("weights-folder", f"compile {MODEL} --weights afolder {REST}", "afolder"),
    row("weights-fifo", f"compile {MODEL} --weights fifo.npy {REST}", "fifo.npy"),
    row("weights-device", f"compile {MODEL} --weights devfull {REST}", "devfull"),
    row("weights-empty-file", f"compile {MODEL} --weights zero.pt {REST}", "zero.pt"),
    row("weights-truncated", f"compile {MODEL} --weights half.pt {REST}", "half.pt"),
    row("weights-flipped-byte", f"compile {MODEL} --weights flipped.pt {REST}", "flipped.pt"),
    row("weights-an-artifact", f"compile {MODEL} --weights q.snnc {REST}", "q.snnc"),
    row("weights-a-list", f"compile {MODEL} --weights list.pt {REST}", "list.pt"),
    row("weights-would-run-code", f"compile {MODEL} --weights code.pt {REST}", "code.pt"),
    row("weights-sparse-tensor", f"compile {MODEL} --weights sparse.pt {REST}", FIRST),
    row("weights-meta-tensor", f"compile {MODEL} --weights meta.pt {REST}", FIRST),
    row("weights-complex-tensor", f"compile {MODEL} --weights cplx.pt {REST}", FIRST),
    row("weights-nan-tensor", f"compile {MODEL} --weights nan.pt {REST}", FIRST),
    row("weights-wrong-shape", f"compile {MODEL} --weights shape.pt {REST}", FIRST),
    row("weights-unexpected-key", f"compile {MODEL} --weights extra.pt {REST}", "bogus_key"),
    # -- outputs --------------------------------------------------------------------------------
    row("output-is-the-weights", f"compile {MODEL} --weights w.pt -T 4 --input-shape 1,8,8 "
        "-o w.pt", "w.pt"),
    row("output-is-the-model-file", "compile fwdexit.py:f --weights fw.pt -T 4 "
        "--input-shape 1,8,8 -o fwdexit.py", "fwdexit.py"),
    row("output-folder", f"compile {MODEL} --weights w.pt -T 4 --input-shape 1,8,8 "
        "-o afolder", "afolder"),
    row("output-device", f"compile {MODEL} --weights w.pt -T 4 --input-shape 1,8,8 "
        "-o devfull", "devfull"),
    row("output-under-a-file", f"compile {MODEL} --weights w.pt -T 4 --input-shape 1,8,8 "
        "-o notafolder/out.snnc", "notafolder"),
    # -- sizes and choices ----------------------------------------------------------------------
    row("T-zero", f"compile {MODEL} --weights w.pt -T 0 --input-shape 1,8,8 -o out.snnc",
        "--timesteps"),
    row("T-huge", f"compile {MODEL} --weights w.pt -T 99999999999999999999 "
        "--input-shape 1,8,8 -o out.snnc", "--timesteps"),
    row("T-word", f"compile {MODEL} --weights w.pt -T four --input-shape 1,8,8 -o out.snnc",
        "--timesteps"),
    row("input-shape-huge", f"compile {MODEL} --weights w.pt -T 4 --input-shape "
        "100000,100000 -o out.snnc", "--input-shape"),
    row("input-shape-word", f"compile {MODEL} --weights w.pt -T 4 --input-shape 1,x "
        "-o out.snnc", "--input-shape"),
    row("input-shape-zero", f"compile {MODEL} --weights w.pt -T 4 --input-shape 0,8,8 "
        "-o out.snnc", "--input-shape"),
    row("check-data-missing", f"{C} --check-data nope.npy", "--check-data"),
    row("check-data-npz", f"{C} --check-data d.npz", "--check-data"),
    row("check-data-empty-batch", f"{C} --check-data empty.npy", "--check-data"),
    row("check-data-zero-bytes", f"{C} --check-data zero.npy", "--check-data"),
    row("check-data-text", f"{C} --check-data text.npy", "--check-data"),
    row("check-data-complex", f"{C} --check-data cplx.npy", "--check-data"),
    row("check-data-nan", f"{C} --check-data nan.npy", "--check-data"),
    row("check-data-huge-header", f"{C} --check-data huge.npy", "--check-data"),
    row("check-data-wrong-shape", f"{C} --check-data wrong.npy", "--check-data"),
    row("check-samples-zero", f"{C} --check-samples 0", "--check-samples"),
    row("calibrate-negative", f"{C} --calibrate -1", "--calibrate"),
    row("calibrate-huge", f"{C} --calibrate 99999999999999999999", "--calibrate"),
    row("target-unknown", f"{C} --target chip", "--target"),
    row("dump-ir-unknown", f"{C} --dump-ir everything", "--dump-ir"),
    row("step-mode-unknown", f"{C} --step-mode both", "--step-mode"),
]


@pytest.mark.parametrize("args, culprit", ROWS)
def test_bad_compile_input_fails_cleanly(bad_inputs, compile_folder, args, culprit):
    if culprit == FIRST:
        culprit = (compile_folder / "first-key.txt").read_text()
    bad_inputs.run_bad(compile_folder, args, culprit)


def test_the_compile_table_is_large():
    assert len(ROWS) >= 50


def test_ctrl_c_in_the_model_is_one_line_exit_130_and_leaves_nothing(bad_inputs,
                                                                     compile_folder):
    before = bad_inputs.snapshot(compile_folder)
    proc = subprocess.run([str(bad_inputs.SNNC), "compile", "sigint.py:f", "--weights",
                           "w.pt", *REST.split()], cwd=compile_folder, capture_output=True,
                          text=True, timeout=bad_inputs.TIMEOUT,
                          env={**bad_inputs.os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines() == ["snnc: interrupted"]
    assert bad_inputs.snapshot(compile_folder) == before
