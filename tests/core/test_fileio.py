"""snnc.fileio: the one writer every output goes through, and the check every verb runs on
its outputs and inputs before any work.

Devices and FIFOs are written in place (never renamed over); every write error is an
OutputError naming the path asked for; an output never names an input. A FIFO is tested
with a reader thread: writing to it blocks until a reader opens it, as the shell's `>` does.
"""

from __future__ import annotations

import errno
import io
import os
import socket
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from snnc import fileio
from snnc.errors import SnncError
from snnc.fileio import (
    Folder,
    OutputError,
    check_outputs,
    same_file,
    write_atomic,
    write_folder,
)


def is_char_device(path) -> bool:
    return stat.S_ISCHR(os.lstat(path).st_mode)


def npz_bytes(arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


# ----------------------------------------------------------------------- write_atomic


def test_writes_bytes_and_functions_and_leaves_no_temporary(tmp_path):
    write_atomic(tmp_path / "a.bin", b"abc")
    write_atomic(tmp_path / "b.npz", lambda f: np.savez(f, x=np.arange(3)))
    assert (tmp_path / "a.bin").read_bytes() == b"abc"
    with np.load(tmp_path / "b.npz") as data:
        assert data["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.npz"]


def test_output_error_is_an_snnc_error_and_an_os_error():
    err = OutputError("cannot write 'x'", errno.ENOSPC)
    assert isinstance(err, SnncError) and isinstance(err, OSError)
    assert err.errno == errno.ENOSPC and str(err) == "cannot write 'x'"


@pytest.mark.parametrize("data", [b"hello", lambda f: np.savez(f, x=np.zeros(4))])
def test_dev_null_is_written_in_place_and_stays_a_device(data):
    assert write_atomic("/dev/null", data) == Path("/dev/null")
    assert is_char_device("/dev/null")


@pytest.mark.parametrize("data", [b"x" * 10, lambda f: np.savez(f, x=np.zeros(4))])
def test_dev_full_fails_naming_it_and_stays_a_device(data):
    with pytest.raises(OutputError) as info:
        write_atomic("/dev/full", data)
    assert str(info.value) == "cannot write '/dev/full': No space left on device"
    assert info.value.errno == errno.ENOSPC
    assert is_char_device("/dev/full")


def test_fifo_is_written_in_place_for_its_reader(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    payload = npz_bytes({"x": np.arange(5)})
    write_atomic(fifo, lambda f: np.savez(f, x=np.arange(5)))  # blocks until the reader opens
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert received == [payload]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]


def test_a_pipe_named_through_dev_fd_is_written(tmp_path):
    # What `--json >(jq .)` hands over: /dev/fd/N, a link to a pipe. Renaming over it cannot
    # work; writing to it must.
    read_end, write_end = os.pipe()
    try:
        write_atomic(f"/dev/fd/{write_end}", b'{"passed": true}\n')
        os.close(write_end)
        write_end = -1
        assert os.read(read_end, 100) == b'{"passed": true}\n'
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


def test_a_socket_is_refused_naming_it_and_stays_a_socket(tmp_path):
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        with pytest.raises(OutputError, match=f"cannot write '{path}': "):
            write_atomic(path, b"data")
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
    finally:
        server.close()


def test_a_folder_is_refused_naming_it(tmp_path):
    with pytest.raises(OutputError, match=f"cannot write '{tmp_path}': it is a folder"):
        write_atomic(tmp_path, b"data")
    assert list(tmp_path.iterdir()) == []


def test_an_empty_path_is_refused():
    with pytest.raises(OutputError, match="empty path"):
        write_atomic("", b"data")


def test_a_missing_folder_is_named_and_nothing_is_made(tmp_path):
    target = tmp_path / "no" / "out.json"
    with pytest.raises(OutputError, match=f"cannot write '{target}': folder '.*no' does not"):
        write_atomic(target, b"{}")
    assert list(tmp_path.iterdir()) == []


def test_parents_are_made_on_request_and_removed_when_the_write_fails(tmp_path):
    write_atomic(tmp_path / "a" / "b" / "out.json", b"{}", parents=True)
    assert (tmp_path / "a" / "b" / "out.json").read_bytes() == b"{}"

    def broken(f):
        f.write(b"half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError, match="writer failed"):
        write_atomic(tmp_path / "c" / "d" / "out.npz", broken, parents=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_parent_that_is_a_file_is_named(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match=f"cannot write '{tmp_path / 'f' / 'out.json'}'"):
        write_atomic(tmp_path / "f" / "out.json", b"{}", parents=True)
    assert (tmp_path / "f").read_text() == "x"


def test_full_disk_names_the_path_not_the_temporary_and_keeps_the_old_file(tmp_path,
                                                                         monkeypatch):
    path = tmp_path / "m.snnc"
    path.write_bytes(b"previous")

    def full(fd):  # what a full disk raises: errno ENOSPC, the temporary's name or none
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(OutputError) as info:
        write_atomic(path, b"new content")
    assert str(info.value) == f"cannot write '{path}': No space left on device"
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["m.snnc"]


def test_permission_denied_names_the_path_not_the_temporary(tmp_path, monkeypatch):
    real_open = open

    def denied(file, mode="r", *args, **kwargs):
        if "x" in mode:  # creating the temporary file
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(fileio, "open", denied, raising=False)
    with pytest.raises(OutputError) as info:
        write_atomic(tmp_path / "out.json", b"{}")
    assert str(info.value) == f"cannot write '{tmp_path / 'out.json'}': Permission denied"
    assert ".tmp" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_system_folder_is_named():
    # sysfs refuses new files even to root (where chmod would not stop a write).
    with pytest.raises(OutputError, match="cannot write '/sys/snnc-test.json': "):
        write_atomic("/sys/snnc-test.json", b"{}")
    assert not os.path.lexists("/sys/snnc-test.json")


def test_a_symlink_is_followed_and_kept(tmp_path):
    (tmp_path / "real.json").write_bytes(b"old")
    (tmp_path / "link.json").symlink_to("real.json")
    write_atomic(tmp_path / "link.json", b"new")
    assert (tmp_path / "link.json").is_symlink()
    assert (tmp_path / "real.json").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]


# ----------------------------------------------------------------------- write_folder


FILES = {"a.png": b"A", "index.html": b"<html>"}


def test_a_new_folder_appears_whole(tmp_path):
    target = tmp_path / "x" / "report"
    assert write_folder(target, FILES) == target
    assert {p.name: p.read_bytes() for p in target.iterdir()} == FILES
    assert [p.name for p in tmp_path.iterdir()] == ["x"]
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["report"]


def test_an_existing_folder_keeps_other_files_and_gets_the_new_ones(tmp_path):
    (tmp_path / "notes.txt").write_bytes(b"mine")
    (tmp_path / "index.html").write_bytes(b"old")
    write_folder(tmp_path, FILES)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {**FILES,
                                                                    "notes.txt": b"mine"}


def test_a_full_disk_changes_nothing_and_names_the_file(tmp_path, monkeypatch):
    (tmp_path / "index.html").write_bytes(b"old")
    calls = []

    def full_on_second(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "fsync", full_on_second)
    with pytest.raises(OutputError) as info:
        write_folder(tmp_path, FILES)
    assert str(info.value) == (f"cannot write '{tmp_path / 'index.html'}': "
                               "No space left on device")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {"index.html": b"old"}


def test_a_new_folder_and_its_parents_are_not_left_after_a_failure(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(fileio.os, "fsync", full)
    with pytest.raises(OutputError, match="a.png': No space left on device"):
        write_folder(tmp_path / "p" / "q" / "report", FILES)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rename_puts_every_file_back(tmp_path, monkeypatch):
    (tmp_path / "a.png").write_bytes(b"old A")
    real_replace = fileio.os.replace

    def replace(src, dst):
        if Path(dst) == tmp_path / "index.html":
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(src, dst)

    monkeypatch.setattr(fileio.os, "replace", replace)
    with pytest.raises(OutputError, match="index.html': Input/output error"):
        write_folder(tmp_path, FILES)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == {"a.png": b"old A"}


def test_a_folder_where_a_file_is_named_is_refused(tmp_path):
    (tmp_path / "index.html").mkdir()
    with pytest.raises(OutputError, match="index.html': it is a folder"):
        write_folder(tmp_path, FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html"]
    assert list((tmp_path / "index.html").iterdir()) == []


def test_a_file_given_as_the_folder_is_refused(tmp_path):
    (tmp_path / "taken").write_bytes(b"x")
    with pytest.raises(OutputError, match="'.*taken'.* is not a folder"):
        write_folder(tmp_path / "taken", FILES)
    assert (tmp_path / "taken").read_bytes() == b"x"


# ---------------------------------------------------------------------- check_outputs


def test_same_file_through_a_symlink_a_hard_link_and_dotdot(tmp_path):
    a = tmp_path / "a.snnc"
    a.write_bytes(b"x")
    (tmp_path / "sym").symlink_to(a)
    os.link(a, tmp_path / "hard")
    (tmp_path / "sub").mkdir()
    assert same_file(tmp_path / "sym", a)
    assert same_file(tmp_path / "hard", a)
    assert same_file(tmp_path / "sub" / ".." / "a.snnc", a)
    assert not same_file(tmp_path / "other", a)
    assert same_file(tmp_path / "new", tmp_path / "sub" / ".." / "new")  # neither exists


@pytest.mark.parametrize("name", ["a.snnc", "sym", "hard", "sub/../a.snnc"])
def test_an_output_naming_an_input_is_refused_naming_both(tmp_path, name):
    a = tmp_path / "a.snnc"
    a.write_bytes(b"x")
    (tmp_path / "sym").symlink_to(a)
    os.link(a, tmp_path / "hard")
    (tmp_path / "sub").mkdir()
    out = str(tmp_path / name)
    with pytest.raises(OutputError) as info:
        check_outputs({"-o/--output": out}, {"ARTIFACT": a, "--input": None})
    message = str(info.value)
    assert f"-o/--output {out!r} would replace the input ARTIFACT {str(a)!r}" in message
    assert a.read_bytes() == b"x"


def test_distinct_files_pass(tmp_path):
    (tmp_path / "a.snnc").write_bytes(b"x")
    check_outputs({"-o/--output": tmp_path / "b.npz", "--json": None},
                  {"ARTIFACT": tmp_path / "a.snnc"})


def test_two_outputs_naming_one_file_are_refused(tmp_path):
    with pytest.raises(OutputError, match="--json '.*r' and --report '.*r' name the same"):
        check_outputs({"--json": tmp_path / "r", "--report": Folder(tmp_path / "r", tuple(FILES))},
                      {})
    with pytest.raises(OutputError, match="--json .* and --report .*index.html' name"):
        check_outputs({"--json": tmp_path / "r" / "index.html",
                       "--report": Folder(tmp_path / "r", tuple(FILES))}, {})


def test_a_folder_output_is_compared_through_its_files(tmp_path):
    (tmp_path / "index.html").write_bytes(b"an input")
    (tmp_path / "a.snnc").write_bytes(b"x")
    report = Folder(tmp_path, tuple(FILES))
    with pytest.raises(OutputError, match="--report .*index.html' would replace the input "
                                          "--data"):
        check_outputs({"--report": report}, {"--data": tmp_path / "index.html"})
    # another file in the folder is no file of the report: it stays an input
    check_outputs({"--report": report}, {"ARTIFACT": tmp_path / "a.snnc"})


def test_outputs_that_cannot_be_written_are_refused_before_work(tmp_path, monkeypatch):
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(OutputError, match="--json: cannot write to an empty path"):
        check_outputs({"--json": ""}, {})
    with pytest.raises(OutputError, match=f"--json {str(tmp_path)!r} is a folder"):
        check_outputs({"--json": tmp_path}, {})
    with pytest.raises(OutputError, match="--report .*file' exists and is not a folder"):
        check_outputs({"--report": Folder(tmp_path / "file", ())}, {})
    with pytest.raises(OutputError, match="'.*file' is not a folder"):
        check_outputs({"-o/--output": tmp_path / "file" / "sub" / "out.npz"}, {})
    monkeypatch.setattr(fileio.os, "access", lambda path, mode: False)  # a read-only folder
    with pytest.raises(OutputError, match=f"-o/--output: cannot write '.*out.npz': folder "
                                          f"{str(tmp_path)!r} is not writable"):
        check_outputs({"-o/--output": tmp_path / "new" / "out.npz"}, {})
