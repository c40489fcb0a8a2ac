"""Checkpoints and compile-side inputs are validated before use: zip CRCs, tensor kinds,
--input-shape, -T, --model-kwargs, --check-data and --cost-data arrays. Each refusal is one
stderr line naming the option (and the key or file), exit 1 or 2, no traceback, no output.

A few cases run `snnc` as a real process (exit status and stderr as a user sees them); the
rest run in-process (importing torch takes seconds per process on these machines).
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from snnc.frontends.torch.checkpoint import CheckpointError, load_model, load_state_dict
from snnc.tools.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODEL = f"{EXAMPLES / 'stbp_custom.py'}:stbp_custom_net"
STATE = EXAMPLES / "checkpoints" / "stbp_custom.pt"


def snnc(*args, cwd=None):
    code = "import sys; from snnc.tools.cli import main; sys.argv[0] = 'snnc'; main()"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def compile_args(weights, out, *extra):
    return ["compile", MODEL, "--weights", weights, "-T", "4", "--input-shape", "1,8,8",
            "-o", out, *extra]


class _Run:
    """An in-process run shaped like subprocess.CompletedProcess (stderr: click's output)."""

    def __init__(self, args):
        result = CliRunner().invoke(cli, list(map(str, args)))
        self.returncode, self.stdout = result.exit_code, result.stdout
        self.stderr = result.stderr


def refused(proc, out, *fragments, code=(1,)):
    assert proc.returncode in code, (proc.returncode, proc.stdout[-2000:], proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not Path(out).exists()
    return lines[0]


def state() -> dict[str, torch.Tensor]:
    return torch.load(STATE, weights_only=True)


def member_data_offset(path: Path, member: str) -> tuple[int, int]:
    """(offset, size) of a stored zip member's data in the file."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    raw = path.read_bytes()
    name_len, extra_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28],
                                         "little"), \
        int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    return info.header_offset + 30 + name_len + extra_len, info.compress_size


# --- checkpoints -------------------------------------------------------------------------

def test_a_flipped_byte_in_a_tensor_fails_its_crc(tmp_path):
    with zipfile.ZipFile(STATE) as zf:
        member = max(zf.infolist(), key=lambda i: i.file_size).filename
    offset, size = member_data_offset(STATE, member)
    data = bytearray(STATE.read_bytes())
    data[offset + size // 2] ^= 0x01  # one bit of one weight: torch.load alone never notices
    bad = tmp_path / "ckpt.pt"
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"member {member!r} fails its CRC-32 check"):
        load_state_dict(bad)


def test_a_flipped_byte_in_the_middle_is_refused_by_compile(tmp_path):
    data = bytearray(STATE.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad, out = tmp_path / "ckpt.pt", tmp_path / "out.snnc"
    bad.write_bytes(bytes(data))
    refused(_Run(compile_args(bad, out)), out, f"--weights {bad}: ")


def test_a_checkpoint_cut_in_half_names_the_file(tmp_path):
    bad, out = tmp_path / "ckpt.pt", tmp_path / "out.snnc"
    bad.write_bytes(STATE.read_bytes()[: STATE.stat().st_size // 2])
    line = refused(snnc(*compile_args(bad, out)), out, f"--weights {bad}: ",
                   "not a readable torch checkpoint (truncated or damaged?)")
    assert not line.endswith(": ")  # the old message was "Invalid argument: "


def test_an_empty_checkpoint_is_refused(tmp_path):
    (tmp_path / "ckpt.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="is empty"):
        load_state_dict(tmp_path / "ckpt.pt")


def test_a_legacy_format_checkpoint_still_loads(tmp_path):
    s = state()
    torch.save(s, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    loaded = load_state_dict(tmp_path / "old.pt")
    assert sorted(loaded) == sorted(s)
    assert all(torch.equal(loaded[k], s[k]) for k in s)


def _replace_first_float(s: dict, make) -> str:
    key = next(k for k, v in s.items() if v.is_floating_point())
    s[key] = make(s[key])
    return key


@pytest.mark.parametrize("make, fragment, run", [
    (lambda t: t.to(torch.complex64), "has dtype torch.complex64, refused (a complex tensor "
                                      "is not cut to its real part)", _Run),
    (lambda t: torch.empty_like(t, device="meta"), "is on device 'meta'", _Run),
    # the sparse one printed 94 lines: a real process, to see every line of stderr
    (lambda t: t.to_sparse(), "has layout torch.sparse_coo", lambda a: snnc(*a)),
])
def test_tensors_that_are_not_dense_real_cpu_are_refused_by_key(tmp_path, make, fragment, run):
    s = state()
    key = _replace_first_float(s, make)
    path, out = tmp_path / "ckpt.pt", tmp_path / "out.snnc"
    torch.save(s, path)
    refused(run(compile_args(path, out)), out, f"--weights {path}: tensor {key!r} ",
            fragment, "accepted: dense (strided) CPU tensors of real floating point, integer "
                      "or bool type")


def test_integer_and_bool_buffers_are_accepted(tmp_path):
    s = state()
    s["extra_count"] = torch.tensor(7)               # like num_batches_tracked (int64)
    s["extra_mask"] = torch.ones(3, dtype=torch.bool)
    torch.save(s, tmp_path / "ckpt.pt")
    loaded = load_state_dict(tmp_path / "ckpt.pt")
    assert loaded["extra_count"].item() == 7 and loaded["extra_mask"].dtype == torch.bool


# --- sizes and options -------------------------------------------------------------------

def test_an_input_shape_beyond_one_chip_is_refused(tmp_path):
    out = tmp_path / "out.snnc"
    args = compile_args(STATE, out)
    args[args.index("1,8,8")] = "100000,100000"
    refused(snnc(*args), out, "--input-shape 100000,100000: 10,000,000,000 values per sample; "
                              "at most 1,048,576 (the neurons of one loihi2 chip")


def test_absurd_timesteps_are_a_usage_error_naming_t(tmp_path):
    out = tmp_path / "out.snnc"
    args = compile_args(STATE, out)
    args[args.index("-T") + 1] = "99999999999999999999"
    refused(snnc(*args), out, "'--timesteps' / '-T'", "1<=x<=100000", code=(2,))


def test_help_documents_the_limits():
    proc = _Run(["compile", "--help"])
    text = " ".join(proc.stdout.split())
    assert "at most 100,000" in text and "1,048,576 values for loihi2" in text


@pytest.mark.parametrize("kwargs, kind", [("[1,2]", "list"), ('"four"', "str"), ("3", "int")])
def test_model_kwargs_that_are_not_an_object_name_the_option(tmp_path, kwargs, kind):
    out = tmp_path / "out.snnc"
    refused(_Run(compile_args(STATE, out, "--model-kwargs", kwargs)), out,
            "--model-kwargs must be a JSON object", f"got a {kind}")


def test_model_kwargs_null_means_none():
    assert isinstance(load_model(MODEL, "null"), torch.nn.Module)


# --- --check-data and --cost-data arrays -------------------------------------------------

def _header_only(path: Path, shape) -> None:
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": shape})


BAD = {
    "empty file": (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    "npz": (lambda p: np.savez(open(p, "wb"), x=np.zeros((2, 1, 8, 8))), "zip archive"),
    "billion": (lambda p: _header_only(p, (10**9, 1, 8, 8)), "too large"),
    "text": (lambda p: p.write_text("0 1\n"), "not an .npy file"),
    "complex": (lambda p: np.save(p, np.zeros((2, 1, 8, 8), np.complex128)), "complex"),
    "nan": (lambda p: np.save(p, np.full((2, 1, 8, 8), np.nan)), "NaN"),
    "empty batch": (lambda p: np.save(p, np.zeros((0, 1, 8, 8))), "is empty: shape"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_check_data_arrays_are_validated(tmp_path, case):
    make, fragment = BAD[case]
    x, out = tmp_path / "x.npy", tmp_path / "out.snnc"
    make(x)
    refused(_Run(compile_args(STATE, out, "--check-data", x)), out, f"--check-data {x}: ",
            fragment)


def test_cost_data_arrays_are_validated_naming_cost_data(tmp_path):
    out = tmp_path / "out.snnc"
    proc = _Run(compile_args(STATE, out))
    assert proc.returncode == 0, proc.stderr
    x = tmp_path / "x.npy"
    for make, fragment in (BAD["empty batch"], BAD["complex"], BAD["npz"]):
        make(x)
        refused(_Run(["inspect", out, "--cost-data", x]), tmp_path / "none",
                f"--cost-data {x}: ", fragment)
    np.save(x, np.zeros((3, 2, 8, 8)))
    refused(_Run(["inspect", out, "--cost-data", x]), tmp_path / "none", f"--cost-data {x}: ",
            "[batch, 1, 8, 8]")
