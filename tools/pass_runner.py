"""The pass pipeline: which passes run, in what order, and the runner that checks each.

The runner validates the graph after every pass and logs what each changed. In debug mode
it simulates a fixed seeded batch before the float passes and again after each one, and
stops at the first pass that changed any spike, naming it and the passes before it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from snnc.backends.refsim import simulate
from snnc.compare import diff
from snnc.errors import SnncError
from snnc.ir import Graph, Input
from snnc.passes import PassResult
from snnc.passes.canonicalize import canonicalize
from snnc.passes.fold_batchnorm import fold_batchnorm
from snnc.passes.fold_pooling import fold_pooling
from snnc.passes.fold_thresholds import fold_thresholds
from snnc.passes.quantize import LayerQuant, QuantizeOptions, quantize
from snnc.passes.shortcuts import materialize_shortcuts
from snnc.passes.split_fan_in import split_fan_in
from snnc.targets import Target

log = logging.getLogger(__name__)

PassFn = Callable[[Graph], PassResult]


class PassError(SnncError):
    """A pass failed or, in debug mode, changed the graph's spikes."""


@dataclass
class PassRecord:
    name: str
    changed: bool
    notes: list[str]
    text: str  # the IR after the pass
    report: object = None  # the pass's PassResult.report (quantize: name -> LayerQuant)


@dataclass
class Compiled:
    graph: Graph                 # what the target runs
    reference: Graph             # the folded float graph
    records: list[PassRecord] = field(default_factory=list)
    layers: dict[str, LayerQuant] = field(default_factory=dict)


def float_passes(threshold_folding: bool = False) -> list[tuple[str, PassFn]]:
    """The float passes, in order. Each leaves every spike unchanged."""
    passes: list[tuple[str, PassFn]] = [
        ("canonicalize", canonicalize),                  # drop what no output depends on
    ]
    if threshold_folding:
        passes.append(("fold_thresholds", fold_thresholds))  # BN scale into LIF thresholds
    passes += [
        ("fold_batchnorm", fold_batchnorm),              # BN / tdBN into synapse weights
        ("materialize_shortcuts", materialize_shortcuts),  # raw values into sums -> synapses
        ("fold_pooling", fold_pooling),                  # avg pooling, flatten into synapses
        ("cleanup", canonicalize),                       # drop what folding orphaned
    ]
    return passes


PASS_NAMES = ("canonicalize", "fold_thresholds", "fold_batchnorm", "materialize_shortcuts",
              "fold_pooling", "cleanup", "quantize", "split_fan_in")


def debug_batch(graph: Graph, samples: int = 8, seed: int = 0) -> np.ndarray:
    """The fixed seeded batch debug mode simulates: uniform [0, 1) frames."""
    (node,) = (n for n in graph if isinstance(n, Input))
    return np.random.default_rng(seed).random((samples, *node.shape))


def run_passes(graph: Graph, passes: list[tuple[str, PassFn]], *, debug: bool = False,
               inputs: np.ndarray | None = None, timesteps: int = 4,
               earlier: tuple[str, ...] = ()) -> tuple[Graph, list[PassRecord]]:
    """Run `passes` in order; validate after each; in debug mode compare spikes after each.
    `earlier` names the passes that ran before this call, for the errors."""
    records: list[PassRecord] = []
    if debug:
        inputs = debug_batch(graph) if inputs is None else inputs
        baseline = simulate(graph, inputs, timesteps).spikes
    for name, fn in passes:
        before = ", ".join([*earlier, *(r.name for r in records)]) or "none"
        try:
            result = fn(graph)
            result.graph.validate()
        except SnncError as err:
            raise PassError(f"pass {name} failed (passes before it: {before}): {err}") from err
        for note in result.notes:
            log.info("%s: %s", name, note)
        if debug:
            _compare(name, before, baseline, simulate(result.graph, inputs, timesteps).spikes)
        graph = result.graph
        records.append(PassRecord(name, result.changed, result.notes, graph.text(),
                                  result.report))
    return graph, records


def _compare(name: str, before: str, baseline: dict, spikes: dict) -> None:
    for layer, expected in baseline.items():
        d = diff(spikes.get(layer), expected)
        if d.missing:
            raise PassError(f"pass {name} removed neuron layer {layer!r} "
                            f"(passes before it: {before})")
        if d.mismatches:
            raise PassError(f"pass {name} changed {d.mismatches} spikes in layer {layer!r} "
                            f"(passes before it: {before})")


def compile_graph(graph: Graph, target: Target, *, timesteps: int,
                  threshold_folding: bool = False, debug: bool = False,
                  calibration: np.ndarray | None = None) -> Compiled:
    """Float passes, then quantization for a quantized target, and the split of any
    synapse whose neurons read more inputs than one of its cores accepts."""
    reference, records = run_passes(graph, float_passes(threshold_folding), debug=debug,
                                    timesteps=timesteps)
    if not target.quantized:
        return Compiled(reference, reference, records)
    opts = QuantizeOptions(target=target, timesteps=timesteps)
    if calibration is not None and calibration.size:
        opts.input_max = float(np.abs(calibration).max()) or 1.0
        opts.input_signed = bool(calibration.min() < 0)
    fixed, more = run_passes(reference, [("quantize", partial(quantize, opts=opts))],
                             timesteps=timesteps,
                             earlier=tuple(r.name for r in records))
    earlier = tuple(r.name for r in records + more)
    fixed, split = run_passes(fixed, [("split_fan_in", partial(split_fan_in, target=target))],
                              debug=debug, timesteps=timesteps, earlier=earlier)
    return Compiled(fixed, reference, records + more + split, more[-1].report)
