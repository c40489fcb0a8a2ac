"""Run an artifact on Lava: the Lava environment's side of the subprocess runner.

    python -m snnc.backends.lava.run MODEL.snnc --input X.npy --timesteps T --output OUT.npz
                                     [--precision fixed|float] [--shm-prefix PREFIX]

`--precision fixed` (the default) runs the artifact's fixed-point graph on Lava fixed_pt;
`float` runs its float reference graph (the graph itself for a float target) on Lava
floating_pt, with the same hardware timing.

(Not `__main__.py`: a `__main__.py` is run as a script by anything that imports the
package's folder module by module. snnc's Processes live alone in `models/` for the same
reason: Lava imports every module in a Process's folder while it looks for ProcessModels.)

Writes every neuron layer's per-step record (`[T + latency, batch, ...]`, hardware timing)
to OUT.npz, atomically. Errors print one line on stderr and exit 1.

`--shm-prefix` names every POSIX shared-memory segment of the run (Lava's channels)
PREFIX + random hex, so that the parent (remote.py) can remove exactly this run's segments
after killing its process group (see remote.py for the lifecycle).
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
from pathlib import Path

import numpy as np

from snnc.artifact import Artifact, read_artifact
from snnc.errors import SnncError
from snnc.fileio import write_atomic
from snnc.ir import FxInput, Graph


def graph_for(art: Artifact, precision: str) -> Graph:
    """The graph a run of this precision executes."""
    quantized = any(isinstance(n, FxInput) for n in art.graph)
    if precision == "fixed":
        if not quantized:
            raise SnncError("the artifact holds a float graph (target "
                            f"{art.target!r}); run it with --precision float")
        return art.graph
    if not quantized:
        return art.graph
    if art.reference is None:
        raise SnncError("the artifact has no float reference graph; run it with "
                        "--precision fixed")
    return art.reference


SHM_PREFIX = re.compile(r"[A-Za-z0-9_]{1,20}")


def use_shm_namespace(prefix: str) -> None:
    """Name every shared-memory segment this process and its forks create
    `/<prefix><8 random hex digits>` (lava's channels come from a SharedMemoryManager server
    forked from here, which inherits this).

    CPython's `multiprocessing.shared_memory.SharedMemory(create=True)` draws its names from
    the module's `_make_filename()` at call time (checked on 3.10 and 3.11), and retries on a name
    that exists; replacing that function is the one hook there is."""
    import multiprocessing.shared_memory as shared_memory

    if not SHM_PREFIX.fullmatch(prefix):
        raise SnncError(f"--shm-prefix must be 1 to 20 letters, digits or '_', got {prefix!r}")
    if not callable(getattr(shared_memory, "_make_filename", None)):
        raise SnncError("this Python's multiprocessing.shared_memory has no _make_filename(); "
                        "the Lava run's shared memory could not be named for its clean-up "
                        "(use Python 3.10, as .venv-lava does)")

    def make_filename() -> str:
        return "/" + prefix + secrets.token_hex(4)

    shared_memory._make_filename = make_filename


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snnc.backends.lava.run")
    parser.add_argument("artifact")
    parser.add_argument("--input", required=True)
    parser.add_argument("--timesteps", type=int, required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--precision", choices=("fixed", "float"), default="fixed")
    parser.add_argument("--shm-prefix", default=None)
    args = parser.parse_args(argv)
    try:
        if args.shm_prefix is not None:
            use_shm_namespace(args.shm_prefix)
        from snnc.backends.lava.lower import run_fixed, run_float

        art = read_artifact(args.artifact)
        graph = graph_for(art, args.precision)
        x = np.load(args.input, allow_pickle=False)
        run = run_fixed if args.precision == "fixed" else run_float
        records = run(graph, x, args.timesteps)
        write_atomic(Path(args.output), lambda f: np.savez(f, **records))
    except SnncError as err:
        print(f"snnc: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
