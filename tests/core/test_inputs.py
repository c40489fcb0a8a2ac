"""Input validation, once per kind of input (snnc/inputs.py and the artifact's metadata):
array files, data files, labels, sizes, artifact headers; unit tests for each validator and
subprocess tests for what a user sees (exit 1 or 2, one stderr line naming the culprit, no
traceback, no output file).

Runs in both environments (no torch here; checkpoints are tests/compile's)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from snnc.artifact import Artifact, from_bytes, read_artifact, to_bytes
from snnc.errors import ArtifactError
from snnc.inputs import (
    MAX_TIMESTEPS,
    InputError,
    check_compile_sizes,
    check_labels,
    load_data,
    max_input_bytes,
    read_array,
    read_npz,
    sample_inputs,
    sample_layout,
)
from snnc.ir import Dense, Flatten, Graph, Input, Readout
from snnc.targets import LOIHI2

GIB = 1 << 30


def npy_header_only(path: Path, shape: tuple[int, ...], dtype=np.float64,
                    version=(1, 0), data: bytes = b"") -> Path:
    """An .npy whose header claims `shape`, followed by `data` (nothing by default)."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": shape}
    with open(path, "wb") as f:
        if version == (1, 0):
            np.lib.format.write_array_header_1_0(f, header)
        else:
            np.lib.format.write_array_header_2_0(f, header)
        f.write(data)
    return path


# --- array files: read_array -------------------------------------------------------------

def test_a_plain_array_reads_back_unchanged(tmp_path):
    for a in (np.arange(12, dtype=np.float32).reshape(3, 4), np.ones((2, 2), bool),
              np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3))):
        np.save(tmp_path / "a.npy", a)
        got = read_array(tmp_path / "a.npy", "--input")
        np.testing.assert_array_equal(got, a)
        assert got.dtype == a.dtype


def test_npy_format_2_is_read(tmp_path):
    a = np.arange(5.0)
    with open(tmp_path / "a.npy", "wb") as f:
        np.lib.format.write_array(f, a, version=(2, 0))
    np.testing.assert_array_equal(read_array(tmp_path / "a.npy", "--input"), a)


@pytest.mark.parametrize("make, fragment", [
    (lambda p: p.write_bytes(b""), "is empty (0 bytes), not an .npy file"),
    (lambda p: np.savez(open(p, "wb"), x=np.zeros(3)), "is a zip archive (an .npz?)"),
    (lambda p: p.write_text("1 2 3\n4 5 6\n"), "not an .npy file"),
    (lambda p: p.write_bytes(b"\x80\x04\x95 pickle"), "not an .npy file"),
    (lambda p: np.save(p, np.zeros(3, np.complex128)), "complex values (complex128) are refused"),
    (lambda p: np.save(p, np.array([1.0, np.nan])), "NaN or infinite values"),
    (lambda p: np.save(p, np.array([[0.0, 1.0], [np.inf, 0.0]])), "at index [1, 0]"),
    (lambda p: np.save(p, np.zeros((0, 1, 8, 8))), "is empty: shape [0, 1, 8, 8]"),
    (lambda p: np.save(p, np.zeros((3, 0))), "zero-sized dimension"),
    (lambda p: np.save(p, np.float64(2.0)), "a single number"),
    (lambda p: np.save(p, np.array(["a", "b"])), "element type '<U1' is refused"),
    (lambda p: np.save(p, np.zeros(2, [("a", "f8")])), "is refused"),
    (lambda p: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True),
     "not a plain .npy array: it holds Python objects"),
    (lambda p: npy_header_only(p, (10,), data=b"\0" * 40),
     "truncated: its header says shape [10] of float64 (80 bytes), but only 40 bytes follow"),
])
def test_bad_array_files_are_refused_naming_option_and_file(tmp_path, make, fragment):
    path = tmp_path / "x.npy"
    make(path)
    with pytest.raises(InputError) as info:
        read_array(path, "--input")
    message = str(info.value)
    assert message.startswith(f"--input {path}: ") and fragment in message, message
    assert "\n" not in message


