"""Input validation, once per kind of input, so that every verb accepts and refuses alike.

Kinds, each with one reader or check that every verb calls:

- an array file (`simulate --input`, `compile --check-data x.npy`, `inspect --cost-data`):
  `read_array`: one `.npy` of real numbers, finite, every dimension positive;
- a data file (`check --data FILE.npz`): `read_npz`, the same rules for each array;
- labels (`y` of a data file, the digits labels): `check_labels`, integers in
  `[0, classes)` where `classes` is the size of the graph's output (`output_classes`);
- sizes given on the command line (`-T`, `--input-shape`, sample counts): `MAX_TIMESTEPS`,
  `check_compile_sizes` and `check_allocation`.

Array headers are read before any data: the declared size is checked against the bytes
the file holds and against `max_input_bytes()` (half the machine's memory, counted as the
float64 array snnc makes of it), so a header claiming 10^9 samples allocates nothing.
Non-regular files (FIFOs, devices) are refused before they are opened for reading, so
reading never blocks. Every message names the option (or the caller's `where`), the file,
the bad value and what is accepted.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from snnc.errors import SimulationInputError, SnncError
from snnc.ir import Graph, Input

#: Upper bound on time steps for every verb's -T and an artifact's meta.timesteps. Every
#: simulator keeps [T, batch, ...] records in memory; published SNN time windows run from
#: 1 to a few thousand steps (event data), so 100,000 leaves ample room while a typo such
#: as 99999999999999999999 is refused by name instead of reaching the tracer.
MAX_TIMESTEPS = 100_000
#: Element kinds an input array may hold: bool, signed and unsigned integer, floating point.
REAL_KINDS = "biuf"
_ACCEPTED = "real numbers (bool, integer or floating point)"
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"
_FALLBACK_MEMORY = 16 << 30


class InputError(SnncError):
    """An input file or value is refused; the message names the option and the culprit."""


def max_input_bytes() -> int:
    """The largest array snnc reads or makes from inputs, as float64 bytes: half of this
    machine's physical memory (8 GiB where it cannot be read)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = _FALLBACK_MEMORY
    return max(total, 1 << 30) // 2


def _gib(n: int) -> str:
    return f"{n / (1 << 30):,.1f} GiB"


def open_regular(path: str | os.PathLike[str], where: str,
                 error: type[SnncError] = InputError) -> IO[bytes]:
    """Open `path` for binary reading, refusing anything but a regular file before a read
    could block (a FIFO, a device, a socket): opened non-blocking, then checked by fstat."""
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise error(f"{where}: no such file") from None
    except IsADirectoryError:
        raise error(f"{where}: is a folder, not a file") from None
    except OSError as err:
        raise error(f"{where}: cannot read {name!r}: {err.strerror}") from None
    mode = os.fstat(fd).st_mode
    if stat.S_ISDIR(mode):
        os.close(fd)
        raise error(f"{where}: is a folder, not a file")
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode)
                or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "special")
        raise error(f"{where}: is {kind}, not a regular file; only regular files are read")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


# --- array files -------------------------------------------------------------------------

@dataclass(frozen=True)
class _Header:
    shape: tuple[int, ...]
    dtype: np.dtype
    offset: int  # bytes before the data


def _read_header(f: IO[bytes], where: str, kind: str = ".npy") -> _Header:
    head = f.read(len(_NPY_MAGIC))
    if not head:
        raise InputError(f"{where}: is empty (0 bytes), not an {kind} file")
    if head.startswith(_ZIP_MAGIC[: len(head)]) and kind == ".npy":
        raise InputError(f"{where}: is a zip archive (an .npz?), not an .npy file; expected "
                         "one array saved with numpy.save")
    if head != _NPY_MAGIC:
        raise InputError(f"{where}: not an {kind} file (it does not start with numpy's "
                         "\\x93NUMPY magic; a text or pickle file?); expected an array saved "
                         "with numpy.save")
    f.seek(0)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise InputError(f"{where}: .npy format version {version[0]}.{version[1]} is not "
                             "read; accepted: 1.0 and 2.0 (what numpy.save writes for plain "
                             "arrays)")
    except (ValueError, EOFError, SyntaxError, TypeError) as err:
        raise InputError(f"{where}: damaged {kind} header: {err}") from None
    return _Header(tuple(int(d) for d in shape), np.dtype(dtype), f.tell())


