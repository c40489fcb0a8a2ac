"""Backends: what runs a graph, and the contract every one of them follows.

A backend is a `Backend` subclass that declares what it is (name, the timing of its records,
the precisions it runs, whether `snnc check` needs a fixed-point artifact for it, its per-run
options, ...) and implements `run`: one batch in, per-step records out. It registers itself
with `@register`; `snnc check` and `snnc simulate` take their `--backend` choices and every
backend-specific difference from these declarations, never from a backend's name.

The built-in backends (`refsim`, the reference simulator; `lava`, Lava 0.10 through a
subprocess) live in `snnc.backends.<name>.backend` and are loaded by module name on the
first look-up (as plugins would be), so importing this package imports neither backend,
nor torch, nor lava-nc.
"""

from __future__ import annotations

import importlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from snnc.artifact import Artifact
from snnc.errors import SnncError
from snnc.ir import FxInput, Graph

#: The timing of a backend's records: "hardware" is the chip's pipeline (`[T + latency,
#: batch, ...]`, every step, fill included; analyses/timing.py), "zero" the trained model's
#: (`[T, batch, ...]`, no delay per synaptic hop).
TIMINGS = ("hardware", "zero")
#: "fixed": the artifact's fixed-point graph; "float": its float reference graph (the graph
#: itself for a float target).
PRECISIONS = ("fixed", "float")
#: Modules that register the built-in backends, loaded on the first look-up.
BUILTIN = ("snnc.backends.refsim.backend", "snnc.backends.lava.backend",
           "snnc.backends.onnx.backend")


class BackendError(SnncError):
    """An unknown backend or option, a second registration, or a run the backend refuses."""


#: What a backend option holds, which decides how the command line reads it: "text" as
#: given; "file" a path the run reads (an input of the command: no output may name it);
#: "seconds" a finite duration > 0.
OPTION_KINDS = ("text", "file", "seconds")


@dataclass(frozen=True)
class BackendOption:
    """A per-run option of a backend. The command line spells it `--<backend>-<name>`
    (`--lava-timeout`) on every verb that runs backends, generated from this declaration;
    `options_from` reads it back from the command's parameters. `check`, when given, turns a
    value given on the command line into the one the backend takes, or raises SnncError
    naming what is wrong (run before the command does any work)."""

    name: str
    help: str
    default: Any = None
    kind: str = "text"
    check: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.kind not in OPTION_KINDS:
            raise BackendError(f"option {self.name!r}: kind {self.kind!r}; expected one of "
                               f"{', '.join(OPTION_KINDS)}")