def test_a_header_claiming_a_billion_samples_is_refused_before_allocating(tmp_path):
    # 10^9 x 1 x 8 x 8 float64 = 512e9 bytes: more than half of any machine this runs on.
    path = npy_header_only(tmp_path / "x.npy", (10**9, 1, 8, 8))
    assert 512 * 10**9 > max_input_bytes()
    with pytest.raises(InputError, match=r"too large: its header says shape \[1000000000, 1, "
                                         r"8, 8\] \(64,000,000,000 values, 476\.8 GiB"):
        read_array(path, "--check-data")


def test_the_size_limit_counts_float64_bytes(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(100, np.float32))  # 100 values: 800 bytes as float64
    assert read_array(tmp_path / "x.npy", "--input", max_bytes=800).shape == (100,)
    with pytest.raises(InputError, match="too large"):
        read_array(tmp_path / "x.npy", "--input", max_bytes=799)


def test_max_input_bytes_is_half_the_memory():
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert max_input_bytes() == memory // 2


def test_missing_file_folder_and_device(tmp_path):
    with pytest.raises(InputError, match="x.npy: no such file"):
        read_array(tmp_path / "x.npy", "--input")
    with pytest.raises(InputError, match="is a folder"):
        read_array(tmp_path, "--input")
    with pytest.raises(InputError, match="is a device, not a regular file"):
        read_array("/dev/zero", "--input")


# --- data files: read_npz and load_data --------------------------------------------------

def test_npz_arrays_are_read_by_the_same_rules(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((2, 3)), y=np.array([1, 0]))
    arrays = read_npz(path, "--data", ("x",), ("y",))
    assert sorted(arrays) == ["x", "y"] and arrays["y"].tolist() == [1, 0]
    np.savez(path, x=np.zeros((2, 3), np.complex64))
    with pytest.raises(InputError, match=r"--data .*d.npz: array 'x': complex"):
        read_npz(path, "--data", ("x",), ("y",))
    np.savez(path, x=np.zeros((0, 3)))
    with pytest.raises(InputError, match=r"array 'x': is empty: shape \[0, 3\]"):
        read_npz(path, "--data", ("x",))
    np.save(tmp_path / "d.npy", np.zeros(3))
    with pytest.raises(InputError, match="not an .npz archive"):
        read_npz(tmp_path / "d.npy", "--data", ("x",))


def test_an_npz_member_claiming_a_billion_samples_is_refused(tmp_path):
    member = npy_header_only(tmp_path / "x.npy", (10**9, 1, 8, 8))
    import zipfile

    with zipfile.ZipFile(tmp_path / "d.npz", "w") as zf:
        zf.write(member, "x.npy")
    with pytest.raises(InputError, match=r"array 'x': too large"):
        read_npz(tmp_path / "d.npz", "--data", ("x",))


def test_a_damaged_npz_is_refused(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.arange(1000.0))
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside x's data: the member's CRC no longer holds
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="damaged or unreadable .npz archive"):
        read_npz(path, "--data", ("x",))


def ten_class_graph() -> Graph:
    return Graph.build([Input(name="x", shape=(3,)),
                        Dense(name="fc", inputs=("x",), weight=np.ones((10, 3))),
                        Readout(name="out", inputs=("fc",))])


def test_labels_must_lie_within_the_outputs_classes():
    graph = ten_class_graph()
    assert check_labels(np.array([0, 9, 3]), 3, graph, "--data d.npz", "y").dtype == np.int64
    with pytest.raises(InputError, match=r"--data d.npz: y\[1\] = -1 is outside \[0, 10\): "
                                         r"the model's output 'out' has 10 classes"):
        check_labels(np.array([0, -1, 1000]), 3, graph, "--data d.npz", "y")
    with pytest.raises(InputError, match=r"y\[2\] = 10 is outside"):
        check_labels(np.array([0, 9, 10]), 3, graph, "--data d.npz", "y")
    with pytest.raises(InputError, match=r"y must be integer labels shaped \[3\]"):
        check_labels(np.array([0.0, 1.0, 2.0]), 3, graph, "--data d.npz", "y")


