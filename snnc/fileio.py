"""Writing output files so that a failure never leaves half of one behind."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: str | os.PathLike[str], data: bytes | Callable[[BinaryIO], None]
                 ) -> Path:
    """Write `data` (bytes, or a function writing to the open file) to a hidden temporary
    file beside `path`, flush it to disk, then rename it over `path`: readers see the old
    file or the new one, never a part, and on any error the temporary file is removed.

    The file gets the usual permissions (the umask's), not mkstemp's private 0600: artifacts,
    reports and results are meant to be shared. The folder must exist."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
