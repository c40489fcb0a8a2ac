"""The torch frontend: trace trained PyTorch / spikingjelly SNNs into snnc IR graphs.

    from snnc.frontends.torch import trace
    graph = trace(model, example_input, timesteps=4)

Importing this module registers the built-in converters (torch.nn, and spikingjelly 2.0 when
it is installed). Users add their own module classes with the `converter` decorator.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from snnc.frontends.torch import converters as _builtin  # noqa: F401 - registers converters
from snnc.frontends.torch import snntorch as _snntorch  # noqa: F401 - registers snnTorch's
from snnc.frontends.torch.context import ConversionError, ConvertContext
from snnc.frontends.torch.registry import CONVERTERS, ConverterFn, converter, supported_types
from snnc.frontends.torch.tracer import STEP_MODES, TraceResult, reset_states, trace_model
from snnc.ir import Graph


def trace(model: nn.Module, example_input: torch.Tensor, timesteps: int, *,
          step_mode: str | None = None, input_shape: tuple[int, ...] | None = None,
          converters: Mapping[type, ConverterFn] | None = None,
          input_layout: str | None = None, decode: str = "auto") -> Graph:
    """Trace `model` into a float IR graph.

    example_input: `[N, *input_shape]` (one frame per sample: single-step models, or
        multi-step models that repeat the frame over time themselves) or
        `[T, N, *input_shape]` (a sequence, for multi-step models). Only its shape and a few
        of its values matter.
    timesteps: T, the number of steps the model runs.
    step_mode: "single" (called once per step, stateful neurons) or "multi" (neurons loop
        over T inside); detected from what the neurons receive, and checked if given.
    input_shape: per-sample input shape, needed when the example's first axis could be
        either time or batch.
    converters: extra converters for this call, {module class: fn(ctx, module, x) -> name}.
    input_layout: how `example_input` holds time: "frame" `[N, *input_shape]`, "TN"
        `[T, N, *input_shape]` or "NT" `[N, *input_shape, T]` (time last: followed through
        modules with user converters, reshapes that keep N first and T last, permutes,
        per-step loops, and sum/mean over time at the output; see the README). Default:
        detected from the shape where unambiguous.
    decode: which outputs are the answer: "count" (spiking outputs, decoded by spike count,
        argmax taking the first maximum), "potential" (non-spiking outputs, by value), or
        "auto" (count when the model returns spikes). A neuron's membrane returned beside its
        spikes (snnTorch's `spk, mem`) is never an output.

    Neuron nodes are named after the modules' qualified names (`layer2.0.sn1`).
    """
    return trace_model(model, example_input, timesteps, step_mode=step_mode,
                       input_shape=input_shape, converters=converters,
                       input_layout=input_layout, decode=decode).graph


__all__ = [
    "CONVERTERS",
    "STEP_MODES",
    "ConversionError",
    "ConvertContext",
    "TraceResult",
    "converter",
    "reset_states",
    "supported_types",
    "trace",
    "trace_model",
]
