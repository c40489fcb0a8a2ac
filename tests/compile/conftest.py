"""Shared pieces for the compile-side tests: the example models, the digits split, and an
independent recorder of the torch model's spikes (forward hooks on its neuron modules; it
uses nothing from the tracer)."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional
from spikingjelly.activation_based.neuron import BaseNode

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _load_example(name: str):
    """Import examples/<name>.py the way a user's script would (its folder on sys.path)."""
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def neuron_types() -> tuple[type, ...]:
    return (BaseNode, _load_example("stbp_custom").STBPLIF)


def _record_spikes(model: torch.nn.Module, x: np.ndarray, timesteps: int,
                  step_mode: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Run a float64 copy of the model on frames `x` [B, ...]; return every neuron module's
    spikes as [T, B, ...] keyed by module path, and the time-averaged model output."""
    net = copy.deepcopy(model).double().eval()
    seen: dict[str, list[torch.Tensor]] = {}
    hooks = []
    for path, m in net.named_modules():
        if isinstance(m, neuron_types()):
            seen[path] = []
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, path=path: seen[path].append(out.detach().clone())))
    xt = torch.as_tensor(x, dtype=torch.float64)
    functional.reset_net(net)
    with torch.no_grad():
        if step_mode == "m":
            out = net(xt)
            spikes = {p: v[0].numpy() for p, v in seen.items()}
        else:
            out = torch.stack([net(xt) for _ in range(timesteps)]).mean(0)
            spikes = {p: torch.stack(v).numpy() for p, v in seen.items()}
    functional.reset_net(net)
    for h in hooks:
        h.remove()
    return spikes, out.numpy()


@pytest.fixture(scope="session")
def load_example():
    """load_example(name) -> the module examples/<name>.py."""
    return _load_example


@pytest.fixture(scope="session")
def record_spikes():
    """record_spikes(model, x, T, step_mode) -> ({module path: [T, B, ...]}, output)."""
    return _record_spikes


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def digits():
    from snnc.datasets import digits_split

    return digits_split()
