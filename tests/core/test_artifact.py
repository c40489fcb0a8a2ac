"""The .snnc artifact: round trips for every node type, and every way a file can be bad."""

from __future__ import annotations

import hashlib
import os
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snnc.artifact import (
    FORMAT_VERSION,
    MAGIC,
    Artifact,
    from_bytes,
    read_artifact,
    to_bytes,
    write_artifact,
)
from snnc.errors import (
    ArtifactError,
    ArtifactVersionError,
    CorruptArtifactError,
    NotAnArtifactError,
    SnncError,
    TruncatedArtifactError,
)
from snnc.ir import (
    CLIF,
    LIF,
    NODE_TYPES,
    Add,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    CubaLIF,
    Dense,
    Flatten,
    FxChannelSlice,
    FxCLIF,
    FxConv2d,
    FxCubaLIF,
    FxDense,
    FxInput,
    FxLIF,
    FxMerge,
    FxPartialSum,
    FxReadout,
    Graph,
    Input,
    Readout,
)


def every_node_graph() -> Graph:
    """One graph holding every registered node type, with varied field values."""
    rng = np.random.default_rng(1)
    return Graph.build([
        Input(name="img", shape=(2, 6, 6)),
        Input(name="events", shape=(3, 6, 6), encoding="spikes"),
        Conv2d(name="conv", inputs=("img",),
               weight=rng.normal(size=(3, 2, 3, 3)).astype(np.float32), bias=rng.normal(size=3),
               stride=(1, 1), padding=(1, 1)),
        BatchNorm(name="bn", inputs=("conv",), mean=rng.normal(size=3), var=rng.uniform(1, 2, 3),
                  weight=rng.normal(size=3), bias=rng.normal(size=3), eps=1e-3),
        LIF(name="layer1.sn", inputs=("bn",), decay=0.25, threshold=rng.uniform(0.1, 1, 3),
            compare=">", reset="hard", v_reset=-0.07),
        Add(name="res", inputs=("layer1.sn", "events")),
        AvgPool2d(name="pool", inputs=("res",), kernel=(2, 2), stride=(2, 2)),
        CLIF(name="clif", inputs=("pool",), tau=2.5, threshold=0.8),
        Flatten(name="flat", inputs=("clif",)),
        Dense(name="fc", inputs=("flat",), weight=rng.integers(-128, 128, (5, 27)).astype(np.int8)),
        LIF(name="soft", inputs=("fc",), decay=1.0, threshold=1.5, compare=">=", reset="soft",
            gain=0.5),
        Dense(name="head", inputs=("soft",), weight=rng.normal(size=(4, 5)), bias=np.zeros(4)),
        CubaLIF(name="cuba", inputs=("head",), decay=0.75, current_decay=0.5,
                threshold=rng.uniform(0.1, 1, 4), reset="zero_all", reset_delay=False),
        Dense(name="head2", inputs=("cuba",), weight=rng.normal(size=(4, 4))),
        Readout(name="out", inputs=("head2",), decay=0.9, mean=False),
    ])


def fixed_graph() -> Graph:
    """Every fixed-point node type, with integer fields in their widths."""
    rng = np.random.default_rng(2)
    return Graph.build([
        FxInput(name="x", shape=(1, 4, 4), scale=255.0),
        FxConv2d(name="c1", inputs=("x",), weight=2 * rng.integers(-128, 128, (2, 1, 3, 3)),
                 weight_exp=-4, padding=(1, 1)),
        FxLIF(name="s1", inputs=("c1",), dv=2048, vth=1024, bias_mant=np.array([3, -7]),
              bias_exp=2, scale=655.36, reset="soft", reset_sub=65537),
        FxConv2d(name="c2", inputs=("s1",), weight=rng.integers(0, 256, (2, 2, 1, 1))),
        FxConv2d(name="c3", inputs=("s1",), weight=-rng.integers(0, 256, (2, 2, 3, 3)),
                 padding=(1, 1), weight_exp=2),
        Add(name="sum", inputs=("c2", "c3")),
        FxCLIF(name="s2", inputs=("sum",), dv=1365, vth=900, reset_sub=57601, scale=57601.0,
               sig_lut=np.arange(1025) * 4, sig_mult=123456789, sig_shift=32,
               reset_lut=np.arange(1024) + 30000, m_shift=6),
        FxDense(name="fc", inputs=("s2",), weight=2 * rng.integers(-128, 128, (3, 32))),
        FxCubaLIF(name="s3", inputs=("fc",), dv=410, du=2047, vth=700, reset="zero",
                  reset_delay=False, reset_sub=44801, bias_mant=np.array([1, -2, 5]),
                  bias_exp=1, scale=12.5),
        # fc2 split into two partial sums (passes/split_fan_in.py)
        FxChannelSlice(name="fc2/in0", inputs=("s3",), start=0, stop=2),
        FxDense(name="fc2/part0", inputs=("fc2/in0",), weight=rng.integers(0, 256, (3, 2))),
        FxPartialSum(name="fc2/sum0", inputs=("fc2/part0",)),
        FxChannelSlice(name="fc2/in1", inputs=("s3",), start=2, stop=3),
        FxDense(name="fc2/part1", inputs=("fc2/in1",), weight=rng.integers(0, 256, (3, 1))),
        FxPartialSum(name="fc2/sum1", inputs=("fc2/part1",)),
        FxMerge(name="fc2", inputs=("fc2/sum0", "fc2/sum1"), weight_exp=-1),
        FxReadout(name="out", inputs=("fc2",), dv=0, scale=33.5),
    ])


