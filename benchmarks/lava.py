"""Lava fixed_pt against the reference simulator on the same artifacts.

    .venv/bin/python benchmarks/lava.py [--samples 20]

Compiles the shipped examples for loihi2, then runs each on Lava (in the Lava environment,
through the subprocess runner: the time includes starting it) and on the reference
simulator with the same hardware timing. Prints Lava's steps per second, wall time per
sample, and the ratio Lava / reference simulator.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("torch._library.triton").setLevel(logging.ERROR)
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
