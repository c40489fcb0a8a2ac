"""Lava fixed_pt against the reference simulator on the same artifacts.

    .venv/bin/python benchmarks/lava.py [--samples 20] [--resnet19]

Compiles the shipped examples for loihi2, then runs each on Lava (in the Lava environment,
through the subprocess runner: the time includes starting it) and on the reference
simulator with the same hardware timing. Prints Lava's steps per second, wall time per
sample, and the ratio Lava / reference simulator.

`--resnet19` runs `benchmarks/resnet19.py` (random weights, 3x32x32, T = 4) instead, on one
random sample, and adds the peak memory of the Lava run: the summed PSS (proportional set
size: shared pages split among the processes that share them) of the Lava subprocess and
the worker processes Lava starts, sampled every half second from /proc.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from snnc.analyses.timing import schedule
from snnc.artifact import read_artifact
from snnc.backends.lava.remote import run_lava
from snnc.backends.refsim import simulate
from snnc.datasets import digits_split
from snnc.tools.cli import cli

ROOT = Path(__file__).resolve().parents[1]
T = 4
SPECS = {"stbp_resnet": "models.py:stbp_resnet", "clif_vgg": "models.py:clif_vgg",
         "clif_preact_resnet": "models.py:clif_preact_resnet",
         "stbp_custom": "stbp_custom.py:stbp_custom_net"}


def _tree_pss(root: int) -> int:
    """Summed PSS in bytes of `root` and its descendants (Linux /proc)."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                total += next(int(line.split()[1]) * 1024 for line in f
                              if line.startswith("Pss:"))
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration):
            continue
    return total


def resnet19() -> None:
    """ResNet-19 (random weights) on Lava fixed_pt: one random sample, time and memory."""
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from resnet19 import ResNet19

    peak = [0]
    done = threading.Event()

    def watch() -> None:  # the Lava subprocess and Lava's workers are our descendants
        while not done.is_set():
            peak[0] = max(peak[0], _tree_pss(os.getpid()))
            time.sleep(0.5)

    with tempfile.TemporaryDirectory() as tmp:
        weights, path = Path(tmp) / "w.pt", Path(tmp) / "resnet19.snnc"
        torch.save(ResNet19(T).state_dict(), weights)
        start = time.perf_counter()
        result = CliRunner().invoke(cli, [
            "compile", str(ROOT / "benchmarks" / "resnet19.py") + ":ResNet19", "--weights",
            str(weights), "-T", str(T), "--input-shape", "3,32,32", "--check-samples", "2",
            "-o", str(path)])
        assert result.exit_code == 0, result.output
        compile_s = time.perf_counter() - start
        size_mb = path.stat().st_size / 1e6
        graph = read_artifact(path).graph
        plan = schedule(graph)
        steps = T + plan.latency + 1 + max(plan.delays.values(), default=0)
        x = np.random.default_rng(0).random((1, 3, 32, 32))
        baseline = _tree_pss(os.getpid())
        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        start = time.perf_counter()
        run_lava(path, x, T)
        lava_s = time.perf_counter() - start
        done.set()
        thread.join()
        start = time.perf_counter()
        simulate(graph, x, T, timing="hardware")
        ref_s = time.perf_counter() - start
    print(f"resnet19 (3x32x32, T={T}, random weights): compile {compile_s:.1f} s, artifact "
          f"{size_mb:.1f} MB")
    print(f"lava fixed_pt, 1 sample, {steps} steps: {lava_s:.1f} s ({lava_s / steps:.2f} s per "
          f"step, subprocess start included); refsim {ref_s:.2f} s (lava/refsim "
          f"{lava_s / ref_s:.0f}); peak memory {peak[0] / 2**30:.2f} GiB summed PSS "
          f"(this process {baseline / 2**30:.2f} GiB of it before Lava started)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--resnet19", action="store_true",
                        help="ResNet-19 at 3x32x32 on one sample, with Lava's peak memory")
    args = parser.parse_args()
    logging.getLogger("torch._library.triton").setLevel(logging.ERROR)
    if args.resnet19:
        resnet19()
        return
    x = digits_split()[2][: args.samples]
    print(f"{'network':<20} {'samples':>7} {'steps':>6} {'lava s':>7} {'steps/s':>8} "
          f"{'s/sample':>9} {'refsim s':>9} {'lava/refsim':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in SPECS.items():
            path = Path(tmp) / f"{name}.snnc"
            result = CliRunner().invoke(cli, [
                "compile", str(ROOT / "examples" / spec), "--weights",
                str(ROOT / "examples" / "checkpoints" / f"{name}.pt"), "-T", str(T),
                "--input-shape", "1,8,8", "-o", str(path)])
            assert result.exit_code == 0, result.output
            graph = read_artifact(path).graph
            plan = schedule(graph)  # the Lava run's period: T + latency + drain steps
            steps = len(x) * (T + plan.latency + 1 + max(plan.delays.values(), default=0))
            start = time.perf_counter()
            run_lava(path, x, T)
            lava_s = time.perf_counter() - start
            start = time.perf_counter()
            simulate(graph, x, T, timing="hardware")
            ref_s = time.perf_counter() - start
            print(f"{name:<20} {len(x):>7} {steps:>6} {lava_s:>7.2f} {steps / lava_s:>8.1f} "
                  f"{lava_s / len(x):>9.3f} {ref_s:>9.3f} {lava_s / ref_s:>11.0f}")


if __name__ == "__main__":
    main()
