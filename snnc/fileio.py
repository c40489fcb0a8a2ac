"""Writing outputs: never half a file, never over an input, never a device replaced.

Every file snnc writes goes through `write_atomic` (one file) or `write_folder` (a set of
files, such as the HTML report), and every command first passes its outputs and inputs to
`check_outputs`, before it does any work. Every failure is an `OutputError` naming the path
that was asked for, never a hidden temporary name.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from snnc.errors import SnncError

PathLike = str | os.PathLike[str]


class OutputError(SnncError, OSError):
    """An output cannot be written, or would replace an input of the same command. The
    message names the path asked for; `errno` is the system's error number when one caused
    it. Also an OSError, so that code catching write errors as OSError still catches it."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.errno = code


# ------------------------------------------------------------------------------- writing


def write_atomic(path: PathLike, data: bytes | Callable[[BinaryIO], None], *,
                 parents: bool = False) -> Path:
    """Write `data` (bytes, or a function writing to the open file) to `path`.

    A regular file (or a new one) is written to a hidden temporary file beside it, flushed to
    disk, then renamed over it: readers see the old file or the new one, never a part, and on
    any error the temporary file is removed. A symbolic link is followed: the file it points
    to is replaced and the link stays.

    A path that exists and is not a regular file (a character or block device, a FIFO, a
    socket) is opened and written in place, with no temporary file and no rename, as the
    shell's `>` does: `/dev/null` stays a device, and writing to a FIFO waits until a reader
    opens it. A function given as `data` writes into memory first; what reaches such a file
    before a write error stays there.

    The file gets the usual permissions (the umask's), not mkstemp's private 0600: artifacts,
    reports and results are meant to be shared. The folder must exist, unless `parents`:
    then missing folders are made (and removed again if the write fails). Every OSError
    becomes an OutputError naming `path`; an empty path or a folder is refused."""
    shown = os.fspath(path)
    state = _state(shown, "cannot write")
    if state == "folder":
        raise OutputError(f"cannot write {shown!r}: it is a folder; give a file name",
                          errno.EISDIR)
    path = Path(path)
    if state == "special":
        if callable(data):  # into memory first: a device may claim to seek (/dev/null) and
            buffer = io.BytesIO()  # a zip writer trusts it; and a failure writes nothing
            data(buffer)
            data = buffer.getvalue()
        try:
            with open(path, "wb") as f:
                _fill(f, data)
        except OSError as err:
            raise _error(shown, err) from err
        return path
    target = Path(os.path.realpath(path)) if state == "file" else path
    made: list[Path] = []
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    try:
        if parents:
            _make_folders(target.parent, made)
        elif not target.parent.is_dir():
            what = "is not a folder" if target.parent.exists() else "does not exist"
            raise OutputError(f"cannot write {shown!r}: folder {str(target.parent)!r} {what}",
                              errno.ENOENT)
        with open(tmp, "xb") as f:
            _fill(f, data)
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        _remove_folders(made)
        if isinstance(err, OSError) and not isinstance(err, OutputError):
            raise _error(shown, err) from err
        raise
    return path