def _check_header(h: _Header, where: str, available: int, max_bytes: int | None) -> None:
    """Everything that can be said before reading data: element type, sizes, truncation."""
    if h.dtype.hasobject:
        raise InputError(f"{where}: not a plain .npy array: it holds Python objects "
                         f"(pickled), which are never loaded; accepted: {_ACCEPTED}")
    if h.dtype.kind == "c":
        raise InputError(f"{where}: complex values ({h.dtype}) are refused, not cut to their "
                         f"real part; accepted: {_ACCEPTED}")
    if h.dtype.kind not in REAL_KINDS or h.dtype.fields is not None:
        raise InputError(f"{where}: element type {str(h.dtype)!r} is refused; accepted: "
                         f"{_ACCEPTED}")
    if not h.shape:
        raise InputError(f"{where}: is a single number (shape []); expected an array of "
                         "samples")
    if 0 in h.shape:
        raise InputError(f"{where}: is empty: shape {list(h.shape)} has a zero-sized "
                         "dimension; at least one sample, with every dimension positive, is "
                         "needed")
    count = int(np.prod(h.shape, dtype=object))
    limit = max_input_bytes() if max_bytes is None else max_bytes
    as_float64 = count * max(h.dtype.itemsize, 8)
    if as_float64 > limit:
        raise InputError(f"{where}: too large: its header says shape {list(h.shape)} "
                         f"({count:,} values, {_gib(as_float64)} as float64); at most "
                         f"{_gib(limit)} (half of this machine's memory) is read")
    need = count * h.dtype.itemsize
    if available < need:
        raise InputError(f"{where}: truncated: its header says shape {list(h.shape)} of "
                         f"{h.dtype} ({need:,} bytes), but only {max(available, 0):,} bytes "
                         "follow")


def check_values(x: np.ndarray, where: str) -> np.ndarray:
    """The rules for loaded values (also for arrays that come from elsewhere, such as an
    artifact's golden inputs): real, at least 1-D, no empty dimension, finite."""
    x = np.asarray(x)
    _check_header(_Header(x.shape, x.dtype, 0), where, x.nbytes, max_bytes=1 << 62)
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(f"{where}: contains NaN or infinite values (first {x[first]!r} "
                             f"at index {list(first)}); accepted: finite numbers")
    return x


def read_array(path: str | os.PathLike[str], option: str, *,
               max_bytes: int | None = None) -> np.ndarray:
    """Read the one `.npy` array given to `option` (numpy.save's format, never pickle),
    checking its header before allocating anything; see the module docstring for the rules."""
    where = f"{option} {path}"
    with open_regular(path, where) as f:
        size = os.fstat(f.fileno()).st_size
        header = _read_header(f, where)
        _check_header(header, where, size - header.offset, max_bytes)
        f.seek(0)
        try:
            x = np.lib.format.read_array(f, allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise InputError(f"{where}: cannot read its data: {err}") from None
    return check_values(x, where)


def read_npz(path: str | os.PathLike[str], option: str, required: tuple[str, ...],
             optional: tuple[str, ...] = (), *, max_bytes: int | None = None
             ) -> dict[str, np.ndarray]:
    """Read arrays of an `.npz` (numpy.savez) given to `option`: every one in `required`,
    those of `optional` that are present, each by the rules of `read_array`."""
    where = f"{option} {path}"
    with open_regular(path, where) as f:
        head = f.read(4)
        if not head:
            raise InputError(f"{where}: is empty (0 bytes), not an .npz archive")
        if head != _ZIP_MAGIC:
            raise InputError(f"{where}: not an .npz archive (no zip signature); expected "
                             f"arrays {', '.join(required)} saved with numpy.savez")
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as zf:
                members = {n[:-4]: zf.getinfo(n) for n in zf.namelist() if n.endswith(".npy")}
                missing = [k for k in required if k not in members]
                if missing:
                    raise InputError(f"{where}: no array {missing[0]!r} (found "
                                     f"{sorted(members)}); expected {', '.join(required)}")
                out = {}
                limit = max_input_bytes() if max_bytes is None else max_bytes
                for key in (*required, *(k for k in optional if k in members)):
                    info, at = members[key], f"{where}: array {key!r}"
                    with zf.open(info) as member:
                        header = _read_header(member, at)
                        _check_header(header, at, info.file_size - header.offset, limit)
                    with zf.open(info) as member:
                        x = np.lib.format.read_array(member, allow_pickle=False)
                    out[key] = check_values(x, at)
                    limit -= x.size * 8
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                NotImplementedError) as err:
            raise InputError(f"{where}: damaged or unreadable .npz archive: {err}") from None
    return out


