"""The bad-input table's machinery (issue 11): the hostile files the rows draw from, and the
one runner that runs a row as a user would and asserts everything the README promises about
a failure.

A row is `snnc ARGS` run as a real process of the installed console script (the `snnc` next
to this interpreter), in a work folder holding the inputs, with stdin closed. The runner
asserts:

- the exit status is 1 (an error) or 2 (a usage error, or a check that failed);
- stderr holds at most one line (exactly one for an error, exit 1), with no "Traceback" and
  no "internal error" (in stdout either), and that line names the culprit (a check that
  failed, exit 2, may name it in its report on stdout instead);
- the work folder is exactly as before, hidden entries included: every input byte for byte
  (SHA-256), no output, device nodes still devices; and the run's own TMPDIR (a fresh, short
  folder: Lava's socket paths must stay under 108 bytes) is left empty;
- no new /dev/shm entry is left (one that a live process maps, or that goes away within a few
  seconds, belongs to a run of another test going on at the same time);
- no process is left that the run started: none in its process group (it runs in a session
  of its own), none that is a child of the test, none that carries the run's tag in its
  environment (which every descendant inherits, wherever it moved).

Used by tests/core/test_bad_inputs.py (both environments) and
tests/compile/test_bad_inputs_compile.py (.venv). Nothing here imports torch or lava.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

SNNC = Path(sys.executable).parent / "snnc"
TAG = "SNNC_BAD_INPUT_TAG"
TIMEOUT = 120  # seconds a row may run; the slowest (compile, with torch) takes about 5
GRACE = 1.0  # seconds for processes already dying when snnc exits to be gone
SHM_GRACE = 3.0  # seconds for another test's shared memory, created meanwhile, to go
EXIT_ALLOWED = (1, 2)

# --- the inputs ------------------------------------------------------------------------------


def _npy_with_header(path: Path, shape: tuple[int, ...], payload: int = 64) -> None:
    """An .npy whose header claims `shape` (float64) but holds only `payload` bytes."""
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": shape})
        f.write(b"\0" * payload)


def rewrite_header(data: bytes, edit: Callable[[bytes], bytes]) -> bytes:
    """An artifact with its JSON header replaced by `edit(header)` and every check value
    (prefix CRC-32, SHA-256) recomputed, so that only the content is wrong. Follows the
    layout documented in snnc/artifact.py, not its code."""
    magic, version, _, head_len = struct.unpack_from("<8sIQI", data)
    head = data[28:28 + head_len]
    body_start = 28 + head_len
    body = data[body_start + (-body_start % 64):-32]
    new_head = edit(head)
    start = 28 + len(new_head)
    pad = -start % 64
    prefix = struct.pack("<8sIQI", magic, version, start + pad + len(body) + 32, len(new_head))
    content = prefix + struct.pack("<I", zlib.crc32(prefix)) + new_head + b"\0" * pad + body
    return content + hashlib.sha256(content).digest()


def edit_json(fn: Callable[[dict], None]) -> Callable[[bytes], bytes]:
    def edit(head: bytes) -> bytes:
        doc = json.loads(head)
        fn(doc)
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return edit


def _set_meta(key, value):
    return edit_json(lambda doc: doc["meta"].__setitem__(key, value))


def _set_field(node: str, key: str, value):
    def fn(doc):
        (fields,) = [n["fields"] for n in doc["graph"]["nodes"] if n["fields"]["name"] == node]
        assert key in fields, (node, key)
        fields[key] = value
    return edit_json(fn)


def _deep(head: bytes) -> bytes:
    depth = 100_000
    assert b'"meta":{' in head
    return head.replace(b'"meta":{', b'"meta":{"deep":' + b"[" * depth + b"]" * depth + b",", 1)


def quantized_artifact(path: Path) -> None:
    """The demo network compiled for loihi2 in-process (no torch): reference graph, golden
    vectors and meta.timesteps 4, as `snnc compile` would write it."""
    from snnc.artifact import Artifact, write_artifact
    from snnc.targets import get_target
    from snnc.tools.demo import sample_inputs, tiny_network
    from snnc.tools.golden import make_golden
    from snnc.tools.pass_runner import compile_graph

    compiled = compile_graph(tiny_network(), get_target("loihi2"), timesteps=4)
    write_artifact(Artifact(compiled.graph, reference=compiled.reference, target="loihi2",
                            meta={"timesteps": 4},
                            golden=make_golden(compiled.graph, sample_inputs(4), 4)), path)


def build_inputs(folder: Path) -> None:
    """Every file the core rows use. a.snnc comes from `snnc demo -o` (a float artifact),
    q.snnc is the same network quantized; the rest are damaged or hostile variants."""
    folder.mkdir(parents=True, exist_ok=True)
    demo = subprocess.run([str(SNNC), "demo", "-o", "a.snnc", "--batch", "2"], cwd=folder,
                          capture_output=True, text=True, timeout=TIMEOUT,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert demo.returncode == 0, demo.stderr
    quantized_artifact(folder / "q.snnc")
    q = (folder / "q.snnc").read_bytes()
    rng = np.random.default_rng(11)

    # artifacts: damaged framing
    (folder / "empty.snnc").write_bytes(b"")
    (folder / "garbage.snnc").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (folder / "trunc.snnc").write_bytes(q[:len(q) // 2])
    flipped = bytearray(q)
    flipped[len(q) // 2] ^= 0x01
    (folder / "flipped.snnc").write_bytes(bytes(flipped))
    newer = bytearray(q)
    struct.pack_into("<I", newer, 8, struct.unpack_from("<I", q, 8)[0] + 1)
    struct.pack_into("<I", newer, 24, zlib.crc32(bytes(newer[:24])))
    body = bytes(newer[:-32])
    (folder / "newer.snnc").write_bytes(body + hashlib.sha256(body).digest())
    # artifacts: sound framing, wrong content
    crafted = {
        "deep.snnc": _deep,
        "meta-list.snnc": edit_json(lambda doc: doc.__setitem__("meta", [1, 2])),
        "meta-ts-four.snnc": _set_meta("timesteps", "four"),
        "meta-ts-frac.snnc": _set_meta("timesteps", 4.7),
        "meta-ts-huge.snnc": _set_meta("timesteps", 10 ** 30),
        "meta-trace-str.snnc": _set_meta("trace_check", "passed"),
        "wexp1000.snnc": _set_field("fc1", "weight_exp", 1000),
        "wexp64.snnc": _set_field("fc1", "weight_exp", 64),
        "vth-neg.snnc": _set_field("sn1", "vth", -5),
    }
    for name, edit in crafted.items():
        (folder / name).write_bytes(rewrite_header(q, edit))

    # arrays
    x = rng.random((2, 1, 8, 8))
    np.save(folder / "x.npy", x)
    np.save(folder / "empty.npy", np.zeros((0, 1, 8, 8)))
    np.save(folder / "cplx.npy", x.astype(complex))
    np.save(folder / "nan.npy", np.where(x > 0.5, np.nan, x))
    np.save(folder / "wrong.npy", np.zeros((2, 3, 3)))
    np.save(folder / "scalar.npy", np.float64(1.0))
    np.save(folder / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (folder / "zero.npy").write_bytes(b"")
    (folder / "text.npy").write_text("0.1 0.2 0.3\n")
    _npy_with_header(folder / "huge.npy", (10 ** 9, 1, 8, 8))
    _npy_with_header(folder / "short.npy", (4, 1, 8, 8), payload=100)  # truncated data
    # data files
    xd = rng.random((4, 1, 8, 8))
    np.savez(folder / "d.npz", x=xd, y=np.array([0, 1, 2, 3]))
    np.savez(folder / "badlab.npz", x=xd, y=np.array([-1, 1000, 2, 3]))
    np.savez(folder / "fraclab.npz", x=xd, y=np.array([0.5, 1, 2, 3]))
    np.savez(folder / "shortlab.npz", x=xd, y=np.array([0, 1]))
    np.savez(folder / "emptyd.npz", x=np.zeros((0, 1, 8, 8)), y=np.zeros(0, int))
    np.savez(folder / "cplx.npz", x=xd.astype(complex), y=np.array([0, 1, 2, 3]))
    np.savez(folder / "nox.npz", y=np.array([0, 1, 2, 3]))
    (folder / "text.npz").write_text("x,y\n1,2\n")
    with zipfile.ZipFile(folder / "huge.npz", "w") as zf:
        _npy_with_header(folder / "huge-x.npy", (10 ** 9, 1, 8, 8))
        zf.write(folder / "huge-x.npy", "x.npy")
        zf.writestr("y.npy", _npy_bytes(np.zeros(4, int)))
    (folder / "huge-x.npy").unlink()
    # a --lava-python that is no Python: a program that exits 0 and writes nothing
    script = folder / "exit0.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    # a stand-in for an environment without torch (PYTHONPATH=notorch)
    (folder / "notorch" / "torch").mkdir(parents=True)
    (folder / "notorch" / "torch" / "__init__.py").write_text(
        'raise ImportError("No module named \'torch\' (hidden by the bad-input test)")\n')
    (folder / "afolder").mkdir()
    (folder / "notafolder").write_text("a file where a folder is expected\n")


def _npy_bytes(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def add_special_files(folder: Path) -> None:
    """What cannot be copied from a template: FIFOs, and `full`, a private copy of the
    /dev/full device node (writes fail with ENOSPC), so that a writer that renames over a
    device replaces this copy, not the machine's. Without root, `devfull` links to /dev/full,
    which a non-root writer cannot replace."""
    os.mkfifo(folder / "fifo.snnc")
    os.mkfifo(folder / "fifo.npy")
    try:
        os.mknod(folder / "devfull", 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except PermissionError:
        os.symlink("/dev/full", folder / "devfull")


def copy_inputs(template: Path, folder: Path) -> Path:
    shutil.copytree(template, folder, symlinks=True)
    add_special_files(folder)
    return folder


# --- what a run leaves -----------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under `folder`, hidden ones included: regular files by SHA-256 and mode,
    folders, FIFOs, device nodes by number, links by target."""
    out: dict[str, tuple] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            st = path.lstat()
            rel = str(path.relative_to(folder))
            if stat.S_ISREG(st.st_mode):
                out[rel] = ("file", hashlib.sha256(path.read_bytes()).hexdigest(),
                            stat.S_IMODE(st.st_mode))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir",)
            elif stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISCHR(st.st_mode):
                out[rel] = ("char device", st.st_rdev)
            elif stat.S_ISFIFO(st.st_mode):
                out[rel] = ("fifo",)
            else:
                out[rel] = ("other", stat.S_IFMT(st.st_mode))
    return out


