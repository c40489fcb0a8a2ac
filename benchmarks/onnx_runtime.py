"""Speed of onnxruntime running the exported fixed-point program against the reference
simulator, on the same artifact and batch.

    .venv/bin/python benchmarks/onnx_runtime.py [--samples 64] [--deep] [--resnet19 BATCH]

For each shipped example (compiled for loihi2 here, as benchmarks/refsim.py does; the deep
3x32x32 ones with --deep) on its first test images, and optionally a ResNet-19 (3x32x32,
random weights, benchmarks/resnet19.py): the reference simulator's hardware-timed record
(`hardware_record`, T + latency steps, what `snnc check` compares with) and the ONNX
backend's run of the same batch (one onnxruntime session on CPU, T + latency calls, states fed
back), timed one after the other in this process. Prints the export time, both run times,
the ratio onnx / refsim (below 1: onnxruntime is faster) and the mismatches between the two
records (0 expected). Wall-clock figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from models import MODELS  # noqa: E402
from train_digits import DATA  # noqa: E402

from snnc.backends.onnx.backend import run_model  # noqa: E402
from snnc.backends.onnx.export import build_model  # noqa: E402
from snnc.backends.refsim import hardware_record  # noqa: E402
from snnc.datasets import SPLITS  # noqa: E402
from snnc.frontends.torch import trace  # noqa: E402
from snnc.targets import LOIHI2  # noqa: E402
from snnc.tools.pass_runner import compile_graph  # noqa: E402

T = 4
DEEP = ("stbp_resnet19", "clif_resnet18")


def bench(name: str, model: torch.nn.Module, x: np.ndarray) -> dict:
    model.eval()
    graph = trace(model, torch.zeros(2, *x.shape[1:]), T, input_shape=tuple(x.shape[1:]))
    fixed = compile_graph(graph, LOIHI2, timesteps=T).graph
    build_model(fixed, timesteps=T)  # warm-up: the first export imports onnx
    start = time.perf_counter()
    onnx_model = build_model(fixed, timesteps=T)
    export_s = time.perf_counter() - start
    hardware_record(fixed, x[:1], T)  # warm-up, both
    run_model(onnx_model, fixed, x[:1], T)
    start = time.perf_counter()
    ref = hardware_record(fixed, x, T)
    refsim_s = time.perf_counter() - start
    start = time.perf_counter()
    got = run_model(onnx_model, fixed, x, T)
    onnx_s = time.perf_counter() - start
    bad = sum(int((got[k] != ref[k]).sum()) for k in ref)
    return {"name": name, "batch": len(x), "steps": T + onnx_model.interface.latency,
            "export_s": export_s, "refsim_s": refsim_s, "onnx_s": onnx_s,
            "mismatches": bad, "mb": len(onnx_model.data) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64, help="test images per example")
    parser.add_argument("--deep", action="store_true",
                        help="also the deep 3x32x32 examples (stbp_resnet19, clif_resnet18)")
    parser.add_argument("--resnet19", type=int, default=0, metavar="BATCH",
                        help="also a full-width ResNet-19 (random weights) at this batch")
    args = parser.parse_args()
    logging.getLogger("torch._library.triton").setLevel(logging.ERROR)
    torch.manual_seed(0)
    rows = []
    for name, factory in MODELS.items():
        if name in DEEP and not args.deep:
            continue
        model = factory(timesteps=T)
        state = torch.load(ROOT / "examples" / "checkpoints" / f"{name}.pt", weights_only=True)
        model.load_state_dict(state.get("net", state))
        x_test = SPLITS[DATA.get(name, "digits")]()[2][:args.samples]
        rows.append(bench(name, model, x_test.astype(np.float64)))
    if args.resnet19:
        spec = importlib.util.spec_from_file_location("resnet19", ROOT / "benchmarks" /
                                                      "resnet19.py")
        resnet19 = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(resnet19)
        x = np.random.default_rng(0).random((args.resnet19, 3, 32, 32))
        rows.append(bench("resnet19 (3x32x32)", resnet19.ResNet19(T), x))
    import onnxruntime

    print(f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider, default threads); "
          f"T = {T}; hardware timing, every step of T + latency; loihi2 fixed point")
    print("ratio = onnxruntime seconds / reference simulator seconds (below 1: faster)")
    print(f"{'network':<20} {'batch':>5} {'steps':>5} {'model MB':>8} {'export s':>8} "
          f"{'refsim s':>9} {'onnx s':>8} {'ratio':>6} {'mismatches':>10}")
    for r in rows:
        print(f"{r['name']:<20} {r['batch']:>5} {r['steps']:>5} {r['mb']:>8.2f} "
              f"{r['export_s']:>8.2f} {r['refsim_s']:>9.2f} {r['onnx_s']:>8.2f} "
              f"{r['onnx_s'] / r['refsim_s']:>6.2f} {r['mismatches']:>10}")


if __name__ == "__main__":
    main()