def test_the_class_count_is_the_size_of_the_graphs_output():
    graph = Graph.build([Input(name="x", shape=(3,)),
                         Dense(name="fc", inputs=("x",), weight=np.ones((4, 3))),
                         Readout(name="out", inputs=("fc",))])
    check_labels(np.array([3]), 1, graph, "w")
    with pytest.raises(InputError, match=r"labels\[0\] = 4 is outside \[0, 4\)"):
        check_labels(np.array([4]), 1, graph, "w")


def test_load_data_checks_labels_against_the_artifact(tmp_path):
    art = Artifact(ten_class_graph(), meta={"timesteps": 2})
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 3)), y=np.array([1, 2, 1000]))
    with pytest.raises(InputError, match=r"y\[2\] = 1000 is outside \[0, 10\)"):
        load_data(str(tmp_path / "d.npz"), art, None, 2)
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 3)), y=np.array([1, 2, 9]))
    data = load_data(str(tmp_path / "d.npz"), art, None, 2)
    assert data.samples == 3 and data.y.tolist() == [1, 2, 9]


def test_golden_inputs_are_validated_too():
    art = Artifact(ten_class_graph(), meta={"timesteps": 2},
                   golden={"inputs": np.array([[0.0, np.nan, 1.0]])})
    with pytest.raises(InputError, match="golden inputs.*NaN"):
        load_data("golden", art, None, 2)


# --- built-in data sets: digits and digits32 ---------------------------------------------

def test_digits32_is_the_digits_test_split_upsampled_on_three_channels():
    from snnc.datasets import digits_split

    x8 = digits_split()[2]
    x32 = sample_inputs("digits32", (3, 32, 32), 1000)
    assert x32.shape == (360, 3, 32, 32) and x32.dtype == np.float64
    rows = np.arange(32) // 4  # pixel (h, w) of the 32x32 image shows pixel (h//4, w//4)
    expected = x8[:, 0][:, rows][:, :, rows]
    for c in range(3):
        np.testing.assert_array_equal(x32[:, c], expected)
    assert sample_inputs("digits32", (3, 32, 32), 7).shape == (7, 3, 32, 32)


def test_load_data_digits32_gives_the_test_split_with_its_labels():
    from snnc.datasets import digits_split

    graph = Graph.build([Input(name="x", shape=(3, 32, 32)), Flatten(name="f", inputs=("x",)),
                         Dense(name="fc", inputs=("f",), weight=np.ones((10, 3072))),
                         Readout(name="out", inputs=("fc",))])
    art = Artifact(graph, meta={"timesteps": 2})
    data = load_data("digits32", art, None, 2)
    assert data.source == "digits32" and data.samples == 360
    np.testing.assert_array_equal(data.y, digits_split()[3])
    np.testing.assert_array_equal(data.x[:, 1, 4:8, 8:12],
                                  np.broadcast_to(digits_split()[2][:, 0, 1:2, 2:3],
                                                  (360, 4, 4)))
    assert load_data("digits32", art, 5, 2).samples == 5
    with pytest.raises(InputError, match=r"^--data digits gives inputs shaped \[1, 8, 8\], but "
                                         r"the model's input is \[3, 32, 32\]; --data digits32 "
                                         r"fits it$"):
        load_data("digits", art, None, 2)


def test_a_built_in_data_set_of_the_wrong_shape_is_refused_by_name():
    with pytest.raises(InputError, match=r"^--check-data digits32 gives inputs shaped "
                                         r"\[3, 32, 32\], but the model's input is "
                                         r"\[1, 8, 8\]; --check-data digits fits it$"):
        sample_inputs("digits32", (1, 8, 8), 4)
    with pytest.raises(InputError, match=r"^--data digits32 gives inputs shaped \[3, 32, 32\], "
                                         r"but the model's input is \[3\]$"):
        load_data("digits32", Artifact(ten_class_graph(), meta={"timesteps": 2}), None, 2)
    with pytest.raises(InputError, match=r"--cost-data 'digits64': expected 'random', "
                                         r"'digits', 'digits32' or a .npy file"):
        sample_inputs("digits64", (3, 32, 32), 4, option="--cost-data")


