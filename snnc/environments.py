"""The project's Python environments besides the one running (docs/architecture.md, "Two
environments"; README, "Legacy spikingjelly"): where each interpreter lives, in one place.

- `.venv-lava` (Python 3.10, lava-nc): the Lava backend runs there as a subprocess.
- `.venv-legacy` (Python 3.11, torch, spikingjelly 0.0.0.0.12): `snnc compile` reruns itself
  there when a model imports `spikingjelly.clock_driven`, the API spikingjelly 2.0 removed.
  The artifact holds no torch objects, so everything after compiling is the same.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The legacy spikingjelly API (0.0.0.0.12 to 0.0.0.0.14) that selects `.venv-legacy`.
LEGACY_API = "spikingjelly.clock_driven"


def lava_python() -> Path:
    """The project's Lava interpreter: <repository>/.venv-lava/bin/python."""
    return ROOT / ".venv-lava" / "bin" / "python"


def legacy_python() -> Path:
    """The interpreter for legacy spikingjelly models: $SNNC_LEGACY_PYTHON if set, else
    <repository>/.venv-legacy/bin/python."""
    override = os.environ.get("SNNC_LEGACY_PYTHON")
    return Path(override) if override else ROOT / ".venv-legacy" / "bin" / "python"


def needs_legacy(err: BaseException) -> bool:
    """Whether an import failed only because this environment's spikingjelly lacks the
    legacy `clock_driven` API (spikingjelly itself may be installed, or not)."""
    name = getattr(err, "name", None) or ""
    return isinstance(err, ModuleNotFoundError) and (
        name == LEGACY_API or name.startswith(LEGACY_API + "."))
