"""Train the example SNNs on the digits split and save the checkpoints snnc's tests compile.

    python examples/train_digits.py [--models a,b] [--epochs N] [--verify-only]

Every example model trains with T = 4, on the digits split at its input size (`DATA`:
`digits`, 1x8x8, or for the deep ResNets `digits32`, the same images upsampled to 3x32x32),
Adam, cross-entropy on the time-averaged
output (MSE on the spike rate for `MSE_ON_RATE`, as the STBP reproductions train), batch 64,
multi-step, on 2 CPU threads, from `torch.manual_seed(0)` (set again before
each model, so one model's result does not depend on which others ran). Checkpoints go to
`examples/checkpoints/<name>.pt`: a plain state_dict for the STBP models, and the CLIF
authors' `{'net': state_dict, 'epoch': E}` for the CLIF models. `accuracy.json` records the
float test accuracy of each.

The models come from `models.py` (spikingjelly 2.0) and `clif_legacy.py` (the legacy
`clock_driven` API); each environment trains the ones it can import, so `clif_legacy`
trains with the legacy environment's Python:

    .venv-legacy/bin/python examples/train_digits.py --models clif_legacy

After training, every checkpoint is reloaded into a fresh model with
`torch.load(..., weights_only=True)` and must reproduce its recorded accuracy; the
spikingjelly 2.0 CLIF models are also rebuilt in single-step mode ('s'), which must give the
same accuracy.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

EXAMPLES = Path(__file__).resolve().parent
sys.path.insert(0, str(EXAMPLES))

from snnc.datasets import SPLITS  # noqa: E402

CHECKPOINTS = EXAMPLES / "checkpoints"
ACCURACY = CHECKPOINTS / "accuracy.json"
TIMESTEPS = 4
BATCH = 64
THREADS = 2
SEED = 0
#: Epochs and Adam learning rate per model: enough for > 90% test accuracy in seconds.
SCHEDULE: dict[str, tuple[int, float]] = {
    "stbp_resnet": (15, 5e-3),
    "clif_vgg": (15, 5e-3),
    "clif_preact_resnet": (15, 5e-3),
    "stbp_custom": (15, 5e-3),
    "stbp_timelast": (15, 5e-3),
    "clif_legacy": (15, 5e-3),
    "stbp_resnet19": (20, 5e-3),
    "clif_resnet18": (20, 5e-3),
}
#: The built-in data set (`snnc.datasets.SPLITS`) each model trains on, by its input size;
#: `digits` where not named.
DATA = {"stbp_resnet19": "digits32", "clif_resnet18": "digits32"}
#: Models trained as their authors train them: MSE between the spike rate and the one-hot
#: label (the STBP reproductions); the others use cross-entropy on the time-averaged output.
MSE_ON_RATE = ("stbp_timelast",)
#: Models saved in the CLIF authors' checkpoint format.
CLIF_FORMAT = ("clif_vgg", "clif_preact_resnet", "clif_legacy", "clif_resnet18")
#: Models built in either step style, which must agree; they train multi-step (faster).
STEP_STYLES = ("clif_vgg", "clif_preact_resnet", "clif_resnet18")
MAX_CHECKPOINT_BYTES = 2 * 1024 * 1024


def registry() -> dict[str, tuple[Callable[..., nn.Module], Callable]]:
    """Every example model this environment can import: name -> (factory, run), where
    `run(model, x, T)` returns the time-averaged class scores."""
    found = {}
    if importlib.util.find_spec("spikingjelly.activation_based") is not None:
        import models

        found.update({n: (f, models.run) for n, f in models.MODELS.items()})
    if importlib.util.find_spec("spikingjelly.clock_driven") is not None:
        import clif_legacy

        found.update(clif_legacy.MODELS)
    return found


MODELS = registry()


def accuracy(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Float test accuracy (eval mode, time-averaged output) of `model` on `(x, y)`."""
    model.eval()
    with torch.no_grad():
        pred = MODELS[name][1](model, x, TIMESTEPS).argmax(1)
    return int((pred == y).sum()) / len(y)