def sample_layout(x: np.ndarray, shape: tuple[int, ...], where: str,
                  timesteps: int | None = None) -> bool:
    """Whether `x` is a sequence: `[N, *shape]` (one frame a sample) gives False,
    `[T, N, *shape]` (a frame per step; T must equal `timesteps` when given) gives True."""
    shape = tuple(shape)
    dims = ", ".join(map(str, shape))
    accepted = f"[batch, {dims}] or [T, batch, {dims}]"
    if x.ndim == len(shape) + 1 and x.shape[1:] == shape:
        return False
    if x.ndim == len(shape) + 2 and x.shape[2:] == shape:
        if timesteps is not None and x.shape[0] != timesteps:
            raise InputError(f"{where}: shape {list(x.shape)} has {x.shape[0]} time steps, but "
                             f"the model runs {timesteps}; accepted: {accepted} with "
                             f"T={timesteps}")
        return True
    raise InputError(f"{where}: shape {list(x.shape)} does not fit the model's input; "
                     f"accepted: {accepted}")


def check_allocation(count: int, where: str) -> None:
    """Refuse to make an array of `count` float64 values beyond `max_input_bytes()`."""
    limit = max_input_bytes()
    if count * 8 > limit:
        raise InputError(f"{where}: would need {_gib(count * 8)} of float64 values; at most "
                         f"{_gib(limit)} (half of this machine's memory)")


def check_compile_sizes(input_shape: tuple[int, ...], timesteps: int, samples: int,
                        target: Any, samples_option: str | None = None) -> None:
    """`snnc compile`'s sizes: a sample of `input_shape` has at most one chip's neurons of
    `target` (an input larger than a whole chip cannot be a layer on it), and the trace
    check's records of `samples` inputs over `timesteps` steps fit in memory.
    `samples_option` names the option that asked for the samples, for the message."""
    elements = int(np.prod(input_shape, dtype=object))
    limit = target.neurons_per_core * target.cores_per_chip
    shape = ",".join(map(str, input_shape))
    if elements > limit:
        raise InputError(f"--input-shape {shape}: {elements:,} values per sample; at most "
                         f"{limit:,} (the neurons of one {target.name} chip: "
                         f"{target.neurons_per_core} per core x {target.cores_per_chip} cores)")
    asked = f" ({samples_option})" if samples_option else ""
    check_allocation(elements * timesteps * samples,
                     f"-T {timesteps} with --input-shape {shape} and {samples} samples{asked}")


# --- labels ------------------------------------------------------------------------------

def output_classes(graph: Any) -> tuple[str, int]:
    """(name, classes) of the graph's one output: a label is an index into its values."""
    if len(graph.outputs) != 1:
        raise InputError(f"labels need a graph with one output; this one has "
                         f"{list(graph.outputs)}")
    out = graph.outputs[0]
    return out, int(np.prod(graph[out].type.shape))


def check_labels(y: np.ndarray, samples: int, graph: Any, where: str,
                 name: str = "labels") -> np.ndarray:
    """Labels as int64 `[samples]`, each in `[0, classes)` of the graph's output."""
    y = np.asarray(y)
    if y.dtype.kind not in "iu" or y.shape != (samples,):
        raise InputError(f"{where}: {name} must be integer labels shaped [{samples}] (one per "
                         f"sample), got {y.dtype}{list(y.shape)}")
    out, classes = output_classes(graph)
    bad = np.flatnonzero((y < 0) | (y >= classes))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{where}: {name}[{i}] = {int(y[i])} is outside [0, {classes}): the "
                         f"model's output {out!r} has {classes} classes ({bad.size} labels out "
                         "of range in all)")
    return y.astype(np.int64)


