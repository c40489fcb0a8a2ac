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

from snnc.environments import LEGACY_API, legacy_python, needs_legacy
from snnc.errors import SnncError
from snnc.inputs import open_regular

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
    """Read a checkpoint: a state_dict, or a dict holding one under net/state_dict/model.

    A zip checkpoint (torch.save's format) has every member's CRC verified first, so a
    damaged byte anywhere is refused rather than loaded; then `torch.load(weights_only=True)`;
    then every tensor must be dense, on the CPU and real (`check_tensors`)."""
    path = Path(path)
    where = f"--weights {path}"
    if not path.exists():
        raise CheckpointError(f"{where}: no such checkpoint file")
    with open_regular(path, where, CheckpointError) as f:
        head = f.read(4)
        if not head:
            raise CheckpointError(f"{where}: is empty (0 bytes), not a torch checkpoint")
        f.seek(0)
        if head == b"PK\x03\x04":
            _verify_zip(f, where)
        f.seek(0)
        try:
            obj = torch.load(f, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            first = str(err).splitlines()[0] if str(err) else ""
            raise CheckpointError(
                f"{where}: refused: loading it would run code or build objects other than "
                f"tensors (torch.load weights_only=True): {first}") from None
        except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise CheckpointError(f"{where}: not a readable torch checkpoint (truncated or "
                                  f"damaged?): {first}") from None
    state = _unwrap(obj, path)
    if all(k.startswith("module.") for k in state):  # saved from nn.DataParallel
        state = {k[len("module."):]: v for k, v in state.items()}
    check_tensors(state, where)
    return state


def _verify_zip(f, where: str) -> None:
    """Every member's CRC-32, as stored in the archive (torch.load never checks them)."""
    try:
        with zipfile.ZipFile(f) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            NotImplementedError) as err:
        raise CheckpointError(f"{where}: not a readable torch checkpoint (truncated or "
                              f"damaged?): its zip archive is unreadable: {err}") from None
    if bad is not None:
        raise CheckpointError(f"{where}: damaged checkpoint: member {bad!r} fails its CRC-32 "
                              "check (bytes changed after torch.save wrote it)")


def check_tensors(state: Mapping[str, torch.Tensor], where: str) -> None:
    """Refuse tensors snnc cannot read as numbers: sparse or other non-strided layouts,
    tensors on another device (meta included), quantized and complex ones. Accepted: dense
    CPU tensors of floating point, integer (num_batches_tracked) or bool type."""
    accepted = ("accepted: dense (strided) CPU tensors of real floating point, integer or "
                "bool type")
    for key, v in state.items():
        if v.layout != torch.strided:
            raise CheckpointError(f"{where}: tensor {key!r} has layout {v.layout} (sparse?); "
                                  f"{accepted}")
        if v.device.type != "cpu":
            raise CheckpointError(f"{where}: tensor {key!r} is on device {str(v.device)!r} "
                                  f"(a meta tensor holds no values); {accepted}")
        if v.is_quantized or v.is_complex():  # what is left is real: float, integer, bool
            raise CheckpointError(f"{where}: tensor {key!r} has dtype {v.dtype}, refused (a "
                                  f"complex tensor is not cut to its real part); {accepted}")


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
        except RecursionError:
            raise SnncError("--model-kwargs is nested too deeply") from None
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, Mapping):
        raise SnncError(f"--model-kwargs must be a JSON object, like '{{\"timesteps\": 4}}'; "
                        f"got a {type(kwargs).__name__}: {kwargs!r}")
    kwargs = dict(kwargs)
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
    except (Exception, SystemExit) as err:
        raise SnncError(f"model {spec!r}: calling {attr}(**{kwargs}) "
                        f"{user_code_failure(err)}") from err
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
        except (Exception, SystemExit) as err:
            del sys.modules[name]
            if needs_legacy(err):
                raise LegacyAPIError(spec, target) from None
            raise SnncError(f"model {spec!r}: importing {target} "
                            f"{user_code_failure(err)}") from err
        return module
    try:
        return importlib.import_module(target)
    except ImportError as err:
        if needs_legacy(err):
            raise LegacyAPIError(spec, target) from None
        raise SnncError(f"model {spec!r}: cannot import {target}: {err}") from None
    except (Exception, SystemExit) as err:
        raise SnncError(f"model {spec!r}: importing {target} "
                        f"{user_code_failure(err)}") from err


class LegacyAPIError(SnncError):
    """The model imports `spikingjelly.clock_driven` (spikingjelly 0.0.0.0.12-0.0.0.0.14),
    which this environment's spikingjelly lacks. `snnc compile` catches it and reruns itself
    in the legacy environment; from Python, run the legacy environment's interpreter."""

    def __init__(self, spec: str, target: str) -> None:
        try:
            from importlib.metadata import version

            have = f"spikingjelly {version('spikingjelly')}, which removed it"
        except Exception:  # noqa: BLE001 - not installed, or no metadata
            have = "no spikingjelly"
        #: what is wrong, without the remedy
        self.reason = (f"model {spec!r}: {target} imports {LEGACY_API}, the API of "
                       f"spikingjelly 0.0.0.0.12 to 0.0.0.0.14, and this environment "
                       f"({sys.prefix}) has {have}")
        super().__init__(
            f"{self.reason}; run it with the legacy environment's Python, {legacy_python()} "
            "(created by `make envs`; SNNC_LEGACY_PYTHON names another), as `snnc compile` "
            "does by itself")


def user_code_failure(err: BaseException) -> str:
    """How the user's model code ended, for a message that names the model: a sys.exit()
    in it (SystemExit, which would otherwise end snnc with the model's status and nothing
    printed) or an exception. Ctrl-C is not caught here: the CLI reports it."""
    if isinstance(err, SystemExit):
        return f"called sys.exit({err.code!r}); the model's code must return, not exit"
    return f"failed: {type(err).__name__}: {err}"