# --- layouts and sizes -------------------------------------------------------------------

def test_sample_layout():
    assert sample_layout(np.zeros((5, 1, 8, 8)), (1, 8, 8), "--input x.npy") is False
    assert sample_layout(np.zeros((4, 5, 1, 8, 8)), (1, 8, 8), "--input x.npy", 4) is True
    with pytest.raises(InputError, match="has 3 time steps, but the model runs 4"):
        sample_layout(np.zeros((3, 5, 1, 8, 8)), (1, 8, 8), "--input x.npy", 4)
    with pytest.raises(InputError, match=r"--input x.npy: shape \[5, 8, 8\] does not fit .*"
                                         r"\[batch, 1, 8, 8\] or \[T, batch, 1, 8, 8\]"):
        sample_layout(np.zeros((5, 8, 8)), (1, 8, 8), "--input x.npy")


def test_sample_inputs_name_their_option(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((0, 1, 8, 8)))
    with pytest.raises(InputError, match=r"^--cost-data .*x.npy: is empty"):
        sample_inputs(str(tmp_path / "x.npy"), (1, 8, 8), 4, option="--cost-data")
    np.save(tmp_path / "x.npy", np.ones((6, 1, 8, 8)))
    assert sample_inputs(str(tmp_path / "x.npy"), (1, 8, 8), 4).shape == (4, 1, 8, 8)


def test_compile_sizes_are_bounded_by_one_chips_neurons_and_memory():
    chip_neurons = 8192 * 128  # Loihi 2: 8192 neurons per core, 128 cores
    check_compile_sizes((1, 1024, 1024), 4, 8, LOIHI2)  # exactly one chip's neurons
    with pytest.raises(InputError, match=r"--input-shape 1,1024,1025: 1,049,600 values per "
                                         r"sample; at most 1,048,576"):
        check_compile_sizes((1, 1024, 1025), 4, 8, LOIHI2)
    assert chip_neurons == 1_048_576
    with pytest.raises(InputError, match=r"--input-shape 100000,100000"):
        check_compile_sizes((100000, 100000), 4, 8, LOIHI2)
    with pytest.raises(InputError, match=r"-T 100000 with --input-shape 1,1024,1024 and "
                                         r"100000 samples: would need"):
        check_compile_sizes((1, 1024, 1024), 100_000, 100_000, LOIHI2)


# --- artifact metadata and headers -------------------------------------------------------

def artifact_bytes(meta=None) -> bytes:
    graph = ten_class_graph()
    return to_bytes(Artifact(graph, meta={"timesteps": 4} if meta is None else meta))


def repack(raw: bytes, header: bytes) -> bytes:
    """`raw` with its JSON header replaced by `header` (bytes), every checksum redone: what a
    buggy or hostile writer could produce, and what only content checks can catch."""
    _, version, _, head_len = struct.unpack_from("<8sIQI", raw)
    start = 28 + head_len
    body = raw[start + (-start % 64): -32]
    pad = -(28 + len(header)) % 64
    total = 28 + len(header) + pad + len(body) + 32
    prefix = struct.pack("<8sIQI", raw[:8], version, total, len(header))
    content = prefix + struct.pack("<I", zlib.crc32(prefix)) + header + b"\0" * pad + body
    return content + hashlib.sha256(content).digest()


def edit_header(raw: bytes, edit) -> bytes:
    head_len = struct.unpack_from("<8sIQI", raw)[3]
    header = json.loads(raw[28:28 + head_len])
    edit(header)
    return repack(raw, json.dumps(header).encode())


def test_repack_keeps_a_valid_artifact_valid():
    raw = artifact_bytes()
    assert from_bytes(edit_header(raw, lambda h: None)).meta == {"timesteps": 4}


