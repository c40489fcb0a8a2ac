"""`snnc compile`: from a checkpoint to an artifact.

`compile_checkpoint` loads the model and its weights, traces it (`snnc.frontends.torch`),
checks the trace against torch spike for spike, runs the passes for the target
(`snnc.tools.pass_runner.compile_graph`: folding, then quantization for a chip) and returns
the artifact: the graph, its folded float reference, metadata and golden vectors. Core
mapping and the cost model are not compile steps: `snnc check` and `snnc inspect` work them
out from the artifact.

torch is imported only inside `compile_checkpoint`, so that this module loads without it:
`snnc inspect --cost-data` reads its inputs through `check_inputs` in the Lava environment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snnc.artifact import Artifact
from snnc.errors import SnncError
from snnc.inputs import sample_inputs

log = logging.getLogger(__name__)


class TraceMismatchError(SnncError):
    """The traced graph does not spike like the torch model."""


@dataclass
class CompileResult:
    artifact: Artifact
    check: Any  # snnc.compare.CompileCheck
    step_mode: str
    passes: list = field(default_factory=list)  # snnc.tools.pass_runner.PassRecord per pass
    trace_text: str = ""                         # the IR straight from the frontend


def float32_valued(graph):
    """`graph` with its float64 arrays rounded to float32 values (still float64 arrays): the
    float reference an artifact keeps, at the precision the checkpoint was trained and runs
    in. The folds compute in float64; rounding their result once keeps the reference within
    a float32 ulp of the model's own float32 arithmetic, and lets the artifact store it in
    half the bytes (snnc/artifact.py). Quantization reads the unrounded graph."""
    from snnc.ir import Graph

    def rounded(node):
        changes = {k: v.astype(np.float32).astype(np.float64) for k, v in node.params().items()
                   if isinstance(v, np.ndarray) and v.dtype == np.float64}
        return node.replace(**changes) if changes else node

    return Graph.build([rounded(n) for n in graph], graph.outputs)


def check_inputs(source: str, input_shape: tuple[int, ...], samples: int,
                 seed: int = 0, *, option: str = "--check-data",
                 timesteps: int | None = None) -> np.ndarray:
    """Inputs for the trace check (and the cost estimates): 'random', 'digits' or a .npy
    file, read and validated by `snnc.inputs.sample_inputs` (the one reader every verb uses)."""
    return sample_inputs(source, tuple(input_shape), samples, option=option,
                         timesteps=timesteps, seed=seed)


def compile_checkpoint(model_spec: str, weights: str | Path, timesteps: int,
                       input_shape: tuple[int, ...], *, model_kwargs: str | dict | None = None,
                       step_mode: str | None = None, check_data: str = "random",
                       check_samples: int = 8, allow_mismatch: bool = False,
                       target: str = "loihi2", threshold_folding: bool = False,
                       debug_passes: bool = False, calibrate: int = 0,
                       input_layout: str = "frame", decode: str = "auto") -> CompileResult:
    """Load the user's model and checkpoint, trace it, check the trace against torch, then
    run the passes for `target` (folding, and quantization for a fixed-point target).
    `input_layout` (frame, TN or NT) is how the model takes its input; the trace check feeds
    a sequence model random sequences (or the --check-data file's [T, N, ...] arrays)."""
    from snnc.targets import get_target

    chip = get_target(target)
    import torch

    from snnc.frontends.torch import trace_model
    from snnc.frontends.torch.check import check_trace
    from snnc.frontends.torch.checkpoint import (
        apply_state_dict,
        file_sha256,
        load_model,
        load_state_dict,
        user_code_failure,
    )

    model = load_model(model_spec, model_kwargs)
    apply_state_dict(model, load_state_dict(weights), str(weights))
    from snnc.frontends.torch.layout import INPUT_LAYOUTS

    if input_layout not in INPUT_LAYOUTS:
        raise SnncError(f"--input-layout {input_layout!r}: expected one of "
                        f"{', '.join(INPUT_LAYOUTS)}")
    example = torch.zeros({"frame": (2, *input_shape), "TN": (timesteps, 2, *input_shape),
                           "NT": (2, *input_shape, timesteps)}[input_layout])
    try:  # the model's own code runs in both (forward, converters)
        result = trace_model(model, example, timesteps, step_mode=step_mode,
                             input_shape=tuple(input_shape), input_layout=input_layout,
                             decode=decode)
        if check_data == "random" and input_layout != "frame":  # a sequence a sample
            inputs = np.random.default_rng(0).random((timesteps, check_samples, *input_shape))
        else:
            inputs = check_inputs(check_data, tuple(input_shape), check_samples,
                                  timesteps=timesteps)
        report = check_trace(model, result, inputs, timesteps)
    except SystemExit as err:
        raise SnncError(f"model {model_spec!r}: running it {user_code_failure(err)}") from err
    log.info("trace check:\n%s", report.table())
    if report.total_mismatches:
        bad = [f"{a.name}: {a.mismatches}" for a in report.layers if a.mismatches]
        first = next(a for a in report.layers if a.mismatches)
        message = (f"the traced graph spikes differently from the torch model: "
                   f"{report.total_mismatches} mismatches ({', '.join(bad)}); first in "
                   f"{first.name} at sample {first.first[0]}, step {first.first[1]}, neuron "
                   f"{first.first[2]} (torch {first.first[3]:g}, graph {first.first[4]:g})")
        if not allow_mismatch:
            raise TraceMismatchError(message + "; --allow-mismatch writes the artifact anyway")
        log.warning("%s", message)
    meta = {
        "timesteps": timesteps,
        "step_mode": result.step_mode,
        "input_shape": list(input_shape),
        "input_layout": input_layout,
        "decode": decode,
        "model": model_spec,
        "model_kwargs": model_kwargs if isinstance(model_kwargs, dict) else
        (model_kwargs or "{}"),
        "weights": Path(weights).name,
        "trace_check": _check_meta(report, check_data),
    }
    artifact, compiled = _passes_and_artifact(
        result.graph, chip, meta, source_hash=file_sha256(weights), inputs=inputs,
        timesteps=timesteps, threshold_folding=threshold_folding, debug=debug_passes,
        calibration=check_inputs(check_data, tuple(input_shape), calibrate,
                                 timesteps=timesteps) if calibrate else None,
        calibrate=calibrate)
    return CompileResult(artifact, report, result.step_mode, compiled.records,
                         result.graph.text())


def _check_meta(report, data: str, **extra) -> dict:
    """The compile check's record in the artifact's metadata (the `trace` rung reads it)."""
    return {"data": data, **extra, "samples": report.samples,
            "total_mismatches": report.total_mismatches,
            "layers": {a.name: a.mismatches for a in report.layers}}


def _passes_and_artifact(graph, chip, meta: dict, *, source_hash: str, inputs: np.ndarray,
                         timesteps: int, threshold_folding: bool, debug: bool,
                         calibration: np.ndarray | None, calibrate: int):
    """What every frontend's compile ends with: the passes for `chip` on the checked float
    graph, their log and the quantization in the metadata, and the artifact (the float
    reference rounded to float32 values, golden vectors on the check's inputs). Returns
    (artifact, the pass runner's result)."""
    from snnc.tools.golden import make_golden
    from snnc.tools.pass_runner import compile_graph

    compiled = compile_graph(graph, chip, timesteps=timesteps,
                             threshold_folding=threshold_folding, debug=debug,
                             calibration=calibration)
    meta = {**meta,
            "passes": [{"name": r.name, "changed": r.changed, "notes": r.notes}
                       for r in compiled.records],
            "quantization": {name: {k: v for k, v in vars(q).items() if k != "name"}
                             for name, q in compiled.layers.items()},
            "calibration_samples": calibrate}
    reference = float32_valued(compiled.reference) if chip.quantized else None
    artifact = Artifact(compiled.graph, target=chip.name, source_hash=source_hash,
                        reference=reference, meta=meta,
                        golden=make_golden(compiled.graph, inputs, timesteps))
    return artifact, compiled


def compile_nir(path: str | Path, timesteps: int, dt: float, *,
                input_shape: tuple[int, ...] | None = None, check_data: str = "random",
                check_samples: int = 8, allow_mismatch: bool = False, target: str = "loihi2",
                threshold_folding: bool = False, debug_passes: bool = False,
                calibrate: int = 0, decode: str = "auto",
                check_sizes: Callable[[tuple[int, ...]], None] | None = None) -> CompileResult:
    """Compile a NIR graph file (snnc.frontends.nir): discretise it with step `dt`, check the
    IR against the file's own equations run directly (forward Euler, `euler.check`: spikes
    equal at every layer and step, readouts within 1e-9), then the same passes, metadata
    and golden vectors as `compile_checkpoint`. `check_sizes(input_shape)` runs once the
    file's input shape is known, before any simulation."""
    import hashlib

    from snnc.frontends.nir import load_nir
    from snnc.frontends.nir.euler import check
    from snnc.targets import get_target

    chip = get_target(target)
    loaded = load_nir(path, dt, input_shape)
    shape = tuple(loaded.graph[loaded.graph.inputs[0]].shape)
    if check_sizes is not None:
        check_sizes(shape)
    inputs = check_inputs(check_data, shape, check_samples, timesteps=timesteps)
    report = check(loaded.graph, loaded.flat, inputs, timesteps, dt)
    log.info("NIR check:\n%s", report.table())
    if report.total_mismatches:
        bad = [f"{a.name}: {a.mismatches}" for a in report.layers if a.mismatches]
        message = (f"the IR differs from the NIR file's own equations (forward Euler, dt = "
                   f"{dt:g}): {report.total_mismatches} mismatches ({', '.join(bad)})")
        if not allow_mismatch:
            raise TraceMismatchError(message + "; --allow-mismatch writes the artifact anyway")
        log.warning("%s", message)
    meta = {
        "timesteps": timesteps,
        "input_shape": list(shape),
        "input_layout": "frame",
        "decode": decode,
        "source": "nir",
        "model": Path(path).name,
        "dt": dt,
        "nir_version": {"file": loaded.file.version, "reader": _nir_version()},
        "trace_check": _check_meta(report, check_data,
                                   against="the NIR file's equations (forward Euler)"),
    }
    artifact, compiled = _passes_and_artifact(
        loaded.graph, chip, meta,
        source_hash=hashlib.sha256(Path(path).read_bytes()).hexdigest(), inputs=inputs,
        timesteps=timesteps, threshold_folding=threshold_folding, debug=debug_passes,
        calibration=check_inputs(check_data, shape, calibrate, timesteps=timesteps)
        if calibrate else None, calibrate=calibrate)
    return CompileResult(artifact, report, "multi", compiled.records, loaded.graph.text())


def _nir_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nir")
    except PackageNotFoundError:
        return ""
