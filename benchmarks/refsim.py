"""Speed of the bit-accurate reference simulator against PyTorch's float inference.

    make bench            (or: .venv/bin/python benchmarks/refsim.py [--batch 64] [--quick])

For each shipped example (its 360 test images: digits, or digits32 for the deep ResNets) and
a ResNet-19 (3x32x32, random weights, T = 4, batch 64): the same network's PyTorch float32
forward and the reference simulator's bit-accurate fixed-point run, in this process, one
after the other. Prints seconds, samples per second, synaptic events per second (every spike
times the synapses it reaches, the graded input counting each nonzero pixel), the ratio
simulator / PyTorch (below 1: faster), and the simulator's peak memory (tracemalloc: numpy's
allocations; the torch engine's own buffers are not included). Both simulator engines are
timed: numpy, the definition, and torch, whose CPU convolution is checked exact (see
backends/refsim/torch_engine.py).
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from models import MODELS, run  # noqa: E402
from resnet19 import ResNet19  # noqa: E402
from train_digits import DATA  # noqa: E402

from snnc.backends.refsim import kernels, simulate  # noqa: E402
from snnc.datasets import SPLITS  # noqa: E402
from snnc.frontends.torch import trace  # noqa: E402
from snnc.ir import FxConv2d, FxDense, FxInput, Graph  # noqa: E402
from snnc.targets import LOIHI2  # noqa: E402
from snnc.tools.pass_runner import compile_graph  # noqa: E402

T = 4


def synaptic_events(graph: Graph, x: np.ndarray, spikes: dict[str, np.ndarray]) -> int:
    """Exact count of (spike, synapse) deliveries over the run, borders included."""
    total = 0
    for node in graph:
        if not isinstance(node, FxConv2d | FxDense):
            continue
        src = graph[node.inputs[0]]
        if isinstance(src, FxInput):
            active = np.broadcast_to((x != 0)[None], (T, *x.shape)).astype(np.float64)
        else:
            active = spikes[src.name].astype(np.float64)
        active = active.reshape(-1, *active.shape[2:])  # [T*B, ...]
        if isinstance(node, FxDense):
            total += int(active.sum()) * node.weight.shape[0]
            continue
        c_out, _, kh, kw = node.weight.shape
        per_pixel = active.sum(axis=1, keepdims=True)  # [T*B, 1, H, W]
        reach = kernels.conv2d(per_pixel, np.ones((1, 1, kh, kw)), node.stride, node.padding)
        total += int(round(reach.sum())) * c_out
    return total


def bench(name: str, model: torch.nn.Module, x: np.ndarray, torch_forward) -> dict:
    model.eval()
    example = torch.zeros(2, *x.shape[1:])
    graph = trace(model, example, T, input_shape=tuple(x.shape[1:]))
    fixed = compile_graph(graph, LOIHI2, timesteps=T).graph
    xt = torch.as_tensor(x, dtype=torch.float32)
    with torch.no_grad():
        torch_forward(model, xt[:2])  # warm-up
        start = time.perf_counter()
        torch_forward(model, xt)
        torch_s = time.perf_counter() - start
    row = {"name": name, "batch": len(x), "torch_s": torch_s}
    for engine in ("numpy", "torch"):
        simulate(fixed, x[:2], T, engine=engine)  # warm-up
        tracemalloc.start()
        start = time.perf_counter()
        result = simulate(fixed, x, T, engine=engine)
        row[engine] = time.perf_counter() - start
        row[f"{engine}_peak"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    row["events"] = synaptic_events(fixed, x, result.spikes)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="ResNet-19 batch (default 64)")
    parser.add_argument("--quick", action="store_true", help="ResNet-19 at batch 8 only")
    args = parser.parse_args()
    logging.getLogger("torch._library.triton").setLevel(logging.ERROR)
    torch.manual_seed(0)
    rows = []
    for name, factory in MODELS.items():
        model = factory(timesteps=T)
        state = torch.load(ROOT / "examples" / "checkpoints" / f"{name}.pt", weights_only=True)
        model.load_state_dict(state.get("net", state))
        x_test = SPLITS[DATA.get(name, "digits")]()[2]  # the test split at the model's size
        rows.append(bench(name, model, x_test.astype(np.float64),
                          lambda m, x: run(m, x, T)))
    batch = 8 if args.quick else args.batch
    x = np.random.default_rng(0).random((batch, 3, 32, 32))
    rows.append(bench("resnet19 (3x32x32)", ResNet19(T), x, lambda m, x: m(x)))

    print(f"threads: torch {torch.get_num_threads()}; T = {T}; bit-accurate fixed point "
          "(loihi2), zero-delay timing")
    print("refsim engines: numpy (the definition) and torch (torch's CPU convolution, "
          "checked exact); ratio = refsim seconds / PyTorch float seconds")
    print(f"{'network':<20} {'batch':>5} {'torch s':>8} {'engine':>7} {'refsim s':>9} "
          f"{'ratio':>6} {'samples/s':>10} {'syn events/s':>13} {'peak MB':>8}")
    for r in rows:
        for engine in ("numpy", "torch"):
            print(f"{r['name']:<20} {r['batch']:>5} {r['torch_s']:>8.2f} {engine:>7} "
                  f"{r[engine]:>9.2f} {r[engine] / r['torch_s']:>6.2f} "
                  f"{r['batch'] / r[engine]:>10.1f} {r['events'] / r[engine]:>13.3g} "
                  f"{r[engine + '_peak']:>8.0f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS (everything above, PyTorch's forward included): {rss:.0f} MB")


if __name__ == "__main__":
    main()