@pytest.mark.parametrize("meta_edit, fragment", [
    (lambda h: h.update(meta=[1, 2]), "'meta' is a list; accepted: a JSON object"),
    (lambda h: h["meta"].update(trace_check="yes"), "meta.trace_check is 'yes'"),
    (lambda h: h["meta"].update(trace_check={"total_mismatches": "0"}), "meta.trace_check"),
    (lambda h: h["meta"].update(timesteps="four"), "meta.timesteps is 'four'; accepted: an "
                                                    "integer from 1 to 100,000"),
    (lambda h: h["meta"].update(timesteps=4.7), "meta.timesteps is 4.7"),
    (lambda h: h["meta"].update(timesteps=True), "meta.timesteps is True"),
    (lambda h: h["meta"].update(timesteps=0), "meta.timesteps is 0"),
    (lambda h: h["meta"].update(timesteps=MAX_TIMESTEPS + 1), "meta.timesteps is 100001"),
    (lambda h: h["meta"].update(quantization=[]), "meta.quantization is []"),
    (lambda h: h["meta"].update(input_shape=[1, 0]), "meta.input_shape is [1, 0]"),
    (lambda h: h.update(target=["loihi2"]), "'target' is ['loihi2']; accepted: a string"),
    (lambda h: h.update(golden=[]), "'golden' is []"),
])
def test_metadata_of_the_wrong_type_is_refused_at_load(meta_edit, fragment):
    with pytest.raises(ArtifactError) as info:
        from_bytes(edit_header(artifact_bytes(), meta_edit), "m.snnc")
    assert str(info.value).startswith("m.snnc: malformed") and fragment in str(info.value), \
        str(info.value)


def test_metadata_snnc_would_refuse_is_never_written():
    with pytest.raises(ArtifactError, match="meta.timesteps is 4.7"):
        artifact_bytes({"timesteps": 4.7})


@pytest.mark.parametrize("depth", [65, 200, 100_000])
def test_deeply_nested_header_json_is_an_artifact_error(depth):
    header = b"[" * depth + b"]" * depth
    with pytest.raises(ArtifactError, match="nested more than 64 levels deep"):
        from_bytes(repack(artifact_bytes(), header), "m.snnc")
    meta = b'{"meta": ' + b"[" * depth + b"]" * depth + b"}"
    with pytest.raises(ArtifactError, match="nested more than 64 levels deep"):
        from_bytes(repack(artifact_bytes(), meta), "m.snnc")


def test_a_header_that_is_not_an_object_is_an_artifact_error():
    with pytest.raises(ArtifactError, match="the JSON header is a list, not an object"):
        from_bytes(repack(artifact_bytes(), b"[1]"), "m.snnc")


# --- what a user sees: subprocess CLI tests ----------------------------------------------

def snnc(*args, cwd=None, timeout=120, prelude=""):
    code = (f"import sys; {prelude}from snnc.tools.cli import main; sys.argv[0] = 'snnc'; "
            "main()")
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


def refused(proc, *fragments, code=(1,)):
    assert proc.returncode in code, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def demo_artifact(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "tiny.snnc"
    proc = snnc("demo", "-o", path, "--batch", "1")
    assert proc.returncode == 0, proc.stderr
    return path


BAD_ARRAYS = {
    "zero-length": (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
    "npz": (lambda p: np.savez(open(p, "wb"), x=np.zeros((2, 1, 8, 8))), "zip archive"),
    "billion": (lambda p: npy_header_only(p, (10**9, 1, 8, 8)), "too large"),
    "text": (lambda p: p.write_text("0.5 0.5\n"), "not an .npy file"),
    "complex": (lambda p: np.save(p, np.zeros((2, 1, 8, 8), np.complex64)), "complex"),
    "nan": (lambda p: np.save(p, np.full((2, 1, 8, 8), np.nan)), "NaN"),
    "inf": (lambda p: np.save(p, np.full((2, 1, 8, 8), -np.inf)), "infinite"),
    "empty batch": (lambda p: np.save(p, np.zeros((0, 1, 8, 8))), "is empty"),
    "zero dim": (lambda p: np.save(p, np.zeros((2, 0, 8, 8))), "zero-sized dimension"),
}


@pytest.mark.parametrize("case", list(BAD_ARRAYS))
def test_simulate_refuses_bad_input_arrays(demo_artifact, tmp_path, case):
    make, fragment = BAD_ARRAYS[case]
    make(tmp_path / "x.npy")
    out = tmp_path / "out.npz"
    proc = snnc("simulate", demo_artifact, "--input", tmp_path / "x.npy", "-o", out)
    refused(proc, f"--input {tmp_path / 'x.npy'}: ", fragment)
    assert not out.exists()


@pytest.mark.parametrize("case", ["empty batch", "complex", "billion", "text"])
def test_check_refuses_bad_data_files(demo_artifact, tmp_path, case):
    make, fragment = BAD_ARRAYS[case]
    make(tmp_path / "x.npy")
    import zipfile

    with zipfile.ZipFile(tmp_path / "d.npz", "w") as zf:
        zf.write(tmp_path / "x.npy", "x.npy")
    proc = snnc("check", demo_artifact, "--data", tmp_path / "d.npz", "--json",
                tmp_path / "r.json")
    refused(proc, f"--data {tmp_path / 'd.npz'}: array 'x': ", fragment)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("labels, first", [([-1, 0], "y[0] = -1"), ([3, 1000], "y[1] = 1000")])
def test_check_refuses_labels_outside_the_classes(demo_artifact, tmp_path, labels, first):
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 1, 8, 8)), y=np.array(labels))
    proc = snnc("check", demo_artifact, "--data", tmp_path / "d.npz")
    refused(proc, first, "outside [0, 10)", "'out' has 10 classes")
    assert "PASSED" not in proc.stdout


