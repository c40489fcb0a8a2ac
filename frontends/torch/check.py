"""Compare a traced graph with the torch model it came from: spikes per layer, every step.

This is the first rung of the equivalence ladder. Both sides run in float64 (the model on a
deep copy), so what is compared is the tracer's reading of the model's semantics, not float32
rounding at threshold ties.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from snnc.backends.refsim import simulate
from snnc.compare import CompileCheck, compare_spikes
from snnc.errors import SimulationInputError
from snnc.frontends.torch import layout
from snnc.frontends.torch.tracer import TraceResult, reset_states
from snnc.ir import Input, Neuron


def run_torch(model: nn.Module, inputs: np.ndarray, timesteps: int, step_mode: str,
              input_lead: layout.Lead, frame_ndim: int, modules: dict[str, str],
              dtype: torch.dtype = torch.float64, time_last: frozenset[str] = frozenset(),
              loops_inside: bool = False) -> tuple[dict[str, np.ndarray], list]:
    """Run the model on a deep copy in `dtype` and record named modules' outputs.

    inputs: `[batch, *shape]` (the same frame every step) or `[T, batch, *shape]`, where
    `frame_ndim` = len(shape) + 1. A model traced from a time-last input (`input_lead`
    TIME_LAST) is called once on `[batch, *shape, T]`. modules: key -> module path; the keys
    in `time_last` name modules that return `[batch, ..., T]`. Returns each recording as
    `[T, batch, ...]` and the model's per-call outputs. A model that `loops_inside` (runs its
    T steps in one call, passing neuron state) is called once on the frame or the sequence.
    """
    net = copy.deepcopy(model).to(dtype).eval()
    casts = [m.register_forward_pre_hook(_cast_inputs)
             for m in net.modules() if next(m.parameters(recurse=False), None) is not None]
    by_path = dict(net.named_modules())
    recorded: dict[str, list[torch.Tensor]] = {key: [] for key in modules}
    hooks = [by_path[path].register_forward_hook(
        lambda m, a, out, key=key: recorded[key].append(
            (out[0] if isinstance(out, tuple | list) else out).detach()))
        for key, path in modules.items()]
    x = torch.as_tensor(np.asarray(inputs), dtype=dtype)
    is_sequence = x.ndim == frame_ndim + 1
    outputs = []
    try:
        reset_states(net)
        with torch.no_grad():
            if loops_inside:
                outputs.append(net(x))
            elif input_lead == layout.TIME_LAST:
                seq = x if is_sequence else x.expand(timesteps, *x.shape)
                outputs.append(net(seq.movedim(0, -1)))
            elif step_mode == "single":
                for t in range(timesteps):
                    outputs.append(net(x[t] if is_sequence else x))
            elif input_lead == layout.SEQ:
                outputs.append(net(x if is_sequence else x.expand(timesteps, *x.shape)))
            elif is_sequence:
                raise SimulationInputError("this model takes one frame per sample [batch, ...] "
                                           "and repeats it over time itself; pass frames")
            else:
                outputs.append(net(x))
    finally:
        for h in hooks + casts:
            h.remove()
        reset_states(net)
    one = step_mode == "multi"  # one recording per call: the whole sequence
    spikes = {key: (outs[0] if one else torch.stack(outs)).cpu().numpy()
              for key, outs in recorded.items()}
    for key in time_last & spikes.keys():
        spikes[key] = np.moveaxis(spikes[key], -1, 0)
    return spikes, outputs


def _cast_inputs(module: nn.Module, args: tuple) -> tuple:
    """Feed a layer its own dtype: some neurons emit float32 spikes whatever their input
    (snnTorch's `(x > 0).float()`); 0/1 casts exactly, so float64 runs stay float64."""
    dtype = next(module.parameters(recurse=False)).dtype
    return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                 for a in args)


def check_trace(model: nn.Module, result: TraceResult, inputs: np.ndarray,
                timesteps: int) -> CompileCheck:
    """Run the torch model and the traced graph on `inputs`; compare every neuron layer."""
    graph = result.graph
    (input_node,) = (n for n in graph if isinstance(n, Input))
    torch_spikes, outputs = run_torch(model, inputs, timesteps, result.step_mode,
                                      result.input_lead, len(input_node.shape) + 1,
                                      result.neuron_modules,
                                      time_last=result.time_last_neurons,
                                      loops_inside=result.loops_inside)
    sim = simulate(graph, inputs, timesteps)
    report = CompileCheck(samples=int(np.asarray(inputs).shape[-len(input_node.shape) - 1]),
                        timesteps=timesteps)
    for name in result.neuron_modules:
        report.layers.append(compare_spikes(name, torch_spikes[name], sim.spikes[name]))
    mode = "multi" if result.loops_inside else result.step_mode  # one call per sample
    for read, value in zip(result.outputs, _torch_finals(outputs, mode), strict=False):
        if not read.decoded:
            continue  # not a graph output (a membrane beside spikes, an undecoded output)
        node = graph[read.name]
        final = sim.spikes[read.name].mean(axis=0) if isinstance(node, Neuron) and node.spiking \
            else sim.readout[read.name]
        if read.time_last:
            value = np.moveaxis(value, -1, 0)
        if value.ndim == final.ndim + 1:  # a multi-step model returning the sequence
            value = value.mean(axis=0)
        if value.shape == final.shape:
            diff = np.abs(value - read.scale * final)
            report.output_max_abs_diff[read.name] = float(np.max(diff))
    return report


def _torch_finals(outputs: list, step_mode: str) -> list[np.ndarray]:
    """The model's answer per output, averaged over time as the graph's readout does."""
    per_call = [o if isinstance(o, tuple | list) else (o,) for o in outputs]
    finals = []
    for k in range(len(per_call[0])):
        if step_mode == "single":
            finals.append(torch.stack([c[k] for c in per_call]).mean(0).cpu().numpy())
        else:
            finals.append(per_call[0][k].cpu().numpy())
    return finals