def _proc_entries():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            yield int(entry)


def _read(path: str, binary: bool = False):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    return data if binary else data.decode(errors="replace")


def processes_of(pgid: int, tag: str) -> list[tuple[int, str]]:
    """Live processes the run started: in its process group, children of this test process,
    or carrying its tag in their environment. (pid, command line) each."""
    me, marker = os.getpid(), f"{TAG}={tag}".encode()
    found = []
    for pid in _proc_entries():
        if pid == me:
            continue
        stat_line = _read(f"/proc/{pid}/stat")
        if stat_line is None:
            continue
        fields = stat_line.rsplit(")", 1)[-1].split()  # state ppid pgrp session ...
        try:
            state, ppid, pgrp = fields[0], int(fields[1]), int(fields[2])
        except (IndexError, ValueError):
            continue
        environ = _read(f"/proc/{pid}/environ", binary=True) or b""
        if pgrp == pgid or ppid == me or marker in environ.split(b"\0"):
            cmd = (_read(f"/proc/{pid}/cmdline") or "").replace("\0", " ").strip()
            found.append((pid, f"{cmd or '?'} [{state}]"))
    return found


def shm_entries() -> set[str]:
    try:
        return set(os.listdir("/dev/shm"))
    except FileNotFoundError:
        return set()


