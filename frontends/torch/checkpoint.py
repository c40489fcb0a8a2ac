"""Loading checkpoints safely, and loading the user's model definition.

Checkpoints are read with `torch.load(weights_only=True)`: a file that would need to run code
to load is refused. Model definitions are the user's own Python (`pkg.module:factory` or
`path/to/file.py:factory`), imported as code by design; keyword arguments come as JSON,
never evaluated.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import pickle
import sys
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnc.errors import SnncError

#: Keys under which training scripts commonly nest the state_dict (the CLIF authors use 'net').
WRAPPER_KEYS = ("net", "state_dict", "model")
_LIST_LIMIT = 12


class CheckpointError(SnncError):
    """A checkpoint cannot be loaded into the model; the message names the keys."""


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint: a state_dict, or a dict holding one under net/state_dict/model."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).splitlines()[0] if str(err) else ""
        raise CheckpointError(
            f"{path}: refused: loading it would run code or build objects other than tensors "
            f"(torch.load weights_only=True): {first}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{path}: not a readable torch checkpoint (truncated or "
                              f"damaged?): {first}") from None
    state = _unwrap(obj, path)
    if all(k.startswith("module.") for k in state):  # saved from nn.DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _unwrap(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}; expected a state_dict "
                              f"or a dict with one under {', '.join(WRAPPER_KEYS)}")
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj)
    for key in WRAPPER_KEYS:
        inner = obj.get(key)
        if isinstance(inner, Mapping) and inner and all(
                isinstance(v, torch.Tensor) for v in inner.values()):
            return dict(inner)
    keys = ", ".join(map(repr, list(obj)[:_LIST_LIMIT]))
    raise CheckpointError(f"{path}: no state_dict found; top-level keys are {keys}; expected "
                          f"tensors, or a dict of tensors under {', '.join(WRAPPER_KEYS)}")


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:_LIST_LIMIT])
    return shown + (f" and {len(keys) - _LIST_LIMIT} more" if len(keys) > _LIST_LIMIT else "")


def apply_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load `state` into `model` strictly, with errors that name every offending key."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    problems = []
    if missing:
        problems.append(f"missing keys: {_names(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_names(unexpected)}")
    shapes = [f"{k} (checkpoint {tuple(state[k].shape)}, model {tuple(v.shape)})"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if shapes:
        problems.append(f"shape mismatch: {_names(shapes)}")
    if problems:
        raise CheckpointError(f"{source} does not fit the model: " + "; ".join(problems))
    bad = [k for k, v in state.items()
           if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(f"{source}: NaN or infinite values in {_names(bad)}")
    model.load_state_dict(state, strict=True)


def load_model(spec: str, kwargs: str | Mapping[str, Any] | None = None) -> nn.Module:
    """Build the user's model from `pkg.module:factory` or `path/to/file.py:factory`."""
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs) if kwargs.strip() else {}
        except json.JSONDecodeError as err:
            raise SnncError(f"--model-kwargs is not valid JSON: {err}") from None
    kwargs = dict(kwargs or {})
    if not isinstance(kwargs, dict):
        raise SnncError("--model-kwargs must be a JSON object, like '{\"timesteps\": 4}'")
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise SnncError(f"model {spec!r}: expected 'pkg.module:factory' or "
                        "'path/to/file.py:factory'")
    module = _import(target, spec)
    factory = getattr(module, attr, None)
    if factory is None:
        raise SnncError(f"model {spec!r}: {target} has no attribute {attr!r}")
    if not callable(factory):
        raise SnncError(f"model {spec!r}: {attr} is not callable")
    try:
        model = factory(**kwargs)
    except Exception as err:
        raise SnncError(f"model {spec!r}: calling {attr}(**{kwargs}) failed: "
                        f"{type(err).__name__}: {err}") from err
    if not isinstance(model, nn.Module):
        raise SnncError(f"model {spec!r}: {attr}() returned {type(model).__name__}, "
                        "not a torch.nn.Module")
    return model


def _import(target: str, spec: str):
    if target.endswith(".py") or "/" in target:
        path = Path(target).resolve()
        if not path.is_file():
            raise SnncError(f"model {spec!r}: no such file {target}")
        folder = str(path.parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)  # so the file can import its neighbours
        name = f"snnc_user_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{path.stem}"
        if name in sys.modules:
            return sys.modules[name]
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as err:
            del sys.modules[name]
            raise SnncError(f"model {spec!r}: importing {target} failed: "
                            f"{type(err).__name__}: {err}") from err
        return module
    try:
        return importlib.import_module(target)
    except ImportError as err:
        raise SnncError(f"model {spec!r}: cannot import {target}: {err}") from None