@pytest.mark.parametrize("verb", ["simulate", "check", "demo"])
def test_absurd_timesteps_are_refused_naming_the_option(demo_artifact, tmp_path, verb):
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8)))
    args = {"simulate": [demo_artifact, "--input", "x.npy"], "check": [demo_artifact],
            "demo": ["-o", "m.snnc"]}[verb]
    proc = snnc(verb, *args, "-T", "99999999999999999999", cwd=tmp_path)
    refused(proc, "'--timesteps' / '-T'", "1<=x<=100000", code=(2,))
    assert not (tmp_path / "m.snnc").exists()


def test_a_fifo_is_refused_as_artifact_and_as_input(demo_artifact, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    refused(snnc("inspect", fifo, timeout=60), str(fifo), "is a FIFO, not a regular file")
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8)))
    refused(snnc("simulate", demo_artifact, "--input", fifo, timeout=60), "--input",
            "is a FIFO")
    with pytest.raises(ArtifactError, match="is a FIFO"):
        read_artifact(fifo)


def test_bad_metadata_is_one_line_naming_the_key(demo_artifact, tmp_path):
    raw = demo_artifact.read_bytes()
    bad = tmp_path / "bad.snnc"
    bad.write_bytes(edit_header(raw, lambda h: h["meta"].update(timesteps=4.7)))
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8)))
    for args in (["inspect", bad], ["simulate", bad, "--input", tmp_path / "x.npy"],
                 ["check", bad, "--data", "random"]):
        refused(snnc(*args), "bad.snnc: malformed metadata: meta.timesteps is 4.7")
    bad.write_bytes(repack(raw, b"[" * 100_000 + b"]" * 100_000))
    refused(snnc("inspect", bad), "nested more than 64 levels deep")


def test_compile_without_torch_says_to_use_the_compile_environment(tmp_path):
    # sys.modules["torch"] = None makes `import torch` fail as in the Lava environment.
    proc = snnc("compile", "m.py:f", "--weights", "w.pt", "-T", "4", "--input-shape", "1,8,8",
                "-o", tmp_path / "o.snnc", prelude="sys.modules['torch'] = None; ")
    refused(proc, "snnc compile needs torch", "compile environment, .venv/bin/snnc compile")
    assert not (tmp_path / "o.snnc").exists()


def test_gib_figures_in_messages_are_binary(tmp_path):
    # 2^27 float64 values are exactly 1 GiB; the message must say so.
    path = npy_header_only(tmp_path / "x.npy", (1 << 27,))
    with pytest.raises(InputError, match=r"1\.0 GiB as float64\); at most 0\.5 GiB"):
        read_array(path, "--input", max_bytes=GIB // 2)
