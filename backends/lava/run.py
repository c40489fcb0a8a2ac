"""Run an artifact on Lava fixed_pt: the Lava environment's side of the subprocess runner.

    python -m snnc.backends.lava.run MODEL.snnc --input X.npy --timesteps T --output OUT.npz

(Not `__main__.py`: Lava imports every module in a Process's folder while it looks for
ProcessModels, and a `__main__.py` imported that way runs as a script.)

Writes every neuron layer's per-step record (`[T + latency, batch, ...]`, hardware timing)
to OUT.npz, atomically. Errors print one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

from snnc.artifact import read_artifact
from snnc.errors import SnncError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snnc.backends.lava.run")
    parser.add_argument("artifact")
    parser.add_argument("--input", required=True)
    parser.add_argument("--timesteps", type=int, required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    try:
        from snnc.backends.lava.lower import run_fixed

        art = read_artifact(args.artifact)
        x = np.load(args.input, allow_pickle=False)
        records = run_fixed(art.graph, x, args.timesteps)
        out = Path(args.output)
        fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".npz")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **records)
        os.replace(tmp, out)
    except SnncError as err:
        print(f"snnc: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