# --- data for the trace check, the cost estimates and snnc check -------------------------

def sample_inputs(source: str, input_shape: tuple[int, ...], samples: int, *,
                  option: str = "--check-data", timesteps: int | None = None,
                  seed: int = 0) -> np.ndarray:
    """float64 inputs from `source`: 'random' (uniform [0, 1)), a built-in data set's test
    split ('digits', 'digits32': `snnc.datasets.SPLITS`), or a .npy file shaped
    [N, *input_shape] or [T, N, *input_shape]; the first `samples`."""
    from snnc.datasets import SPLITS

    shape = tuple(input_shape)
    if source == "random":
        check_allocation(samples * int(np.prod(shape)), f"{option} random with {samples} "
                         "samples")
        return np.random.default_rng(seed).random((samples, *shape))
    if source in SPLITS:
        x = _builtin_split(source, shape, option)[2]
        return x[:samples].astype(np.float64)
    if not Path(source).exists():
        names = ", ".join(repr(n) for n in SPLITS)
        raise InputError(f"{option} {source!r}: expected 'random', {names} or a .npy file")
    where = f"{option} {source}"
    x = read_array(source, option)
    sequence = sample_layout(x, shape, where, timesteps)
    x = x[:, :samples] if sequence else x[:samples]
    return x.astype(np.float64)


@dataclass(frozen=True)
class RandomFrames:
    """`--data random`'s inputs, `[samples, *frame]` uniform in [0, 1), made a slice at a
    time so that a check of many samples never holds them all: the values of
    `numpy.random.default_rng(seed).random((samples, *frame))`, whatever the slices. PCG64
    draws one 64-bit number per value, so a slice's generator is `advance`d past the values
    of the samples before it."""

    samples: int
    frame: tuple[int, ...]
    seed: int = 0

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.samples, *self.frame)

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError(f"random inputs are read by contiguous slices, not {key!r}")
        start, stop, _ = key.indices(self.samples)
        bits = np.random.PCG64(self.seed)
        bits.advance(start * int(np.prod(self.frame, dtype=np.int64)))
        return np.random.Generator(bits).random((max(0, stop - start), *self.frame))


@dataclass
class CheckData:
    """Inputs (and labels) for `snnc check`, as the simulators take them. `x` is an array,
    or `RandomFrames` (no sequence) that `part` turns into one."""

    x: np.ndarray | RandomFrames     # [N, *shape], or [T, N, *shape] when `sequence`
    y: np.ndarray | None             # [N] int64 labels in [0, classes), or None
    source: str
    sequence: bool = False

    @property
    def samples(self) -> int:
        return self.x.shape[1 if self.sequence else 0]

    def part(self, start: int, stop: int) -> CheckData:
        x = self.x[:, start:stop] if self.sequence else self.x[start:stop]
        y = None if self.y is None else self.y[start:stop]
        return CheckData(x, y, self.source, self.sequence)

    def head(self, n: int) -> CheckData:
        return self.part(0, n)


def load_data(source: str, artifact: Any, samples: int | None, timesteps: int,
              seed: int = 0) -> CheckData:
    """`snnc check --data`: golden | digits | digits32 | random | FILE.npz (`x`
    [N, *input_shape] or [N, T, *input_shape], optional `y` integer labels [N] in the
    output's classes)."""
    from snnc.datasets import SPLITS

    graph = artifact.graph
    shape = tuple(graph[graph.inputs[0]].type.shape)
    if source == "golden":
        if "inputs" not in artifact.golden:
            raise InputError("--data golden: the artifact holds no golden vectors (compiled "
                             "before they existed, or written without them); recompile it, "
                             "or use --data digits|random|FILE.npz")
        where = "--data golden (the artifact's golden inputs)"
        x = check_values(artifact.golden["inputs"], where)
        data = CheckData(x.astype(np.float64), None, "golden",
                         sample_layout(x, shape, where, timesteps))
    elif source in SPLITS:
        _, _, x, y = _builtin_split(source, shape, "--data")
        y = check_labels(y, len(y), graph, f"--data {source}")
        data = CheckData(x.astype(np.float64), y, source)
    elif source == "random":  # made per batch: never all at once
        return CheckData(RandomFrames(samples or 32, shape, seed), None, "random")
    else:
        data = _load_npz(source, graph, shape, timesteps)
    return data.head(samples) if samples else data