def train(name: str, epochs: int, lr: float, data: tuple[torch.Tensor, ...]) -> dict:
    """Train one model from seed 0, save its checkpoint, return its accuracy record."""
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(SEED)
    factory, run = MODELS[name]
    model = factory(timesteps=TIMESTEPS, **({"step_mode": "m"} if name in STEP_STYLES else {}))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    order = torch.Generator().manual_seed(SEED)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        total, correct, loss_sum = 0, 0, 0.0
        for idx in torch.randperm(len(x_train), generator=order).split(BATCH):
            out = run(model, x_train[idx], TIMESTEPS)
            if name in MSE_ON_RATE:
                loss = F.mse_loss(out, F.one_hot(y_train[idx], out.shape[1]).to(out.dtype))
            else:
                loss = F.cross_entropy(out, y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += len(idx)
            correct += int((out.argmax(1) == y_train[idx]).sum())
            loss_sum += loss.item() * len(idx)
        scheduler.step()
        print(f"  {name} epoch {epoch + 1}/{epochs}: loss {loss_sum / total:.4f} "
              f"train acc {correct / total:.4f}", flush=True)
    seconds = time.perf_counter() - start
    test_acc = accuracy(name, model, x_test, y_test)
    state = model.state_dict()
    checkpoint = {"net": state, "epoch": epochs} if name in CLIF_FORMAT else state
    path = CHECKPOINTS / f"{name}.pt"
    torch.save(checkpoint, path)
    size = path.stat().st_size
    if size >= MAX_CHECKPOINT_BYTES:
        raise SystemExit(f"{path} is {size} bytes; checkpoints must stay under 2 MB")
    print(f"{name}: test accuracy {test_acc:.4f} after {epochs} epochs, {seconds:.1f} s, "
          f"checkpoint {size} bytes", flush=True)
    return {"test_accuracy": test_acc, "epochs": epochs, "timesteps": TIMESTEPS,
            "train_seconds": round(seconds, 2), "data": DATA.get(name, "digits")}


def load(name: str, step_mode: str = "m") -> nn.Module:
    """A fresh model with `name`'s checkpoint loaded (`weights_only=True`), in eval mode."""
    kwargs = {"step_mode": step_mode} if name in STEP_STYLES else {}
    model = MODELS[name][0](timesteps=TIMESTEPS, **kwargs)
    checkpoint = torch.load(CHECKPOINTS / f"{name}.pt", weights_only=True)
    state = checkpoint["net"] if name in CLIF_FORMAT else checkpoint
    model.load_state_dict(state, strict=True)
    return model.eval()


@functools.cache
def _split(source: str) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(a) for a in SPLITS[source]())


def dataset(name: str) -> tuple[torch.Tensor, ...]:
    """`(x_train, y_train, x_test, y_test)` of the data set model `name` trains on (`DATA`)."""
    return _split(DATA.get(name, "digits"))


def verify(names: list[str], record: dict) -> bool:
    """Reload each checkpoint; check the recorded accuracy (and 's' == 'm' where both
    exist)."""
    ok = True
    for name in names:
        x_test, y_test = dataset(name)[2:]
        expected = record[name]["test_accuracy"]
        got = accuracy(name, load(name), x_test, y_test)
        line = f"verify {name}: reloaded {got:.4f} (recorded {expected:.4f})"
        ok &= got == expected
        if name in STEP_STYLES:
            run = MODELS[name][1]
            single = load(name, step_mode="s")
            multi_keys = set(load(name).state_dict())
            same_keys = set(single.state_dict()) == multi_keys
            with torch.no_grad():
                diff = (run(single, x_test, TIMESTEPS) - run(load(name), x_test, TIMESTEPS))
            got_s = accuracy(name, single, x_test, y_test)
            line += (f", step_mode 's' {got_s:.4f}, same keys {same_keys}, "
                     f"max |out_s - out_m| {diff.abs().max().item():.2e}")
            ok &= got_s == expected and same_keys
        print(line, flush=True)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS),
                        help="comma-separated model names (default: all this "
                        "environment can import)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs for every selected model (default: per-model schedule)")
    parser.add_argument("--verify-only", action="store_true",
                        help="skip training; reload the saved checkpoints and check them")
    args = parser.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be at least 1")
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known in this environment "
                     f"({sys.prefix}): {', '.join(MODELS)} (clif_legacy trains with "
                     ".venv-legacy/bin/python, the others with .venv/bin/python)")

    torch.set_num_threads(THREADS)
    CHECKPOINTS.mkdir(exist_ok=True)
    record = json.loads(ACCURACY.read_text()) if ACCURACY.exists() else {}

    if not args.verify_only:
        for name in names:
            epochs, lr = SCHEDULE[name]
            record[name] = train(name, epochs if args.epochs is None else args.epochs, lr,
                                 dataset(name))
            ACCURACY.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return 0 if verify(names, record) else 1


if __name__ == "__main__":
    sys.exit(main())
