"""The `.snnc` artifact: one file holding a graph, its metadata and golden test vectors.

Readable with numpy and the standard library alone (the Lava environment has no torch), never
pickle. Layout, all integers little-endian:

    offset 0    8 bytes   magic b"SNNC\\r\\n\\x1a\\n"
    offset 8    u32       format version
    offset 12   u64       total file length in bytes
    offset 20   u32       length of the JSON header
    offset 24   u32       CRC-32 of bytes 0..24 (guards the fields above)
    offset 28   JSON header (UTF-8): metadata, the graph document, the array table
    ...         raw array bytes (C order, little-endian), each at a 64-byte-aligned offset
    last 32     SHA-256 of every byte before it

Arrays are stored no wider than their values need, losslessly (format 2): an integer array in
the narrowest integer type that holds its range, after taking out a power of two all its
values share (fixed-point weights, `step * mantissa`, in int8, not int64); a float64 array
whose every value is a float32 in float32; a boolean array as packed bits; and any of them
zlib-compressed where that saves a tenth of its bytes. The array table records the type the
array is read back as (`dtype`) and how it was stored (`stored`, `shift`, `packed`, `zlib`:
the uncompressed length), so a reader gets back the exact array that was written. Format 1
files (everything stored as given) still read.

The fixed prefix never changes across format versions, so any snnc can tell a newer file
from a damaged one. Files are written to a temporary name and renamed into place, so a crash
never leaves a half-written artifact under the requested name.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snnc import __version__
from snnc.errors import (
    ArtifactError,
    ArtifactVersionError,
    CorruptArtifactError,
    NotAnArtifactError,
    SnncError,
    TruncatedArtifactError,
)
from snnc.fileio import write_atomic
from snnc.inputs import MAX_TIMESTEPS, open_regular
from snnc.ir.graph import Graph
from snnc.ir.serialize import graph_from_doc, graph_to_doc

MAGIC = b"SNNC\r\n\x1a\n"  # 8 bytes: the name, then bytes text-mode copying would mangle
FORMAT_VERSION = 2
_PREFIX = struct.Struct("<8sIQI")  # magic, version, total length, header length
_PREFIX_CRC = struct.Struct("<I")
_HEAD = _PREFIX.size + _PREFIX_CRC.size
_DIGEST = 32
_ALIGN = 64
_MAX_DEPTH = 64  # JSON nesting read from a header; snnc writes about 6 levels
#: Array element types an artifact may hold (little-endian numeric and boolean only).
_DTYPES = {"|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f4", "<f8"}


@dataclass(frozen=True, eq=False)
class Artifact:
    """A compiled model as shipped: the graph plus what is needed to trust and run it.

    graph:     what runs on the target (fixed point for a quantized target).
    reference: the float graph it was quantized from (folded, same neuron names), so the
               float-versus-fixed rungs of the check need no torch; None for float targets.
               `snnc compile` rounds it to float32 values (tools/pipeline.float32_valued).
    meta:      JSON-able provenance and settings (timesteps, source file, pass log, ...).
    golden:    named arrays (sample inputs and the reference simulator's expected outputs)
               that a target environment without the compiler can check itself against.
    """

    graph: Graph
    reference: Graph | None = None
    target: str = "float"
    source_hash: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    golden: Mapping[str, np.ndarray] = field(default_factory=dict)
    snnc_version: str = __version__
    format_version: int = FORMAT_VERSION

    def save(self, path: str | os.PathLike[str]) -> Path:
        return write_artifact(self, path)


def _header(artifact: Artifact) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    graph_doc, arrays = graph_to_doc(artifact.graph)
    reference_doc = None
    if artifact.reference is not None:
        reference_doc, ref_arrays = graph_to_doc(artifact.reference)
        renamed = {k: f"r{k}" for k in ref_arrays}
        arrays.update({renamed[k]: v for k, v in ref_arrays.items()})
        reference_doc = _rename_arrays(reference_doc, renamed)
    golden = {}
    for name, value in artifact.golden.items():
        key = f"g{len(golden)}"
        arrays[key] = np.asarray(value)
        golden[name] = key
    try:
        meta = json.loads(json.dumps(dict(artifact.meta), allow_nan=False))
    except (TypeError, ValueError) as err:
        raise SnncError(f"artifact metadata must be plain JSON values: {err}") from None
    check_meta(meta, "artifact to write")
    header = {
        "snnc_version": artifact.snnc_version,
        "target": artifact.target,
        "source_hash": artifact.source_hash,
        "meta": meta,
        "graph": graph_doc,
        "reference": reference_doc,
        "golden": golden,
    }
    return header, arrays


_INT_TYPES = [np.dtype(t) for t in ("<i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8")]


#: zlib is kept for an array only when it saves at least this fraction of its bytes; a
#: sample of its first bytes decides whether to try (random weights do not compress).
_ZLIB_GAIN = 0.1
_ZLIB_MIN = 4096
_ZLIB_PROBE = 65536


def _int_type(low: int, high: int, width: int) -> np.dtype:
    return next(t for t in _INT_TYPES if np.iinfo(t).min <= low and high <= np.iinfo(t).max
                and t.itemsize <= width)


def _narrow(a: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    """The bytes to store for `a` (little-endian, C order) and the table fields saying how to
    read them back: no wider than the values need, and exactly `a` again (see the module
    docstring)."""
    spec: dict[str, Any] = {"dtype": a.dtype.str, "shape": list(a.shape)}
    if a.dtype == np.bool_ and a.size:
        spec["packed"] = True
        return _deflate(np.packbits(a.reshape(-1)).tobytes(), spec)
    stored = a.dtype
    if a.dtype.kind in "iu" and a.size:
        # a power of two every value shares (a weight's step: 2 * mantissa) is kept aside
        bits = int(np.bitwise_or.reduce(a.reshape(-1)))
        shift = (bits & -bits).bit_length() - 1 if bits else 0
        low, high = int(a.min()), int(a.max())
        stored = _int_type(low, high, a.dtype.itemsize)
        if shift:
            shifted = _int_type(low >> shift, high >> shift, a.dtype.itemsize)
            if shifted.itemsize < stored.itemsize:
                spec["shift"], stored, a = shift, shifted, a >> a.dtype.type(shift)
    elif a.dtype == np.float64 and a.size:
        with np.errstate(over="ignore", invalid="ignore"):
            single = a.astype("<f4")
        if np.array_equal(single.astype(np.float64), a, equal_nan=True):
            stored = single.dtype
    if stored != a.dtype:
        spec["stored"] = stored.str
        a = a.astype(stored)
    return _deflate(a.tobytes(), spec)


def _deflate(data: bytes, spec: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """zlib-compress `data` when that pays (repeated values: a pooling folded into a dense
    layer repeats each weight over the pooling window)."""
    if len(data) < _ZLIB_MIN:
        return data, spec
    probe = data[:_ZLIB_PROBE]
    if len(zlib.compress(probe, 1)) > (1 - _ZLIB_GAIN) * len(probe):
        return data, spec
    packed = zlib.compress(data, 1)
    if len(packed) > (1 - _ZLIB_GAIN) * len(data):
        return data, spec
    spec["zlib"] = len(data)
    return packed, spec


def _widen(raw: bytes, spec: dict[str, Any]) -> np.ndarray:
    """The array `_narrow` stored: `raw` read back at its table entry's type and shape."""
    dtype, shape = np.dtype(spec["dtype"]), spec["shape"]
    count = int(np.prod(shape, dtype=np.int64))
    stored = np.dtype(spec.get("stored", spec["dtype"]))
    expected = -(-count // 8) if spec.get("packed") else count * stored.itemsize
    if spec.get("zlib"):
        if spec["zlib"] != expected:
            raise ValueError(f"{spec['zlib']} compressed bytes for {expected}")
        inflate = zlib.decompressobj()
        raw = inflate.decompress(raw, expected + 1)  # never more than the array's bytes
        if not inflate.eof or inflate.unused_data:
            raise ValueError("compressed bytes that do not end where the array does")
    if len(raw) != expected:
        raise ValueError(f"{len(raw)} bytes for an array that needs {expected}")
    if spec.get("packed"):
        if dtype != np.bool_:
            raise ValueError(f"packed bits read as {dtype}; only booleans are packed")
        bits = np.unpackbits(np.frombuffer(raw, np.uint8), count=count)
        return bits.astype(np.bool_).reshape(shape)
    if stored.str not in _DTYPES or stored.kind != dtype.kind and \
            not (stored.kind in "iu" and dtype.kind in "iu"):
        raise ValueError(f"an array of {dtype} stored as {stored}")
    a = np.frombuffer(raw, dtype=stored).reshape(shape).astype(dtype.newbyteorder("="))
    shift = spec.get("shift", 0)
    if shift:
        if dtype.kind not in "iu" or not 0 < shift < 8 * dtype.itemsize:
            raise ValueError(f"a shift of {shift!r} for an array of {dtype}")
        a <<= a.dtype.type(shift)  # (numpy 1 would promote a Python int to int64)
    return a


def to_bytes(artifact: Artifact) -> bytes:
    header, arrays = _header(artifact)
    table: dict[str, dict[str, Any]] = {}
    blobs: list[bytes] = []
    offset = 0
    for key, value in arrays.items():
        a = np.asarray(value, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        if a.dtype.str not in _DTYPES:
            raise SnncError(f"array {key!r} has dtype {a.dtype}, which an artifact cannot hold; "
                            f"accepted: {sorted(_DTYPES)}")
        pad = -offset % _ALIGN
        blobs.append(b"\0" * pad)
        offset += pad
        data, spec = _narrow(a)
        table[key] = {**spec, "offset": offset, "nbytes": len(data)}
        blobs.append(data)
        offset += len(data)
    header["arrays"] = table
    head_json = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    body_start = _HEAD + len(head_json)
    body_pad = -body_start % _ALIGN
    total = body_start + body_pad + offset + _DIGEST
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, total, len(head_json))
    content = b"".join(
        [prefix, _PREFIX_CRC.pack(zlib.crc32(prefix)), head_json, b"\0" * body_pad, *blobs]
    )
    return content + hashlib.sha256(content).digest()


def write_artifact(artifact: Artifact, path: str | os.PathLike[str], *,
                   parents: bool = False) -> Path:
    """Write atomically (snnc.fileio.write_atomic): never half a file, also on error; the
    folder must exist unless `parents` (then it is made)."""
    path = Path(path)
    write_atomic(path, to_bytes(artifact), parents=parents)
    return path


def read_artifact(path: str | os.PathLike[str]) -> Artifact:
    """Read and verify an artifact; every failure is an ArtifactError saying which kind.
    Only a regular file is read: a FIFO or a device is refused before a read could block."""
    name = str(path)
    with open_regular(path, name, ArtifactError) as f:
        try:
            data = f.read()
        except OSError as err:
            raise ArtifactError(f"{name}: cannot read: {err.strerror}") from None
    return from_bytes(data, name)


def from_bytes(data: bytes, name: str = "<bytes>") -> Artifact:
    if not data.startswith(MAGIC[: min(len(data), len(MAGIC))]) or not data:
        raise NotAnArtifactError(
            f"{name}: not an snnc artifact (it does not start with the .snnc magic bytes)")
    if len(data) < _HEAD + _DIGEST:
        raise TruncatedArtifactError(f"{name}: truncated: only {len(data)} bytes")
    prefix = data[: _PREFIX.size]
    (crc,) = _PREFIX_CRC.unpack_from(data, _PREFIX.size)
    if zlib.crc32(prefix) != crc:
        raise CorruptArtifactError(f"{name}: corrupt: the fixed header fails its CRC check")
    _, version, total, head_len = _PREFIX.unpack(prefix)
    if version > FORMAT_VERSION:
        raise ArtifactVersionError(
            f"{name}: written in artifact format {version} by a newer snnc; this snnc "
            f"{__version__} reads formats 1 to {FORMAT_VERSION}: upgrade snnc")
    if version < 1:
        raise CorruptArtifactError(f"{name}: corrupt: format version {version} is not valid")
    if len(data) < total:
        raise TruncatedArtifactError(
            f"{name}: truncated: {len(data)} bytes, but its header says {total}")
    if len(data) > total:
        raise CorruptArtifactError(
            f"{name}: corrupt: {len(data) - total} unexpected bytes after the end of the artifact")
    if hashlib.sha256(data[:-_DIGEST]).digest() != data[-_DIGEST:]:
        raise CorruptArtifactError(
            f"{name}: corrupt: SHA-256 checksum mismatch (the file changed after it was written)")
    try:
        return _parse(data, head_len, version, name)
    except ArtifactError:
        raise
    except (SnncError, ValueError, KeyError, TypeError, AttributeError) as err:
        # The checksum held, so the writer itself produced this: say so rather than "corrupt".
        raise ArtifactError(f"{name}: malformed artifact content: {err}") from None


def _parse(data: bytes, head_len: int, version: int, name: str) -> Artifact:
    try:
        header = json.loads(data[_HEAD : _HEAD + head_len].decode())
        too_deep = _depth(header) > _MAX_DEPTH
    except RecursionError:  # deeper than the json module itself can parse
        too_deep = True
    if too_deep:
        raise ArtifactError(f"{name}: malformed artifact content: its JSON header is nested "
                            f"more than {_MAX_DEPTH} levels deep")
    if not isinstance(header, dict):
        raise ArtifactError(f"{name}: malformed artifact content: the JSON header is a "
                            f"{type(header).__name__}, not an object")
    for key in ("target", "source_hash", "snnc_version"):
        if not isinstance(header.get(key), str):
            raise ArtifactError(f"{name}: malformed artifact content: {key!r} is "
                                f"{header.get(key)!r}; accepted: a string")
    if not _str_keys(header.get("golden"), lambda v: isinstance(v, str)):
        raise ArtifactError(f"{name}: malformed artifact content: 'golden' is "
                            f"{header.get('golden')!r}; accepted: an object of array keys")
    check_meta(header.get("meta"), name)
    body_start = _HEAD + head_len
    body_start += -body_start % _ALIGN
    arrays = {}
    for key, spec in header["arrays"].items():
        if spec["dtype"] not in _DTYPES:
            raise ArtifactError(f"{name}: array {key!r} has unsupported dtype {spec['dtype']!r}")
        start = body_start + spec["offset"]
        arrays[key] = _widen(data[start : start + spec["nbytes"]], spec)
    graph = graph_from_doc(header["graph"], arrays)
    reference = None
    if header.get("reference") is not None:
        reference = graph_from_doc(header["reference"], arrays)
    golden = {g: arrays[key] for g, key in header["golden"].items()}
    return Artifact(
        graph=graph,
        reference=reference,
        target=header["target"],
        source_hash=header["source_hash"],
        meta=header["meta"],
        golden=golden,
        snnc_version=header["snnc_version"],
        format_version=version,
    )


def _depth(doc: Any) -> int:
    """Nesting depth of a JSON document, without recursion (a hostile header may nest 10^5
    levels)."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        value, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > _MAX_DEPTH:
            break
        children = value.values() if isinstance(value, dict) else \
            value if isinstance(value, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def _is_int(value: Any, low: int = 0, high: int | None = None) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= low
            and (high is None or value <= high))


def _str_keys(value: Any, each=lambda v: True) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and each(v)
                                           for k, v in value.items())


#: The metadata keys snnc reads, each with the test its value must pass and what it accepts.
#: Other keys are free JSON (provenance a later version may add).
META_RULES: dict[str, tuple[Any, str]] = {
    "timesteps": (lambda v: _is_int(v, 1, MAX_TIMESTEPS),
                  f"an integer from 1 to {MAX_TIMESTEPS:,}"),
    "trace_check": (lambda v: _str_keys(v) and isinstance(v.get("data", ""), str)
                    and _is_int(v.get("samples", 0)) and _is_int(v.get("total_mismatches", 0))
                    and _str_keys(v.get("layers", {}), _is_int),
                    "an object {data: string, samples: integer >= 0, total_mismatches: "
                    "integer >= 0, layers: {name: integer >= 0}}"),
    "input_shape": (lambda v: isinstance(v, list) and len(v) > 0
                    and all(_is_int(d, 1) for d in v), "a list of positive integers"),
    "quantization": (lambda v: _str_keys(v, _str_keys), "an object of objects, one per layer"),
    "passes": (lambda v: isinstance(v, list) and all(_str_keys(p) for p in v),
               "a list of objects, one per pass"),
    "calibration_samples": (_is_int, "an integer >= 0"),
    "model_kwargs": (lambda v: isinstance(v, dict | str), "an object or a JSON string"),
    **{key: (lambda v: isinstance(v, str), "a string")
       for key in ("source", "model", "weights", "step_mode")},
}


def check_meta(meta: Any, name: str) -> None:
    """Refuse metadata of the wrong type at load (and before writing), naming the key: a
    `meta.timesteps` of 4.7 must not run as 4, nor a string `trace_check` fail later."""
    if not isinstance(meta, dict):
        raise ArtifactError(f"{name}: malformed metadata: 'meta' is a {type(meta).__name__}; "
                            "accepted: a JSON object")
    for key, (ok, accepted) in META_RULES.items():
        if key in meta and not ok(meta[key]):
            raise ArtifactError(f"{name}: malformed metadata: meta.{key} is {meta[key]!r}; "
                                f"accepted: {accepted}")


def _rename_arrays(doc, renamed: dict[str, str]):
    """Rewrite {"$array": key} references (the reference graph's arrays get their own keys)."""
    if isinstance(doc, dict):
        if "$array" in doc:
            return {"$array": renamed[doc["$array"]]}
        return {k: _rename_arrays(v, renamed) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_rename_arrays(v, renamed) for v in doc]
    return doc


def graph_digest(graph: Graph) -> str:
    """SHA-256 of a graph's canonical text: a source hash for graphs built in code."""
    return hashlib.sha256(graph.text().encode()).hexdigest()
