"""`snnc check --ray`'s scaling: samples/s with 1 and 2 workers, per-shard overhead, and a
projection to N workers from those measurements.

    .venv/bin/python benchmarks/check_scaling.py [--model clif_vgg] [--samples 4000]
                                                 [--data random|digits] [--lava-samples 0]

Compiles a shipped example for loihi2 (T = 4, 1x8x8), then times, in this process:

- the single-process check (`run_check`) on `--samples` samples of `--data` (the refsim
  backend);
- for 1 and 2 workers, a local Ray cluster (its start timed apart), a 1-sample sharded check
  (which also starts the workers' Python), then the sharded check of the same samples;
- the model's three figures, from those measurements: `fixed`, what a check costs whatever
  its samples (the 1-sample single-process check less one sample: the rungs that are not
  per sample, and a backend's start per run, Lava's process); `per_sample`, from the
  single-process checks of 1 and of all samples; `ray`, the Ray overhead of a shard (the
  1-sample sharded check less the 1-sample single-process one: the progress actor, shipping
  the artifact and inputs, starting the task, the merge);
- the projection to N workers: `ray + fixed + per_sample * samples / N` (every shard pays
  the fixed cost, in parallel). A projection, not a measurement: it assumes identical
  workers (one core each, on as many nodes as needed), shipping in negligible time and no
  driver bottleneck; the 1- and 2-worker rows show how far it is from what was measured.

`--lava-samples K` adds the same rows for the Lava backend on K samples (each shard starts
Lava twice: fixed_pt and floating_pt). Every timing is wall time on this machine, which may be
shared: the figures carry its load.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits  # scikit-learn's dependency (extra data)

from snnc.artifact import read_artifact
from snnc.backends import create_backend
from snnc.inputs import load_data
from snnc.tools import shard
from snnc.tools.check import Thresholds, run_check

ROOT = Path(__file__).resolve().parents[1]
T = 4
SPECS = {"stbp_resnet": "models.py:stbp_resnet", "clif_vgg": "models.py:clif_vgg",
         "clif_preact_resnet": "models.py:clif_preact_resnet",
         "stbp_custom": "stbp_custom.py:stbp_custom_net"}
PROJECT = (1, 2, 4, 8, 16, 32, 64)
REPEAT = 3  # rounds; each figure the shortest of its 3 runs


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def measure(path: Path, backend: str, samples: int, source: str) -> dict:
    """Every figure the shortest of REPEAT rounds, each round timing every variant in turn
    (single process, 1 worker, 2 workers): the machine is shared, and a busy spell then
    slows one round of each, not every run of one variant."""
    import ray

    art = read_artifact(path)
    runner = create_backend(backend, art, path)
    settings = {"backend": runner, "timesteps": T, "backend_samples": None,
                "thresholds": Thresholds(max_accuracy_drop=100)}
    data = load_data(source, art, samples, T)
    one = data.head(1)
    times: dict[str, list[float]] = {}

    def keep(key: str, fn):
        seconds, out = _timed(fn)
        times.setdefault(key, []).append(seconds)
        return out

    for _ in range(REPEAT):
        keep("single_1", lambda: run_check(art, str(path), one, **settings))
        doc = keep("single", lambda: run_check(art, str(path), data, **settings).to_json())
        for w in (1, 2):
            keep(f"start{w}", lambda w=w: ray.init(
                address="local", num_cpus=w, include_dashboard=False, log_to_driver=False,
                logging_level=logging.ERROR, object_store_memory=shard.OBJECT_STORE_BYTES))
            try:  # the first run starts the workers' Python and imports snnc there
                keep(f"cold{w}", lambda w=w: shard.run_sharded(art, str(path), one, workers=w,
                                                               **settings))
                keep(f"sharded_1_{w}", lambda w=w: shard.run_sharded(
                    art, str(path), one, workers=w, **settings))
                report, _ = keep(f"wall{w}", lambda w=w: shard.run_sharded(
                    art, str(path), data, workers=w, **settings))
            finally:
                ray.shutdown()
            if report.to_json() != doc:
                raise SystemExit(f"{w} workers: the sharded report differs from one "
                                 "process's")
    best = {k: min(v) for k, v in times.items()}
    single, single_1 = best["single"], best["single_1"]
    out = {"single": single, "single_1": single_1,
           "workers": {w: {"start": best[f"start{w}"], "cold": best[f"cold{w}"],
                           "sharded_1": best[f"sharded_1_{w}"], "wall": best[f"wall{w}"]}
                       for w in (1, 2)}}
    out["ray"] = max(0.0, out["workers"][1]["sharded_1"] - single_1)
    out["per_sample"] = max(0.0, (single - single_1) / max(1, samples - 1))
    out["fixed"] = max(0.0, single_1 - out["per_sample"])
    return out


def report(name: str, backend: str, samples: int, source: str, m: dict) -> None:
    print(f"\n{name}, backend {backend}, {samples} samples ({source}, T={T}); "
          f"this machine: {os.cpu_count()} cores, shared with other work; one BLAS thread "
          f"per process; each figure the shortest of {REPEAT} runs")
    print(f"{'run':<28} {'wall s':>8} {'samples/s':>10} {'speed-up':>9}")
    print(f"{'single process':<28} {m['single']:>8.2f} {samples / m['single']:>10.1f} "
          f"{1.0:>9.2f}")
    for w, r in m["workers"].items():
        print(f"{f'--ray --workers {w}':<28} {r['wall']:>8.2f} {samples / r['wall']:>10.1f} "
              f"{m['single'] / r['wall']:>9.2f}   (not counted: cluster start "
              f"{r['start']:.1f} s, first 1-sample check {r['cold']:.1f} s)")
    print(f"per-shard Ray overhead {m['ray']:.2f} s (1-sample check: sharded "
          f"{m['workers'][1]['sharded_1']:.2f} s, single process {m['single_1']:.2f} s); "
          f"fixed cost per check part {m['fixed']:.2f} s; {1e3 * m['per_sample']:.2f} ms "
          "per sample")
    print(f"projection (not measured) for these {samples} samples: Ray overhead + fixed + "
          "per sample x samples / N:")
    print(f"{'N workers':>9} {'wall s':>8} {'samples/s':>10}")
    for n in PROJECT:
        wall = m["ray"] + m["fixed"] + m["per_sample"] * samples / n
        print(f"{n:>9} {wall:>8.2f} {samples / wall:>10.1f}" +
              ("   (measured: {:.2f} s)".format(m["workers"][n]["wall"])
               if n in m["workers"] else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=list(SPECS), default="clif_vgg")
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--data", default="random", choices=["digits", "random"],
                        help="digits: at most 360 samples; random: as many as --samples")
    parser.add_argument("--lava-samples", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{args.model}.snnc"
        # In a process of its own: torch's threads, once imported here, would slow this
        # process's numpy (the single-process check) several times over on a small machine.
        subprocess.run([
            sys.executable, "-m", "snnc.tools.cli", "compile",
            str(ROOT / "examples" / SPECS[args.model]), "--weights",
            str(ROOT / "examples" / "checkpoints" / f"{args.model}.pt"), "-T", str(T),
            "--input-shape", "1,8,8", "-o", str(path)], check=True, stdout=subprocess.DEVNULL)
        # One BLAS thread here, as Ray gives each worker (OMP_NUM_THREADS=1): two threads per
        # process on two shared cores made the single-process check 5-15 times slower.
        with threadpool_limits(1):
            report(args.model, "refsim", args.samples, args.data,
                   measure(path, "refsim", args.samples, args.data))
            if args.lava_samples:
                report(args.model, "lava", args.lava_samples, "digits",
                       measure(path, "lava", args.lava_samples, "digits"))


if __name__ == "__main__":
    main()