def sample_artifact() -> Artifact:
    return Artifact(
        fixed_graph(),
        reference=every_node_graph(),
        target="loihi2",
        source_hash="abc123",
        meta={"timesteps": 4, "source": "tests", "nested": {"a": [1, 2.5, None]}},
        golden={"inputs": np.arange(12, dtype=np.float32).reshape(3, 4),
                "spikes.layer1.sn": np.array([[True, False]])},
    )


def test_the_round_trip_graphs_cover_every_node_type():
    used = {node.op for node in every_node_graph()} | {node.op for node in fixed_graph()}
    assert used == set(NODE_TYPES)


def test_every_node_type_round_trips(tmp_path):
    art = sample_artifact()
    path = write_artifact(art, tmp_path / "m.snnc")
    back = read_artifact(path)
    assert back.graph.text() == art.graph.text()
    assert back.reference.text() == art.reference.text()
    for graph, got_graph in ((art.graph, back.graph), (art.reference, back.reference)):
        for name, node in graph.nodes.items():
            assert type(got_graph[name]) is type(node)
            for field, value in node.params().items():
                got = got_graph[name].params()[field]
                if isinstance(value, np.ndarray):
                    assert got.dtype == value.dtype and np.array_equal(got, value), (name, field)
                else:
                    assert type(got) is type(value) and got == value, (name, field)
    assert back.target == "loihi2"
    assert back.source_hash == "abc123"
    assert back.meta == {"timesteps": 4, "source": "tests", "nested": {"a": [1, 2.5, None]}}
    assert back.format_version == FORMAT_VERSION
    assert set(back.golden) == {"inputs", "spikes.layer1.sn"}
    assert np.array_equal(back.golden["inputs"], art.golden["inputs"])
    assert back.golden["spikes.layer1.sn"].dtype == np.bool_


def test_writing_is_deterministic():
    assert to_bytes(sample_artifact()) == to_bytes(sample_artifact())


def _reseal(data: bytes) -> bytes:
    """Recompute the trailing SHA-256, as a writer would (to forge well-formed variants)."""
    body = data[:-32]
    return body + hashlib.sha256(body).digest()


def test_newer_format_version_says_so():
    data = bytearray(to_bytes(sample_artifact()))
    struct.pack_into("<I", data, 8, FORMAT_VERSION + 1)
    struct.pack_into("<I", data, 24, zlib.crc32(bytes(data[:24])))
    with pytest.raises(ArtifactVersionError, match=f"format {FORMAT_VERSION + 1} by a newer snnc"):
        from_bytes(_reseal(bytes(data)), "m.snnc")


@pytest.mark.parametrize("cut", [1, 100, 5000])
def test_truncated_file_says_so(cut):
    data = to_bytes(sample_artifact())
    with pytest.raises(TruncatedArtifactError, match="m.snnc: truncated"):
        from_bytes(data[: len(data) - cut], "m.snnc")


def test_truncated_to_a_few_bytes_says_so():
    with pytest.raises(TruncatedArtifactError, match="truncated: only 20 bytes"):
        from_bytes(to_bytes(sample_artifact())[:20], "m.snnc")


@pytest.mark.parametrize("position", ["header", "json", "array", "digest", "last"])
def test_a_flipped_byte_is_detected(position):
    data = bytearray(to_bytes(sample_artifact()))
    index = {"header": 13, "json": 40, "array": len(data) - 100, "digest": len(data) - 10,
             "last": len(data) - 1}[position]
    data[index] ^= 0x01
    with pytest.raises(CorruptArtifactError, match="m.snnc: corrupt"):
        from_bytes(bytes(data), "m.snnc")


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_single_byte_change_gives_a_typed_error(data):
    raw = to_bytes(sample_artifact())
    index = data.draw(st.integers(0, len(raw) - 1))
    delta = data.draw(st.integers(1, 255))
    bad = bytearray(raw)
    bad[index] ^= delta
    with pytest.raises(ArtifactError):
        from_bytes(bytes(bad))