def _builtin_split(name: str, shape: tuple[int, ...], option: str
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The built-in data set `name`'s split, refused by name when its images are not the
    model's input shape (with the built-in set that does fit, if one does)."""
    from snnc.datasets import SHAPES, SPLITS

    split = SPLITS[name]()
    got = tuple(split[2].shape[1:])
    if got != shape:
        fits = [n for n, f in SHAPES.items() if f == shape]
        hint = f"; {option} {fits[0]} fits it" if fits else ""
        raise InputError(f"{option} {name} gives inputs shaped {list(got)}, but the model's "
                         f"input is {list(shape)}{hint}")
    return split


def _load_npz(source: str, graph: Any, shape: tuple[int, ...], timesteps: int) -> CheckData:
    from snnc.datasets import SPLITS

    path = Path(source)
    if path.suffix != ".npz" or not path.exists():
        raise InputError(f"--data {source!r}: expected golden, {', '.join(SPLITS)}, random or "
                         "an existing .npz file with arrays x and y")
    arrays = read_npz(path, "--data", ("x",), ("y",))
    where = f"--data {source}: x"
    x, y = arrays["x"], arrays.get("y")
    dims = ", ".join(map(str, shape))
    if x.shape[1:] == shape:
        sequence = False
    elif x.ndim == len(shape) + 2 and x.shape[2:] == shape:
        if x.shape[1] != timesteps:
            raise InputError(f"{where} is event data with {x.shape[1]} steps; the artifact "
                             f"runs {timesteps}")
        x, sequence = np.swapaxes(x, 0, 1), True  # [T, N, ...], as the simulators take it
    else:
        raise InputError(f"{where} is shaped {list(x.shape)}; expected [N, {dims}] or "
                         f"[N, T, {dims}]")
    n = x.shape[1] if sequence else x.shape[0]
    if y is not None:
        y = check_labels(y, n, graph, f"--data {source}", "y")
    return CheckData(x.astype(np.float64), y, str(path), sequence)


def batch_feeds(graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray], timesteps: int,
                dtype: np.dtype) -> dict[str, np.ndarray]:
    """A batch for `graph` as `{input name: [T or 1, batch, *shape]}` in `dtype`: one array
    for a single-input graph or a mapping by input name, each checked by its Input node
    (`Input.check_batch`), spike inputs 0/1 only, one batch size. Every simulating backend
    reads its inputs through this, so they accept and refuse the same batches."""
    names = graph.inputs
    if not isinstance(inputs, Mapping):
        if len(names) != 1:
            raise SimulationInputError(
                f"the graph has inputs {list(names)}; pass a mapping from input name to array")
        inputs = {names[0]: inputs}
    missing = sorted(set(names) - set(inputs))
    extra = sorted(set(inputs) - set(names))
    if missing or extra:
        raise SimulationInputError(
            f"inputs given for {sorted(inputs)}, but the graph's inputs are {list(names)}")
    feeds, batch = {}, None
    for name in names:
        node: Input = graph[name]  # type: ignore[assignment]
        # An empty batch runs (and gives empty records) here; the tools refuse it earlier.
        a = node.check_batch(inputs[name], timesteps, empty_ok=True).astype(dtype, copy=False)
        if a.ndim == len(node.shape) + 1:
            a = a[None]  # time axis of length 1: the same frame every step
        if node.encoding == "spikes" and not np.all((a == 0) | (a == 1)):
            raise SimulationInputError(f"input {name!r}: a spike input must hold only 0 and 1")
        if batch is not None and a.shape[1] != batch:
            raise SimulationInputError(
                f"input {name!r}: batch size {a.shape[1]} differs from the other inputs' {batch}")
        batch = a.shape[1]
        feeds[name] = a
    return feeds