def write_folder(directory: PathLike, files: Mapping[str, bytes]) -> Path:
    """Write `files` (file name -> bytes, in order) into the folder `directory`, all or
    nothing: nothing at `directory` changes until every file is written and flushed to disk.

    - `directory` does not exist: the files are written into a hidden temporary folder
      beside it (missing parent folders are made), which is then renamed to `directory` in
      one step.
    - `directory` exists: the temporary folder is made inside it, then each file is renamed
      into place, replacing the file of the same name (an earlier report's); other files in
      the folder are left alone. Should a rename fail, the files already moved are taken
      back and the replaced ones restored.

    On any failure the temporary folder, and any parent folder made for it, are removed, and
    an OSError becomes an OutputError naming the requested path (`directory/name`)."""
    shown = os.fspath(directory)
    state = _state(shown, "cannot write the folder")
    if state not in ("folder", "missing"):
        raise OutputError(f"cannot write into {shown!r}: it exists and is not a folder",
                          errno.ENOTDIR)
    directory = Path(directory)
    token = secrets.token_hex(6)
    made: list[Path] = []
    tmp: Path | None = None
    where = shown
    try:
        if state == "missing":
            _make_folders(directory.parent, made)
            tmp = directory.parent / f".{directory.name}.{token}.tmp"
        else:
            tmp = directory / f".snnc-{token}.tmp"
        tmp.mkdir()
        for name, data in files.items():
            where = os.path.join(shown, name)
            with open(tmp / name, "xb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        where = shown
        if state == "missing":
            os.rename(tmp, directory)
            tmp = None
        else:
            _move_into(tmp, directory, list(files), shown)
    except BaseException as err:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        _remove_folders(made)
        if isinstance(err, OSError) and not isinstance(err, OutputError):
            raise _error(where, err) from err
        raise
    if tmp is not None:  # only the replaced files are left in it
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _move_into(tmp: Path, directory: Path, names: list[str], shown: str) -> None:
    """Rename tmp/name to directory/name for each name, keeping the replaced files in
    tmp/.old until all are moved; on failure put everything back as it was."""
    old = tmp / ".old"
    old.mkdir()
    moved: list[tuple[str, bool]] = []  # (name, whether an old file was set aside)
    try:
        for name in names:
            target = directory / name
            if target.is_dir() and not target.is_symlink():
                raise OutputError(f"cannot write {os.path.join(shown, name)!r}: it is a "
                                  "folder; move it away", errno.EISDIR)
            kept = os.path.lexists(target)
            if kept:
                os.replace(target, old / name)
            moved.append((name, kept))
            try:
                os.replace(tmp / name, target)
            except OSError as err:
                raise _error(os.path.join(shown, name), err) from err
    except BaseException:
        for name, kept in reversed(moved):
            with contextlib.suppress(OSError):
                if kept:
                    os.replace(old / name, directory / name)
                elif not (tmp / name).exists():  # ours was moved in: take it out
                    (directory / name).unlink(missing_ok=True)
        raise


def _fill(f: BinaryIO, data: bytes | Callable[[BinaryIO], None]) -> None:
    if callable(data):
        data(f)
    else:
        f.write(data)
    f.flush()


def _state(shown: str, doing: str) -> str:
    """'missing', 'file' (regular), 'folder' or 'special' (device, FIFO, socket), following
    symbolic links; an empty path is refused."""
    if not shown:
        raise OutputError(f"{doing} an empty path ''; give a file name", errno.ENOENT)
    try:
        mode = os.stat(shown).st_mode
    except (FileNotFoundError, NotADirectoryError):  # the latter: a file on the way
        return "missing"
    except OSError as err:
        raise _error(shown, err) from err
    if stat.S_ISDIR(mode):
        return "folder"
    return "file" if stat.S_ISREG(mode) else "special"


def _error(shown: str, err: OSError) -> OutputError:
    return OutputError(f"cannot write {shown!r}: {err.strerror or err}", err.errno)


def _make_folders(folder: Path, made: list[Path]) -> None:
    """Make `folder` and its missing parents, appending each one made to `made`."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir()
        made.append(folder)


def _remove_folders(made: list[Path]) -> None:
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            folder.rmdir()


# ------------------------------------------------------------------- before any work


@dataclass(frozen=True)
class Folder:
    """An output that is a folder of the named files (`snnc check --report DIR`)."""

    path: PathLike
    files: tuple[str, ...]


def check_outputs(outputs: Mapping[str, PathLike | Folder | None],
                  inputs: Mapping[str, PathLike | None]) -> None:
    """Refuse, before a command does any work, an output (option -> path, or a `Folder`) that
    could not be written or would replace an input (option -> path) or another output.

    Refused: an empty path; a folder given as a file output, or an existing non-folder as a
    folder output; an output whose folder cannot be written; an output that is the same file
    as an input or as another output, after following symbolic links and `..`, hard links
    included (same device and inode when both exist, else the same resolved path). A folder
    output is compared through the files it writes (and the folder itself), so another file
    in it may be an input. None values are skipped. Raises OutputError naming both options
    and the path."""
    written: list[tuple[str, str]] = []  # (option, path) of every file an output writes
    for option, value in outputs.items():
        if value is None:
            continue
        folder = isinstance(value, Folder)
        shown = os.fspath(value.path if folder else value)
        state = _state(shown, f"{option}: cannot write to")
        if folder and state not in ("folder", "missing"):
            raise OutputError(f"{option} {shown!r} exists and is not a folder; give a folder "
                              "for the report", errno.ENOTDIR)
        if not folder and state == "folder":
            raise OutputError(f"{option} {shown!r} is a folder; give a file name",
                              errno.EISDIR)
        _check_writable(option, shown, state, folder)
        written.append((option, shown))
        if folder:
            written.extend((option, os.path.join(shown, name)) for name in value.files)
    named = [(o, os.fspath(p)) for o, p in inputs.items() if p is not None and os.fspath(p)]
    for option, path in written:
        for in_option, in_path in named:
            if same_file(path, in_path):
                raise OutputError(f"{option} {path!r} would replace the input {in_option} "
                                  f"{in_path!r}; an output never replaces an input: write "
                                  "to another file")
    for i, (option, path) in enumerate(written):
        for other, other_path in written[i + 1:]:
            if other != option and same_file(path, other_path):
                raise OutputError(f"{option} {path!r} and {other} {other_path!r} name the "
                                  "same file; give each output its own")


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether two paths name one file: the same device and inode when both exist (symbolic
    links followed, hard links found), else the same path once links and `..` are resolved."""
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _check_writable(option: str, shown: str, state: str, folder: bool) -> None:
    """The write can happen: a device or FIFO is writable, a folder output's folder (or a
    new file's nearest existing folder) lets files be made in it."""
    if state == "special":
        where = shown
    elif folder and state == "folder":
        where = shown
    else:
        where = _nearest_existing(os.path.dirname(os.path.realpath(shown)))
        if not os.path.isdir(where):
            raise OutputError(f"{option} {shown!r}: {where!r} is not a folder", errno.ENOTDIR)
    if not os.access(where, os.W_OK):
        what = "it is" if where == shown else f"folder {where!r} is"
        raise OutputError(f"{option}: cannot write {shown!r}: {what} not writable",
                          errno.EACCES)


def _nearest_existing(path: str) -> str:
    while not os.path.lexists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return path