@pytest.mark.parametrize("content", [b"", b"hello world", np.lib.format.magic(1, 0) + b"x" * 64,
                                     b"PK\x03\x04" + b"\0" * 100])
def test_a_file_that_is_not_an_artifact_says_so(tmp_path, content):
    path = tmp_path / "other.bin"
    path.write_bytes(content)
    with pytest.raises(NotAnArtifactError, match="other.bin: not an snnc artifact"):
        read_artifact(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ArtifactError, match="nope.snnc: no such file"):
        read_artifact(tmp_path / "nope.snnc")
    with pytest.raises(ArtifactError, match="is a folder"):
        read_artifact(tmp_path)


def test_errors_are_one_line():
    data = bytearray(to_bytes(sample_artifact()))
    data[-1] ^= 1
    with pytest.raises(ArtifactError) as info:
        from_bytes(bytes(data), "m.snnc")
    assert "\n" not in str(info.value)


def test_magic_is_the_documented_eight_bytes():
    assert to_bytes(sample_artifact())[:8] == MAGIC and len(MAGIC) == 8


def test_failed_write_leaves_no_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "m.snnc"
    path.write_bytes(b"previous content")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_artifact(sample_artifact(), path)
    assert path.read_bytes() == b"previous content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.snnc"]


def test_unserializable_metadata_is_refused_before_writing(tmp_path):
    art = Artifact(every_node_graph(), meta={"bad": object()})
    with pytest.raises(SnncError, match="metadata must be plain JSON"):
        write_artifact(art, tmp_path / "m.snnc")
    assert not (tmp_path / "m.snnc").exists()


def test_writing_into_a_missing_folder_says_which(tmp_path):
    with pytest.raises(SnncError, match="folder .* does not exist"):
        write_artifact(sample_artifact(), tmp_path / "no" / "m.snnc")


# -- arrays stored no wider than their values (format 2) --------------------------------------

def _table(data: bytes) -> dict:
    import json

    (head_len,) = struct.unpack_from("<I", data, 20)
    return json.loads(data[28:28 + head_len])["arrays"]


_DTYPES = ["|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f4", "<f8"]


@st.composite
def arrays(draw):
    """Any array an artifact may hold: every accepted dtype, any shape (0-d and empty
    included), values anywhere in the type's range (float64s that are float32s or not,
    NaN, infinities, negative zero)."""
    dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 5), max_size=3)))
    n = int(np.prod(shape, dtype=np.int64))
    if dtype == np.bool_:
        values = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        bound = draw(st.sampled_from([1, 127, 128, 255, 32768, 2**31, int(info.max)]))
        low, high = max(int(info.min), -bound), min(int(info.max), bound)
        values = draw(st.lists(st.integers(low, high), min_size=n, max_size=n))
    else:
        width = 32 if dtype == np.float32 else draw(st.sampled_from([32, 64]))
        values = draw(st.lists(st.floats(width=width, allow_nan=True), min_size=n,
                               max_size=n))
    return np.array(values, dtype=dtype).reshape(shape)


@settings(max_examples=300, deadline=None)
@given(st.lists(arrays(), min_size=1, max_size=4))
def test_every_array_reads_back_exactly_with_its_own_dtype(values):
    golden = {f"a{i}": v for i, v in enumerate(values)}
    back = from_bytes(to_bytes(Artifact(fixed_graph(), golden=golden))).golden
    for key, value in golden.items():
        got = back[key]
        assert got.dtype == value.dtype and got.shape == value.shape, key
        if value.dtype.kind == "f":
            assert np.array_equal(got, value, equal_nan=True)
            assert np.array_equal(np.signbit(got), np.signbit(value))  # -0.0 stays -0.0
        else:
            assert np.array_equal(got, value)


