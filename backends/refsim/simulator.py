"""The simulation loop: one place that walks the graph and dispatches to node rules."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snnc.analyses.timing import delay, is_synapse, schedule
from snnc.backends.refsim.fixed_ops import FIXED_RULES
from snnc.backends.refsim.float_ops import FLOAT_RULES, Context
from snnc.errors import SimulationInputError, UnsupportedNodeError
from snnc.inputs import batch_feeds
from snnc.ir import FxPartialSum, Graph, Neuron

#: One dispatch table for every node type: float rules and integer (fixed-point) rules.
RULES = {**FLOAT_RULES, **FIXED_RULES}
#: The engines `simulate` runs (see its docstring).
ENGINES = ("numpy", "torch", "int")


@dataclass(frozen=True)
class _Run:
    """What the loop needs of an engine: its rules, its delay line, and a value's nonzero
    entries as a numpy bool array (spikes, relay messages)."""

    rules: Mapping[type, Callable]
    delay: Callable[[Any, int, int], Any]
    nonzero: Callable[[Any], np.ndarray]


_NUMPY = _Run(RULES, delay, lambda out: out != 0)


@dataclass
class SimResult:
    """What a simulation produced.

    spikes:  spiking neuron name -> bool array `[T, batch, *shape]`, in the trained model's
             timing (with hardware timing: each layer's window [offset, offset + T))
    readout: readout name -> its final value `[batch, *shape]` (time-averaged if `mean`)
    states:  neuron name -> state variable -> `[steps, batch, *shape]`, after each step's
             reset (filled only with `record_states`: True for every neuron, or the names
             of those to keep; every simulated step)
    raw_spikes: with hardware timing, every simulated step `[T + latency, batch, ...]`
    offsets: with hardware timing, each node's first valid step (its depth)
    messages: relay layer (FxPartialSum of a split fan-in) name -> bool `[T, batch, *shape]`,
             where it sends a nonzero payload (the cost model's messages), windowed as spikes
    """

    timesteps: int
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    readout: dict[str, np.ndarray] = field(default_factory=dict)
    states: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    raw_spikes: dict[str, np.ndarray] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    messages: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def sent(self) -> dict[str, np.ndarray]:
        """What every layer sends, in the trained model's timing: spikes, and a split fan-in's
        relays' nonzero payloads (the cost model's input)."""
        return {**self.spikes, **self.messages}


def simulate(
    graph: Graph,
    inputs: np.ndarray | Mapping[str, np.ndarray],
    timesteps: int,
    *,
    record_states: bool | Collection[str] = False,
    dtype: type[np.floating] = np.float64,
    timing: str = "zero",
    engine: str = "numpy",
    device: str | Any | None = None,
) -> SimResult:
    """Run a graph for `timesteps` steps on a batch.

    `inputs` is one array for a single-input graph, or a mapping from input name to array.
    Each array is `[batch, *shape]` (the same frame every step: direct encoding) or
    `[T, batch, *shape]` (one frame per step; zeros after T with hardware timing).
    timing: "zero" is the trained model's timing (no delay per hop); "hardware" is the
    chip's pipeline (one step per synaptic hop, branches balanced, see timing.py), run for
    T + latency steps with each layer read in its shifted window.
    engine: "numpy" (the definition), "torch" (torch's CPU convolution for the integer
    synapses, checked exact; see torch_engine.py) or "int" (fixed-point graphs only: torch
    integer tensors end to end, int8 products exact by construction; see int_engine.py);
    all give identical integers.
    device: the int engine's torch device ("cpu", the default, or "cuda"); an error if CUDA
    is asked for and absent, or a device for another engine.
    """
    if engine not in ENGINES:
        raise SimulationInputError(f"engine must be one of {', '.join(map(repr, ENGINES))}, "
                                   f"got {engine!r}")
    if device is not None and engine != "int" and str(device) != "cpu":
        raise SimulationInputError(f"device {str(device)!r} needs engine 'int'; the {engine} "
                                   "engine runs on the CPU")
    if timing not in ("zero", "hardware"):
        raise SimulationInputError(f"timing must be 'zero' or 'hardware', got {timing!r}")
    if not isinstance(timesteps, int | np.integer) or isinstance(timesteps, bool) or timesteps < 1:
        raise SimulationInputError(f"timesteps must be a positive integer, got {timesteps!r}")
    timesteps = int(timesteps)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise SimulationInputError(f"dtype must be a float type, got {dtype}")
    for node in graph:
        if type(node) not in RULES:
            raise UnsupportedNodeError(node.name, node.op, "the reference simulator",
                                       [t.__name__ for t in RULES])
    feeds = batch_feeds(graph, inputs, timesteps, dtype)
    if not isinstance(record_states, bool):
        record_states = frozenset(record_states)
    ctx = Context(timesteps, dtype, record_states, feeds)
    run = _NUMPY
    if engine == "torch":
        from snnc.backends.refsim import torch_engine

        ctx.int_conv2d = torch_engine.conv2d
    elif engine == "int":
        run, ctx.device = _int_engine(graph, device)
    plan = None
    if timing == "hardware":
        plan = schedule(graph)
        ctx.timesteps, ctx.window, ctx.start = timesteps + plan.latency, timesteps, plan.depth
        ctx.feeds = {k: delay(v, 0, ctx.timesteps) if v.shape[0] > 1 else v
                     for k, v in feeds.items()}
    readers = {name: len(r) for name, r in graph.consumers().items()}
    result = SimResult(timesteps, offsets=dict(plan.depth) if plan else {})
    values: dict[str, np.ndarray] = {}
    for name, node in graph.nodes.items():
        ins = [values[i] for i in node.inputs]
        if plan is not None:
            ins = [run.delay(v, plan.delays.get((i, name), 0), ctx.timesteps)
                   for i, v in zip(node.inputs, ins, strict=True)]
        out = run.rules[type(node)](node, ins, ctx)
        if plan is not None and is_synapse(node):
            out = run.delay(out, 1, ctx.timesteps)  # delivered one step after it is computed
        if isinstance(node, Neuron) and node.spiking:
            spikes = run.nonzero(out)
            if plan is None:
                result.spikes[name] = spikes
            else:
                result.raw_spikes[name] = spikes
                result.spikes[name] = spikes[plan.depth[name]:plan.depth[name] + timesteps]
        if isinstance(node, FxPartialSum):
            sent = np.broadcast_to(run.nonzero(out), (ctx.timesteps, *out.shape[1:]))
            result.messages[name] = sent if plan is None else \
                sent[plan.depth[name]:plan.depth[name] + timesteps]
        for edge in node.inputs:
            readers[edge] -= 1
            if readers[edge] == 0:
                del values[edge]  # free what no later node reads
        if readers[name]:
            values[name] = out
    result.readout = ctx.readout
    result.states = ctx.states
    return result


def _int_engine(graph: Graph, device) -> tuple[_Run, Any]:
    """The int engine's rules and its device (torch is imported only here)."""
    try:
        from snnc.backends.refsim import int_engine
    except ImportError as e:  # the Lava environment has no torch
        raise SimulationInputError(f"engine 'int' needs torch, which this environment lacks "
                                   f"({e}); use engine 'numpy'") from None

    for node in graph:
        if type(node) not in int_engine.INT_RULES:
            raise SimulationInputError(
                f"engine 'int' runs fixed-point graphs; node {node.name!r} ({node.op}) is a "
                "float node: use engine 'numpy' or 'torch' for float graphs")
    return (_Run(int_engine.INT_RULES, int_engine.delay, int_engine.host_bool),
            int_engine.device_of(device))


def hardware_record(graph: Graph, inputs: np.ndarray | Mapping[str, np.ndarray],
                    timesteps: int, *, engine: str = "numpy", device: str | Any | None = None
                    ) -> dict[str, np.ndarray]:
    """The hardware-timed run at every step, pipeline fill included: `[T + latency, batch,
    ...]` spikes per spiking layer and v per non-spiking neuron (the readout). This is what
    the Lava backend returns, and what it is compared with. `engine` and `device` are
    simulate's (every engine gives the same integers)."""
    readouts = [n.name for n in graph if isinstance(n, Neuron) and not n.spiking]
    ref = simulate(graph, inputs, timesteps, timing="hardware", record_states=readouts,
                   engine=engine, device=device)
    return {**ref.raw_spikes,
            **{n: s["v"] for n, s in ref.states.items() if n not in ref.raw_spikes}}
