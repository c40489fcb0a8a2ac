"""Speed of the bit-accurate reference simulator against PyTorch's float inference.

    make bench            (or: .venv/bin/python benchmarks/refsim.py [--batch 64] [--quick])

For each shipped example (its 360 test images: digits, or digits32 for the deep ResNets) and
a ResNet-19 (3x32x32, random weights, T = 4, batch 64): the same network's PyTorch float32
forward and the reference simulator's bit-accurate fixed-point run, in this process, one
after the other. Prints seconds, samples per second, synaptic events per second (every spike
times the synapses it reaches, the graded input counting each nonzero pixel), the ratio
simulator / PyTorch (below 1: faster), and the simulator's peak memory, measured in a
second run (the timed one runs alone): "py MB" is tracemalloc's (numpy's allocations, not
torch's), "rss+ MB" the process's resident memory above its level at the start of the run,
sampled every 5 ms (torch's buffers included).
Three engines are timed: numpy, the definition; torch, whose CPU convolution is checked
exact (backends/refsim/torch_engine.py); and int, integer tensors end to end with int8
products exact by construction (backends/refsim/int_engine.py). Every engine's spikes are
checked identical to numpy's.

GPU: with a CUDA device, --gpu-samples (default 10,000) ResNet-19 samples at T = 4 on the
int engine (device cuda) against PyTorch's float32 forward (TF32 off), TF32 and bf16
(autocast); without one it prints "no CUDA device".
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch
from spikingjelly.activation_based import functional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from models import MODELS, run  # noqa: E402
from resnet19 import ResNet19  # noqa: E402
from train_digits import DATA  # noqa: E402

from snnc.backends.refsim import kernels, simulate  # noqa: E402
from snnc.datasets import SPLITS  # noqa: E402
from snnc.frontends.torch import trace  # noqa: E402
from snnc.ir import FxChannelSlice, FxConv2d, FxDense, FxInput, Graph  # noqa: E402
from snnc.targets import LOIHI2  # noqa: E402
from snnc.tools.pass_runner import compile_graph  # noqa: E402

T = 4
ENGINES = ("numpy", "torch", "int")


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 5 ms (Linux /proc)."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def mb(self) -> float:
        return (self.peak - self.base) / 2**20


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: no sampling, the column reads 0
        return 0


def synaptic_events(graph: Graph, x: np.ndarray, spikes: dict[str, np.ndarray]) -> int:
    """Exact count of (spike, synapse) deliveries over the run, borders included."""
    total = 0
    for node in graph:
        if not isinstance(node, FxConv2d | FxDense):
            continue
        src, channels = graph[node.inputs[0]], slice(None)
        if isinstance(src, FxChannelSlice):  # a part of a split fan-in reads these channels
            src, channels = graph[src.inputs[0]], slice(src.start, src.stop)
        if isinstance(src, FxInput):
            active = np.broadcast_to((x != 0)[None], (T, *x.shape)).astype(np.float64)
        else:
            active = spikes[src.name].astype(np.float64)
        active = active[:, :, channels]
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
    reference = None
    for engine in ENGINES:
        simulate(fixed, x[:2], T, engine=engine)  # warm-up
        start = time.perf_counter()
        result = simulate(fixed, x, T, engine=engine)
        row[engine] = time.perf_counter() - start
        if reference is None:
            reference = result
        elif any(not np.array_equal(reference.spikes[k], result.spikes[k])
                 for k in reference.spikes):
            raise SystemExit(f"{name}: engine {engine}'s spikes differ from numpy's")
        del result
        # memory in a second run: tracemalloc and the sampling thread would slow the timed
        # one (the int engine's many small torch calls most)
        tracemalloc.start()
        with PeakRSS() as rss:
            simulate(fixed, x, T, engine=engine)
        row[f"{engine}_peak"] = tracemalloc.get_traced_memory()[1] / 2**20
        row[f"{engine}_rss"] = rss.mb
        tracemalloc.stop()
    row["events"] = synaptic_events(fixed, x, reference.spikes)
    return row


def gpu(samples: int, batch: int) -> None:
    """ResNet-19 on CUDA: the int engine against PyTorch float32 (TF32 off), TF32, bf16."""
    print(f"\nGPU: ResNet-19 (3x32x32), T = {T}, {samples} samples in batches of {batch}")
    if not torch.cuda.is_available():
        print("no CUDA device (torch.cuda.is_available() is False): GPU section skipped")
        return
    dev = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(dev)}")
    model = ResNet19(T).eval()
    fixed = compile_graph(trace(model, torch.zeros(2, 3, 32, 32), T, input_shape=(3, 32, 32)),
                          LOIHI2, timesteps=T).graph
    x = np.random.default_rng(0).random((samples, 3, 32, 32))
    model = model.to(dev)
    xt = torch.as_tensor(x, dtype=torch.float32, device=dev)

    def forward(tf32: bool, bf16: bool):
        def run_all(n: int) -> None:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            with torch.no_grad(), torch.autocast("cuda", torch.bfloat16, enabled=bf16):
                for i in range(0, n, batch):
                    functional.reset_net(model)  # each batch from rest, as the simulator
                    model(xt[i:i + batch])
        return run_all

    def int_engine(n: int) -> None:
        for i in range(0, n, batch):
            simulate(fixed, x[i:i + batch], T, engine="int", device=dev)

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    rows = [("PyTorch float32 (TF32 off)", forward(False, False)),
            ("PyTorch TF32", forward(True, False)), ("PyTorch bf16 autocast", forward(False, True)),
            ("refsim int (exact)", int_engine)]
    times = {}
    for label, fn in rows:
        fn(min(batch, samples))  # warm-up: one batch
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        fn(samples)
        torch.cuda.synchronize()
        times[label] = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() / 2**20
        print(f"{label:<28} {times[label]:>8.2f} s {samples / times[label]:>10.0f} samples/s "
              f"ratio to float32 {times[label] / times[rows[0][0]]:>5.2f}  peak {peak:.0f} MB")
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="ResNet-19 batch (default 64)")
    parser.add_argument("--quick", action="store_true", help="ResNet-19 at batch 8 only")
    parser.add_argument("--gpu-samples", type=int, default=10_000,
                        help="ResNet-19 samples for the GPU section (default 10000)")
    parser.add_argument("--gpu-batch", type=int, default=500,
                        help="their batch size (default 500)")
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
    print("refsim engines: numpy (the definition), torch (torch's CPU convolution, checked "
          "exact), int (integer tensors, int8 products exact by construction); ratio = refsim "
          "seconds / PyTorch float seconds")
    print(f"{'network':<20} {'batch':>5} {'torch s':>8} {'engine':>7} {'refsim s':>9} "
          f"{'ratio':>6} {'samples/s':>10} {'syn events/s':>13} {'py MB':>7} {'rss+ MB':>8}")
    for r in rows:
        for engine in ENGINES:
            print(f"{r['name']:<20} {r['batch']:>5} {r['torch_s']:>8.2f} {engine:>7} "
                  f"{r[engine]:>9.2f} {r[engine] / r['torch_s']:>6.2f} "
                  f"{r['batch'] / r[engine]:>10.1f} {r['events'] / r[engine]:>13.3g} "
                  f"{r[engine + '_peak']:>7.0f} {r[engine + '_rss']:>8.0f}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS (everything above, PyTorch's forward included): {rss:.0f} MB")
    gpu(args.gpu_samples, args.gpu_batch)


if __name__ == "__main__":
    main()