def test_arrays_are_stored_at_the_width_their_values_need():
    rng = np.random.default_rng(0)
    golden = {
        "w8": rng.integers(-128, 128, (1000, 1000)),                  # int64 holding int8
        "u9": rng.integers(0, 300, 10).astype(np.uint64),             # -> int16
        "big": np.array([2**40, -1]),                                 # stays int64
        "f32s": rng.normal(size=100).astype(np.float32).astype(np.float64),  # -> float32
        "f64": rng.normal(size=100),                                  # stays float64
        "bits": rng.random((7, 3, 5)) < 0.3,                          # packed, 105 bits
    }
    data = to_bytes(Artifact(fixed_graph(), golden=golden))
    table = {name: _table(data)[key] for name, key in
             zip(golden, [f"g{i}" for i in range(len(golden))], strict=True)}
    assert table["w8"]["stored"] == "|i1" and table["w8"]["nbytes"] == 10**6
    assert table["u9"]["stored"] == "<i2"
    assert "stored" not in table["big"]
    assert table["f32s"]["stored"] == "<f4" and table["f32s"]["nbytes"] == 400
    assert "stored" not in table["f64"]
    assert table["bits"]["packed"] and table["bits"]["nbytes"] == 14
    assert len(data) < 1.02 * 10**6  # the int64 matrix alone was 8 MB
    back = from_bytes(data).golden
    for key, value in golden.items():
        assert back[key].dtype == value.dtype and np.array_equal(back[key], value), key


def test_a_shared_power_of_two_and_repeats_are_taken_out():
    """Fixed-point weights are step * mantissa (here step 2, values to +-254: int8 after the
    shift); a pooling folded into a dense layer repeats each weight over its window (zlib)."""
    rng = np.random.default_rng(1)
    golden = {"step2": 2 * rng.integers(-128, 128, (300, 300)),
              "step4u": 4 * rng.integers(0, 100, 100).astype(np.uint32),  # to 396
              "tiled": np.repeat(rng.normal(size=(64, 32)), 64, axis=1),
              "noise": rng.normal(size=10**5)}
    data = to_bytes(Artifact(fixed_graph(), golden=golden))
    table = dict(zip(golden, (_table(data)[f"g{i}"] for i in range(4)), strict=True))
    assert (table["step2"]["stored"], table["step2"]["shift"]) == ("|i1", 1)
    assert (table["step4u"]["stored"], table["step4u"]["shift"]) == ("|i1", 2)
    assert table["tiled"]["zlib"] == 64 * 32 * 64 * 8 and table["tiled"]["nbytes"] < 10**5
    assert "zlib" not in table["noise"] and table["noise"]["nbytes"] == 8 * 10**5
    back = from_bytes(data).golden
    for key, value in golden.items():
        assert back[key].dtype == value.dtype and np.array_equal(back[key], value), key


def test_format_1_files_still_read(monkeypatch):
    """A file written the format-1 way (every array as given, version 1 in the prefix)."""
    import snnc.artifact as artifact

    art = sample_artifact()
    monkeypatch.setattr(artifact, "FORMAT_VERSION", 1)
    monkeypatch.setattr(artifact, "_narrow", lambda a: (
        a.tobytes(), {"dtype": a.dtype.str, "shape": list(a.shape)}))
    old = artifact.to_bytes(art)
    monkeypatch.undo()
    assert struct.unpack_from("<I", old, 8) == (1,)
    assert all(set(spec) == {"dtype", "shape", "offset", "nbytes"}
               for spec in _table(old).values())
    back = from_bytes(old)
    assert back.format_version == 1
    assert back.graph.text() == art.graph.text()
    for name, node in art.graph.nodes.items():
        for field, value in node.params().items():
            if isinstance(value, np.ndarray):
                got = back.graph[name].params()[field]
                assert got.dtype == value.dtype and np.array_equal(got, value)


_BOMB = zlib.compress(b"\0" * 10**6)


@pytest.mark.parametrize("spec, raw, says", [
    ({"dtype": "|b1", "shape": [20], "packed": True}, b"\x01\x02",
     "2 bytes for an array that needs 3"),
    ({"dtype": "<i8", "shape": [2], "packed": True}, b"\x01", "only booleans are packed"),
    ({"dtype": "<i8", "shape": [2], "stored": "<f4"}, b"\0" * 8, "stored as float32"),
    ({"dtype": "<f8", "shape": [2], "stored": "<c8"}, b"\0" * 16, "stored as complex64"),
    ({"dtype": "<f4", "shape": [2], "shift": 1}, b"\0" * 8, "a shift of 1"),
    ({"dtype": "<i2", "shape": [2], "shift": 16}, b"\0" * 4, "a shift of 16"),
    ({"dtype": "<f8", "shape": [4], "zlib": 32}, _BOMB, "do not end where the array does"),
    ({"dtype": "<f8", "shape": [4], "zlib": 10**6}, _BOMB, "1000000 compressed bytes for 32"),
    ({"dtype": "<f8", "shape": [4], "zlib": 32}, b"not zlib", "Error -3"),
])
def test_a_malformed_storage_entry_is_refused(spec, raw, says):
    from snnc.artifact import _widen

    with pytest.raises((ValueError, TypeError, zlib.error)) as err:
        _widen(raw, spec)
    assert says in str(err.value)