def _mapped_elsewhere(names: set[str]) -> set[str]:
    """The /dev/shm entries among `names` that some live process maps or holds open: another
    run's, still in use (the processes of this row are gone by the time this is asked)."""
    live = set()
    for pid in _proc_entries():
        maps = _read(f"/proc/{pid}/maps") or ""
        live.update(n for n in names if f"/dev/shm/{n}" in maps)
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("/dev/shm/"):
                live.add(target[len("/dev/shm/"):])
    return live & names


def _stop(processes: list[tuple[int, str]]) -> None:
    for pid, _ in processes:  # only the row's own processes, by id
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- the runner ------------------------------------------------------------------------------


def run_bad(folder: Path, args: str | list[str], culprit: str, *,
            env: dict[str, str] | None = None, timeout: float = TIMEOUT) -> str:
    """Run `snnc ARGS` in `folder` and assert that it fails as promised (module docstring).
    Returns the stderr line."""
    argv = shlex.split(args) if isinstance(args, str) else list(args)
    before, shm_before = snapshot(folder), shm_entries()
    tag = uuid.uuid4().hex
    tmp = Path(tempfile.mkdtemp(prefix="snnc-bad-"))
    run_env = {**os.environ, TAG: tag, "TMPDIR": str(tmp),
               "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "120", **(env or {})}
    proc = subprocess.Popen([str(SNNC), *argv], cwd=folder, env=run_env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        left = processes_of(proc.pid, tag)
        _stop(left)
        proc.communicate()
        shutil.rmtree(tmp, ignore_errors=True)
        raise AssertionError(f"snnc {shlex.join(argv)} still ran after {timeout} s; "
                             f"stopped {len(left)} processes") from None
    out_text, err_text = out.decode(errors="replace"), err.decode(errors="replace")
    shown = f"snnc {shlex.join(argv)}\nexit {proc.returncode}\nstderr:\n{err_text}\n" \
            f"stdout (tail):\n{out_text[-1500:]}"

    deadline = time.monotonic() + GRACE
    left = processes_of(proc.pid, tag)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = processes_of(proc.pid, tag)
    _stop(left)
    deadline = time.monotonic() + SHM_GRACE
    new_shm = shm_entries() - shm_before
    new_shm -= _mapped_elsewhere(new_shm)
    while new_shm and time.monotonic() < deadline:
        time.sleep(0.2)
        new_shm = (shm_entries() - shm_before) & new_shm
        new_shm -= _mapped_elsewhere(new_shm)
    after = snapshot(folder)
    tmp_left = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*"))
    shutil.rmtree(tmp, ignore_errors=True)

    assert proc.returncode in EXIT_ALLOWED, shown
    lines = err_text.strip().splitlines()
    assert len(lines) <= 1, f"more than one line on stderr\n{shown}"
    assert lines or proc.returncode == 2, f"an error (exit 1) with nothing on stderr\n{shown}"
    for text in (err_text, out_text):
        assert "Traceback" not in text and "internal error" not in text, shown
    where = err_text if proc.returncode == 1 else err_text + out_text
    assert culprit in where, f"the culprit {culprit!r} is not named\n{shown}"
    changed = {k: (before.get(k), after.get(k)) for k in before.keys() | after.keys()
               if before.get(k) != after.get(k)}
    assert not changed, f"the work folder changed (before, after): {changed}\n{shown}"
    assert not tmp_left, f"left in TMPDIR: {tmp_left}\n{shown}"
    assert not new_shm, f"left in /dev/shm: {sorted(new_shm)}\n{shown}"
    assert not left, f"processes left running: {left}\n{shown}"
    return lines[0] if lines else ""