class Backend(ABC):
    """One backend, bound to the artifact it runs (and, for a backend that runs files, the
    artifact's path) and to its per-run options.

    Class attributes declare it; subclasses set every one without a default here.
    """

    #: The `--backend` choice.
    name: ClassVar[str]
    #: One line for `--help`.
    description: ClassVar[str]
    #: The timing of the records `run` returns (TIMINGS).
    timing: ClassVar[str]
    #: The precisions `run` accepts (PRECISIONS).
    precisions: ClassVar[tuple[str, ...]]
    #: How `snnc check` names each precision's runs in its rungs ("Lava fixed_pt").
    labels: ClassVar[Mapping[str, str]]
    #: `snnc check` runs it on fixed-point artifacts only.
    needs_fixed_point: ClassVar[bool] = False
    #: It is the reference simulator itself: `snnc check` compares its hardware timing with
    #: its zero-delay timing (comparing it with the reference would compare it with itself).
    is_reference: ClassVar[bool] = False
    #: The name of `snnc check`'s rung that runs its float models against the float reference
    #: graph ("lava floating_pt"); None: no such rung.
    float_rung: ClassVar[str | None] = None
    #: Samples `snnc check` runs on it when `--backend-samples` is not given; None: all.
    check_samples: ClassVar[int | None] = None
    #: Samples per run `snnc check` gives it when `--batch-size` is not given; None: the
    #: check's default. Larger for a backend with a fixed cost per run (a process to start).
    check_batch_size: ClassVar[int | None] = None
    #: Per-run options (`BackendOption`), passed to the constructor by name.
    options: ClassVar[tuple[BackendOption, ...]] = ()

    def __init__(self, artifact: Artifact | None = None,
                 path: str | os.PathLike[str] | None = None, **options: Any) -> None:
        known = {o.name: o.default for o in self.options}
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise BackendError(f"backend {self.name!r} has no option {unknown[0]!r}; its "
                               f"options: {', '.join(known) or 'none'}")
        self.artifact = artifact
        self.path = path
        self.settings = {**known, **{k: v for k, v in options.items() if v is not None}}

    @classmethod
    def options_from(cls, params: Mapping[str, Any]) -> dict[str, Any]:
        """This backend's options out of a command's parameters (`lava_timeout` -> `timeout`);
        options the command does not have are left out (their defaults apply)."""
        return {o.name: params[key] for o in cls.options
                if (key := f"{cls.name}_{o.name}".replace("-", "_")) in params}

    def precision_of(self, graph: Graph) -> str:
        """The precision a graph runs at: fixed for a quantized graph, else float."""
        return "fixed" if any(isinstance(n, FxInput) for n in graph) else "float"

    def graph(self, precision: str) -> Graph:
        """The bound artifact's graph that a run of this precision executes."""
        if precision not in self.precisions:
            raise BackendError(f"backend {self.name!r} runs precisions "
                               f"{', '.join(self.precisions)}, not {precision!r}")
        art = self.artifact
        if art is None:
            raise BackendError(f"backend {self.name!r} is bound to no artifact; pass a graph "
                               f"to run, or create it with an artifact")
        if self.precision_of(art.graph) == "fixed":
            if precision == "fixed":
                return art.graph
            if art.reference is None:
                raise BackendError(f"{self.path or 'the artifact'} has no float reference "
                                   "graph to run at precision 'float'")
            return art.reference
        if precision == "fixed":
            raise BackendError(f"{self.path or 'the artifact'} holds a float graph (target "
                               f"{art.target!r}); it runs at precision 'float'")
        return art.graph

    @abstractmethod
    def run(self, graph: str | Graph, x: np.ndarray, timesteps: int) -> dict[str, np.ndarray]:
        """Per-step records of every neuron layer for one batch: spikes of each spiking layer,
        v of each non-spiking one (the readout), shaped as `timing` says.

        `graph` is a precision of the bound artifact ("fixed" or "float") or a Graph.
        `x` is `[batch, *input_shape]` (the same frame every step) or `[T, batch, ...]`."""


_REGISTRY: dict[str, type[Backend]] = {}
_LOADED = False


def register(cls: type[Backend]) -> type[Backend]:
    """Class decorator: add a backend to the registry after checking its declarations."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise BackendError(f"{cls.__qualname__}: name must be an identifier, got {name!r}")
    if name in _REGISTRY:
        raise BackendError(f"backend {name!r} is already registered (by "
                           f"{_REGISTRY[name].__module__}.{_REGISTRY[name].__qualname__}); "
                           "a backend name is registered once")
    missing = [a for a in ("description", "timing", "precisions", "labels")
               if not hasattr(cls, a)]
    if missing:
        raise BackendError(f"backend {name!r} does not declare {', '.join(missing)}")
    if cls.timing not in TIMINGS:
        raise BackendError(f"backend {name!r}: timing {cls.timing!r}; expected one of "
                           f"{', '.join(TIMINGS)}")
    bad = [p for p in cls.precisions if p not in PRECISIONS] or \
        [p for p in cls.precisions if p not in cls.labels]
    if not cls.precisions or bad:
        raise BackendError(f"backend {name!r}: precisions {cls.precisions!r}; expected some "
                           f"of {', '.join(PRECISIONS)}, each with a label")
    size = cls.check_batch_size
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 1):
        raise BackendError(f"backend {name!r}: check_batch_size {size!r}; expected None or "
                           "an integer >= 1")
    if cls.float_rung is not None and "float" not in cls.precisions:
        raise BackendError(f"backend {name!r} declares the rung {cls.float_rung!r} but does "
                           "not run precision 'float'")
    _REGISTRY[name] = cls
    return cls


def _load_builtin() -> None:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        for module in BUILTIN:
            importlib.import_module(module)


def backends() -> dict[str, type[Backend]]:
    """Every registered backend by name, built-in ones first."""
    _load_builtin()
    return dict(_REGISTRY)


def get_backend(name: str) -> type[Backend]:
    """The backend registered as `name`; an unknown name is an error listing the others."""
    registered = backends()
    if name not in registered:
        raise BackendError(f"unknown backend {name!r}; registered: "
                           f"{', '.join(registered)}")
    return registered[name]


def create_backend(name: str, artifact: Artifact | None = None,
                   path: str | os.PathLike[str] | None = None, **options: Any) -> Backend:
    """`get_backend(name)` bound to an artifact (and its path) and options."""
    return get_backend(name)(artifact, path, **options)
