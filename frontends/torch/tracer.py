"""Trace a torch model into an IR graph by running it once on an example input.

Modules with a converter are leaves: forward hooks see their inputs and outputs and the
converter emits IR nodes. Between leaves, a TorchFunctionMode sees every torch function
applied to a traced tensor (the residual `+`, flatten, view, mean over time, ...); functions
it does not understand are refused with the module they were called from. Running the model
for real (rather than tracing symbolically) gives concrete shapes and lets user code loop,
branch and reshape as it likes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from snnc.errors import SnncError
from snnc.frontends.torch import layout
from snnc.frontends.torch.context import ConversionError, ConvertContext
from snnc.frontends.torch.converters import batch_norm, layout_module
from snnc.frontends.torch.registry import ConverterFn, find_converter, supported_types
from snnc.ir import Add, Flatten, Graph, Input, Neuron, Node, Readout, TensorType

log = logging.getLogger(__name__)

STEP_MODES = ("single", "multi")
#: How the answer is read from the model's outputs: spike counts of a spiking output, or the
#: value of a non-spiking one (a potential); "auto": spikes when the model returns any.
DECODES = ("auto", "count", "potential")
_ADD = {"add", "__add__", "__radd__", "__iadd__", "add_"}
_RELAYOUT = {"flatten", "view", "reshape", "unsqueeze", "squeeze", "repeat", "expand",
             "contiguous", "clone", "detach", "to", "float", "double", "view_as", "reshape_as"}
_TIME_REDUCE = {"mean", "sum"}
_IDENTITY = {"dropout", "feature_alpha_dropout", "alpha_dropout", "identity"}
_SAME = {"contiguous", "clone", "detach", "to", "float", "double"}  # keep every axis
_MOVE_TIME = {"permute", "movedim", "moveaxis", "transpose", "swapaxes", "swapdims"}
_SCALE = {"div", "__truediv__", "true_divide", "mul", "__mul__", "__rmul__"}  # of an output
SUPPORTED_FUNCTIONS = sorted(_ADD | _RELAYOUT | _TIME_REDUCE | _IDENTITY | _MOVE_TIME
                             | {"stack", "unbind"})


@dataclass(frozen=True)
class Traced:
    """What a tensor of the running model means in the IR."""

    name: str
    lead: layout.Lead
    reduced: bool = False  # already averaged or summed over time: only an output may be
    #: what the model's value is in units of the graph's answer (the spike rate of a spiking
    #: output, the readout's value otherwise): `.sum(-1)` of spikes is T, `/ T` after it 1
    scale: float = 1.0
    #: the step of a per-step loop (`x[..., t]`, `x[t]`, a loop passing neuron state)
    step: int | None = None
    #: the neuron state (membrane, current) a stateful module returns beside its spikes,
    #: to be passed back to it at the next step: the module's path
    state: str | None = None


@dataclass(frozen=True)
class OutputRead:
    """How the model's own value for one graph output compares with the graph's answer:
    model value = scale * answer, after moving time to the front when `time_last` (a
    time-last sequence the model returns unreduced)."""

    name: str
    scale: float = 1.0
    time_last: bool = False
    #: the membrane of a spiking neuron (snnTorch's `spk, mem` outputs): not a graph output;
    #: the model is decoded by the spikes it also returns
    membrane: bool = False
    #: whether this output is the graph's answer (see `decode` in trace_model)
    decoded: bool = True


@dataclass
class TraceResult:
    graph: Graph
    step_mode: str
    input_lead: layout.Lead
    neuron_modules: dict[str, str] = field(default_factory=dict)  # IR name -> module path
    #: the model runs all T steps in one call, passing neuron state along (`spk, mem =
    #: lif(cur, mem)` in a loop inside forward); otherwise single-step models are called
    #: once per step
    loops_inside: bool = False
    #: neurons that see time last ([N, ..., T] per call); the others see [N, ...] or [T, N, ...]
    time_last_neurons: frozenset[str] = frozenset()
    outputs: tuple[OutputRead, ...] = ()


class _Tracer:
    def __init__(self, model: nn.Module, timesteps: int, batch: int,
                 converters: Mapping[type, ConverterFn] | None):
        self.model = model
        self.T = timesteps
        self.N = batch
        self.extra = converters
        self.paths = {id(m): name for name, m in model.named_modules()}
        self.nodes: dict[str, Node] = {}
        self.types: dict[str, TensorType] = {}
        self.values: dict[int, Traced] = {}
        self.alive: list[torch.Tensor] = []  # keeps ids unique while tracing
        self.scopes: list[str] = []
        self.scope_modules: list[nn.Module] = []
        self.leaf_depth = 0
        self.pending: list[tuple[nn.Module, str, ConverterFn, Traced, int | None]] = []
        self.loops_inside = False
        self.calls: Counter[str] = Counter()
        self.neuron_leads: dict[str, layout.Lead] = {}
        self.neuron_modules: dict[str, str] = {}
        self.step0: list[tuple[tuple, Traced]] = []  # ops of step 0 of a per-step loop
        #: buffers a per-step loop fills (`out[..., t] = y`): id -> (lead, {step: value})
        self.pure: dict[tuple, Traced] = {}  # (module path, input, lead) -> output
        self.filling: dict[int, tuple[layout.Lead, dict[int, Traced]]] = {}
        self.replayed: Counter[int] = Counter()      # ops of each later step matched so far

    # -- graph building ------------------------------------------------------------------------

    def emit(self, node: Node) -> str:
        if node.name in self.nodes:
            raise ConversionError(f"two IR nodes named {node.name!r}; converters must give "
                                  "each node a unique name (use ctx.child_name)")
        for edge in node.inputs:
            if edge not in self.types:
                raise ConversionError(f"node {node.name!r} reads {edge!r}, which does not exist")
        typed = node.replace(type=node.infer([self.types[e] for e in node.inputs]))
        self.nodes[node.name] = typed
        self.types[node.name] = typed.type
        return node.name

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.nodes:
            k += 1
            name = f"{base}_{k}"
        return name

    def op_name(self, op: str) -> str:
        scope = self.scopes[-1] if self.scopes else ""
        return self.fresh(f"{scope}.{op}" if scope else op)

    def bind(self, tensor: torch.Tensor, traced: Traced) -> None:
        self.values[id(tensor)] = traced
        self.alive.append(tensor)

    def lookup(self, tensor: torch.Tensor, where: str) -> Traced:
        try:
            return self.values[id(tensor)]
        except KeyError:
            if id(tensor) in self.filling:
                missing = sorted(set(range(self.T)) - set(self.filling[id(tensor)][1]))
                raise ConversionError(f"{where} reads a buffer a per-step loop fills before "
                                      f"every step is in (steps {missing} missing)") from None
            raise ConversionError(
                f"{where} received a tensor that does not come from the model input (a "
                "constant or a parameter used directly); snnc traces only dataflow from the "
                "input through supported modules and functions") from None

    # -- module hooks --------------------------------------------------------------------------

    def path(self, module: nn.Module) -> str:
        return self.paths.get(id(module)) or type(module).__name__.lower()

    def pre_hook(self, module: nn.Module, args: tuple) -> None:
        if self.leaf_depth:
            self.leaf_depth += 1
            return
        path = self.path(module)
        conv = find_converter(module, self.extra)
        if conv is None:
            if not pass_through(module):
                raise self.unsupported_module(module, path)
            self.scopes.append(path)
            self.scope_modules.append(module)
            return
        tensors = [a for a in tree_flatten(args)[0] if isinstance(a, torch.Tensor)]
        where = f"module {path!r} ({type(module).__name__})"
        if not tensors:
            raise ConversionError(f"{where} is called without a tensor")
        x = self.lookup(tensors[0], where)
        if x.lead == layout.TIME_LAST and not _reads_time_last(conv):
            raise self.time_last(where)
        self.pending.append((module, path, conv, x, self.state_step(where, path,
                                                                      tensors[1:])))
        self.leaf_depth = 1

    def state_step(self, where: str, path: str, states: list[torch.Tensor]) -> int | None:
        """A stateful module called with its state (`spk, mem = lif(cur, mem)`): the step
        this call is, 0 for a fresh all-zero state, k + 1 for the state it returned at step
        k. None when the module takes only its input."""
        if not states:
            return None
        traced = [self.values.get(id(s)) for s in states]
        if all(t is None for t in traced):
            if any(bool(s.detach().any()) for s in states):
                raise ConversionError(
                    f"{where} is called with a state that is not all zeros and does not come "
                    "from an earlier call of the same module; snnc takes the input as the "
                    "first tensor and, after it, only the state the module returned at the "
                    "previous step (or a fresh zero state)")
            return 0
        steps = {t.step for t in traced if t is not None}
        if None in traced or any(t.state != path for t in traced) or len(steps) != 1 \
                or None in steps:
            raise ConversionError(
                f"{where} is called with extra tensors that are not the state it returned at "
                "the previous step; converted modules take their input first and, after it, "
                "only their own state from the previous step")
        return steps.pop() + 1

    def post_hook(self, module: nn.Module, args: tuple, out: Any) -> None:
        if self.leaf_depth > 1:
            self.leaf_depth -= 1
            return
        if self.leaf_depth == 0:
            self.scopes.pop()
            self.scope_modules.pop()
            return
        self.leaf_depth = 0
        module, path, conv, x, state_step = self.pending.pop()
        where = f"module {path!r} ({type(module).__name__})"
        outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
        if not outs:
            raise ConversionError(f"{where} returned {type(out).__name__}; expected a tensor "
                                  "(or spikes followed by the neuron's state)")
        step = x.step
        if state_step is not None:  # a loop passing state: this call's step
            if step is not None and step != state_step:
                raise ConversionError(f"{where} is called at step {state_step} of its state "
                                      f"with the input of step {step}")
            step, self.loops_inside = state_step, True
            x = replace(x, step=step)
        key = ("module", path, x.name, tuple(outs[0].shape))
        if step:  # a later step: the module of step 0
            self.replay(where, key, outs[0], step)
            self.bind_states(outs, path)
            return
        if (path, x.name, x.lead) in self.pure and len(outs) == 1:
            # the same stateless module on the same value again (a shape probe, a loop over
            # steps of one frame): the same value
            self.bind(outs[0], replace(self.pure[(path, x.name, x.lead)], step=step))
            return
        self.convert_module(module, path, conv, x, args, outs, where)
        if len(outs) == 1 and id(outs[0]) in self.values \
                and not isinstance(self.nodes[self.values[id(outs[0])].name], Neuron):
            self.pure[(path, x.name, x.lead)] = self.values[id(outs[0])]
        if step == 0:
            self.record(key, outs[0])
            self.bind_states(outs, path)

    def bind_states(self, outs: list[torch.Tensor], path: str) -> None:
        """The tensors a neuron module returns after its spikes (snnTorch's mem, syn) are its
        state: only to be passed back to it, stacked, or returned."""
        spikes = self.values[id(outs[0])]
        for o in outs[1:]:
            self.bind(o, replace(spikes, state=path))

    def convert_module(self, module: nn.Module, path: str, conv: ConverterFn, x: Traced,
                       args: tuple, outs: list[torch.Tensor], where: str) -> None:
        if x.reduced:
            raise ConversionError(f"{where} reads a value already averaged over time; "
                                  "a time reduction may only produce the model output")
        if x.state is not None:
            raise self.membrane(where, x)
        out = outs[0]
        if conv is layout_module:  # Flatten, Identity, Dropout: a reshape or nothing
            self.bind(out, self.relayout(where, x, args[0], out, type(module).__name__,
                                         name=self.fresh(path)))
            return
        self.calls[path] += 1
        name = path if self.calls[path] == 1 else f"{path}:{self.calls[path] - 1}"
        ctx = ConvertContext(name, self.T, self.types, self.emit, self.convert_child)
        out_name = conv(ctx, module, x.name)
        self.check_output(where, out_name, x.lead, out)
        node = self.nodes[out_name]
        if isinstance(node, Neuron) and out_name != x.name:
            if self.calls[path] > 1:
                raise ConversionError(f"{where} is called more than once per step; a stateful "
                                      "neuron module must be used once")
            self.neuron_leads[out_name] = x.lead
            self.neuron_modules[out_name] = path
        elif len(outs) > 1:
            raise ConversionError(f"{where} returned {len(outs)} tensors; only a neuron "
                                  "module may return its state beside its output")
        self.bind(out, Traced(out_name, x.lead, step=x.step))
        self.bind_states(outs, path)

    def membrane(self, where: str, t: Traced) -> ConversionError:
        return ConversionError(
            f"{where} reads the state (membrane) of neuron module {t.state!r}; the chip sends "
            "only spikes between layers: pass the state back to its own module, or return it "
            "from the model beside the spikes (the answer is then decoded by spike count)")

    def check_output(self, where: str, out_name: str, lead: layout.Lead,
                     out: torch.Tensor) -> None:
        features = layout.split(tuple(out.shape), lead, self.T, self.N)
        expected = self.types[out_name].shape
        if features != expected:
            raise ConversionError(
                f"{where}: its converter describes an output of per-sample shape {expected}, "
                f"but the module returned a tensor of shape {tuple(out.shape)} (layout "
                f"{','.join(lead)}); the converter misreads the module")

    def convert_child(self, child: nn.Module, x: str, name: str) -> str:
        conv = find_converter(child, self.extra)
        if conv is None and isinstance(child, nn.Sequential):  # e.g. an empty one: identity
            for key, grandchild in child.named_children():
                x = self.convert_child(grandchild, x, f"{name}.{key}")
            return x
        if conv is None:
            raise self.unsupported_module(child, name)
        return conv(ConvertContext(name, self.T, self.types, self.emit, self.convert_child),
                    child, x)

    def unsupported_module(self, module: nn.Module, path: str) -> ConversionError:
        kind = f"{type(module).__module__}.{type(module).__qualname__}"
        if isinstance(module, nn.MaxPool1d | nn.MaxPool2d | nn.MaxPool3d):
            return ConversionError(
                f"module {path!r} ({kind}): max pooling over spikes has no exact lowering on "
                "Loihi; retrain with average pooling (nn.AvgPool2d) or a strided convolution")
        return ConversionError(
            f"module {path!r} ({kind}) is not supported. Supported module types: "
            f"{', '.join(supported_types(self.extra))}. Register a converter for {kind} "
            "(snnc.frontends.torch.converter) to add it")

    # -- functions between modules -------------------------------------------------------------

    def on_function(self, func: Any, args: tuple, kwargs: dict, out: Any) -> Any:
        flat = tree_flatten((args, kwargs))[0]
        traced = [(a, self.values[id(a)]) for a in flat
                  if isinstance(a, torch.Tensor) and id(a) in self.values]
        if not traced:
            return out  # work on tensors that do not carry the model's dataflow
        fname = getattr(func, "__name__", repr(func))
        scope = self.scopes[-1] if self.scopes else "<model>"
        where = f"torch function {fname!r} in module {scope!r}"
        states = [t for _, t in traced if t.state is not None]
        if states and fname != "stack":
            if not any(isinstance(o, torch.Tensor) for o in tree_flatten(out)[0]):
                return out  # shape and size queries
            raise self.membrane(where, states[0])
        if any(t.lead == layout.TIME_LAST for _, t in traced):
            self.from_time_last(where, func, traced, args, kwargs, out)
            return out
        if len(traced) == 1 and traced[0][1].lead == layout.SEQ and fname in ("__getitem__",
                                                                               "unbind"):
            self.step_of_sequence(where, fname, traced[0], args, kwargs, out)
            return out
        if fname == "stack" and isinstance(out, torch.Tensor):
            self.bind(out, self.stack(where, traced, args, kwargs, out))
            return out
        if fname == "__setitem__" and len(args) == 3:
            self.assign(where, args)
            return out
        if not isinstance(out, torch.Tensor):
            if fname == "__setitem__" or any(isinstance(o, torch.Tensor)
                                             for o in tree_flatten(out)[0]):
                raise self.refuse_in_leaf() or ConversionError(
                    f"{where} is not supported on traced values")
            return out  # shape and size queries
        if fname in _SCALE and len(traced) == 1 and traced[0][1].reduced:
            self.bind(out, self.rescale(where, fname, traced[0], args))
            return out
        if any(t.reduced for _, t in traced):
            raise ConversionError(f"{where} reads a value already averaged over time; a "
                                  "time reduction may only produce the model output")
        steps = {t.step for _, t in traced}
        if len(steps) > 1:
            raise ConversionError(f"{where} combines values of different steps of a per-step "
                                  "loop over the time-last input; each step must only read "
                                  "its own x[..., t]")
        step = steps.pop()
        key = ("function", fname, tuple(t.name for _, t in traced), tuple(out.shape))
        if step:  # a later step: the function of step 0
            self.replay(where, key, out, step)
            return out
        self.apply_function(where, func, fname, flat, traced, args, kwargs, out)
        if step == 0:
            self.record(key, out)
        return out

    def apply_function(self, where: str, func: Any, fname: str, flat: list, traced: list,
                       args: tuple, kwargs: dict, out: torch.Tensor) -> None:
        if fname in _ADD:
            self.bind(out, self.add(where, flat, traced, kwargs))
        elif fname in _MOVE_TIME and traced[0][1].lead == layout.SEQ and len(traced) == 1 \
                and _permutation(func, args, kwargs, traced[0][0].ndim) == \
                (*range(1, traced[0][0].ndim), 0):  # [T, N, ...] -> [N, ..., T]
            self.bind(out, Traced(traced[0][1].name, layout.TIME_LAST))
        elif fname in _RELAYOUT or fname in _IDENTITY:
            src, t = traced[0]
            if not out.is_floating_point():
                raise ConversionError(f"{where} turns the value into {out.dtype}")
            self.bind(out, self.relayout(where, t, src, out, fname))
        elif fname in _TIME_REDUCE:
            self.bind(out, self.time_reduce(where, fname, traced, args, kwargs))
        else:
            raise self.refuse_in_leaf() or ConversionError(
                f"{where} is not supported on traced values (supported functions: "
                f"{', '.join(SUPPORTED_FUNCTIONS)}); wrap the computation in a module class "
                "and register a converter for it")

    # -- per-step loops over a time-last input ---------------------------------------------------

    def record(self, key: tuple, out: torch.Tensor) -> None:
        """Step 0 of a per-step loop: remember the op, in order, for the later steps."""
        t = replace(self.values[id(out)], step=0)
        self.values[id(out)] = t
        self.step0.append((key, t))

    def replay(self, where: str, key: tuple, out: torch.Tensor, step: int) -> None:
        """A later step of a per-step loop must run step 0's ops in the same order: its
        values are step 0's IR values (the graph runs one step at a time)."""
        pos = self.replayed[step]
        if pos >= len(self.step0) or self.step0[pos][0] != key:
            raise ConversionError(
                f"{where}: step {step} of the per-step loop over the time-last input does not "
                "repeat step 0's modules and functions in order; snnc follows loops whose "
                "every step runs the same computation on its own x[..., t]")
        self.replayed[step] += 1
        self.bind(out, replace(self.step0[pos][1], step=step))

    def stack(self, where: str, traced: list, args: tuple, kwargs: dict,
              out: torch.Tensor) -> Traced:
        """`torch.stack(outs, dim)` of the T per-step values of a loop: a sequence, time
        first (dim 0) or last (dim -1)."""
        values = [t for _, t in traced]
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0) % out.ndim
        if len(values) != self.T or len({t.name for t in values}) != 1 \
                or [t.step for t in values] != list(range(self.T)) \
                or values[0].lead != layout.STEP or dim not in (0, out.ndim - 1):
            raise ConversionError(
                f"{where}: snnc follows torch.stack only over the {self.T} per-step values of "
                "one per-step loop (steps 0..T-1 in order), along dim 0 or -1")
        return Traced(values[0].name, layout.SEQ if dim == 0 else layout.TIME_LAST,
                      state=values[0].state)

    def step_of_sequence(self, where: str, fname: str, traced: tuple, args: tuple,
                         kwargs: dict, out: Any) -> None:
        """`x[t]` or `x.unbind(0)` of a sequence `[T, N, ...]`: the steps of a per-step loop
        (snnTorch's `for step in range(num_steps): cur = fc(x[step])`)."""
        src, t = traced
        if fname == "unbind":
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            outs = list(out) if isinstance(out, tuple | list) else []
            if dim % src.ndim != 0 or len(outs) != self.T:
                raise ConversionError(f"{where}: a [T, N, ...] sequence is followed only "
                                      "through unbind along dim 0 (time)")
            for step, o in enumerate(outs):
                self.bind(o, Traced(t.name, layout.STEP, step=step))
            return
        index = args[1]
        if not isinstance(index, int) or isinstance(index, bool):
            raise ConversionError(f"{where}: a [T, N, ...] sequence is indexed only by one "
                                  "step, x[t] (an integer), inside a per-step loop")
        self.bind(out, Traced(t.name, layout.STEP, step=index % self.T))

    def assign(self, where: str, args: tuple) -> None:
        """`buf[..., t] = y` (or `buf[t] = y`) for t = 0..T-1 into a buffer made with
        torch.zeros: the loop's way of stacking its per-step values, time last (or first);
        y is step t of a per-step loop, or a frame (the same every step). The buffer becomes
        a traced value once every step is in; it must not be read before."""
        buf, index, value = args
        t = self.values.get(id(value)) if isinstance(value, torch.Tensor) else None
        if isinstance(index, int) and not isinstance(index, bool):
            lead, step = layout.SEQ, index
        else:
            lead, step = layout.TIME_LAST, _last_axis_index(index, buf.ndim)
        filled = self.filling.get(id(buf), (lead, {}))
        if t is None or id(buf) in self.values or t.lead != layout.STEP or step is None \
                or t.step not in (None, step % self.T) or filled[0] != lead \
                or layout.split(tuple(buf.shape), lead, self.T, self.N) \
                != self.types[t.name].shape:
            raise self.refuse_in_leaf() or ConversionError(
                f"{where}: snnc follows assignment into a tensor only to collect the values of "
                "a per-step loop, out[..., t] = y (or out[t] = y) with y computed from step t "
                "of the time-last input, into a buffer of shape [N, ..., T] ([T, N, ...]) "
                "made for it")
        filled[1][step % self.T] = t
        self.filling[id(buf)] = filled
        self.alive.append(buf)
        values = filled[1]
        if len(values) == self.T:
            if len({v.name for v in values.values()}) != 1:
                raise ConversionError(f"{where}: the steps assigned into one buffer come from "
                                      "different computations")
            del self.filling[id(buf)]
            self.bind(buf, Traced(values[0].name, lead))

    def from_time_last(self, where: str, func: Any, traced: list, args: tuple,
                       kwargs: dict, out: Any) -> None:
        """A time-last value `[N, *features, T]` (input_layout 'NT', or a stack along dim -1)
        is followed through a permute/movedim that makes it `[T, N, *features]`, per-step
        indexing `x[..., t]` / `x.unbind(-1)`, a sum or mean over the last axis (at the model
        output), and copies that keep it."""
        if len(traced) != 1 or (traced[0][1].reduced):
            raise self.time_last(where)
        fname = getattr(func, "__name__", repr(func))
        (src, t), = traced
        if not isinstance(out, torch.Tensor):
            outs = [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]
            dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
            if not outs:
                return  # shape and size queries
            if fname != "unbind" or dim % src.ndim != src.ndim - 1:
                raise self.time_last(where)
            for step, o in enumerate(outs):
                self.bind(o, Traced(t.name, layout.STEP, step=step))
            return
        shape = tuple(out.shape)
        if fname in _SAME and layout.split(shape, t.lead, self.T, self.N) is not None:
            self.bind(out, t)
        elif fname in _MOVE_TIME and _permutation(func, args, kwargs, src.ndim) == \
                (src.ndim - 1, *range(src.ndim - 1)):  # [N, ..., T] -> [T, N, ...]
            self.bind(out, Traced(t.name, layout.SEQ))
        elif fname == "__getitem__" and (step := _last_axis_index(args[1], src.ndim)) is not None:
            self.bind(out, Traced(t.name, layout.STEP, step=step % self.T))
        elif fname in _TIME_REDUCE:
            self.bind(out, self.time_reduce(where, fname, traced, args, kwargs))
        elif fname in _RELAYOUT or fname in _IDENTITY:  # x.view(N, -1, T): features only
            self.bind(out, self.relayout(where, t, src, out, fname))
        else:
            raise self.time_last(where)

    def time_last(self, where: str) -> ConversionError:
        return ConversionError(
            f"{where} reads a time-last value [N, ..., T]; snnc follows one through modules "
            "whose converter you registered (they take and return time last), batch norm, "
            "reshapes of the features that keep N first and T last (x.view(N, -1, T)), "
            "per-step indexing x[..., t] or x.unbind(-1), a permute or movedim that brings "
            "time to the front (x.movedim(-1, 0)), and .sum(-1)/.mean(-1) at the model output")

    def rescale(self, where: str, fname: str, traced: tuple, args: tuple) -> Traced:
        """`out.sum(-1) / T` and the like at the model output: a positive constant factor
        changes the model's value, not its answer (argmax); remember it for the check."""
        src, t = traced
        others = [a for a in args if a is not src]
        factor = others[0] if len(others) == 1 else None
        if isinstance(factor, torch.Tensor) and factor.numel() == 1 \
                and id(factor) not in self.values:
            factor = factor.item()
        if not isinstance(factor, int | float) or isinstance(factor, bool) \
                or not factor > 0 or factor == float("inf") \
                or (fname != "mul" and not fname.endswith("mul__") and args[0] is not src):
            raise ConversionError(
                f"{where}: a value already summed or averaged over time may only be "
                f"multiplied or divided by a positive number (e.g. out.sum(-1) / T), got "
                f"{factor!r}")
        divide = fname in ("div", "__truediv__", "true_divide")
        return replace(t, scale=t.scale / factor if divide else t.scale * factor)

    def refuse_in_leaf(self) -> ConversionError | None:
        """Inside a module with no submodules and no converter, an unsupported function means
        the module itself is unsupported (nn.ReLU, MaxPool2d, a user's neuron class): say so."""
        if self.scope_modules and next(self.scope_modules[-1].children(), None) is None:
            return self.unsupported_module(self.scope_modules[-1], self.scopes[-1])
        return None

    def add(self, where: str, flat: list, traced: list, kwargs: dict) -> Traced:
        tensors = [a for a in flat if isinstance(a, torch.Tensor)]
        others = [a for a in flat if not isinstance(a, torch.Tensor)]
        if len(traced) != 2 or len(tensors) != 2 or any(o not in (1, None) for o in others):
            raise ConversionError(f"{where}: only the sum of two traced values is supported "
                                  "(a residual connection), not constants or scaled sums")
        (_, a), (_, b) = traced
        leads = {a.lead, b.lead}
        if len(leads) > 1 and leads != {layout.SEQ, layout.STEP}:
            raise ConversionError(f"{where}: adds values of layouts {a.lead} and {b.lead}")
        lead = layout.SEQ if layout.SEQ in leads else a.lead
        return Traced(self.emit(Add(name=self.op_name("add"), inputs=(a.name, b.name))), lead)

    def relayout(self, where: str, t: Traced, src: torch.Tensor, out: torch.Tensor,
                 fname: str, name: str | None = None) -> Traced:
        features = self.types[t.name].shape
        readings = layout.infer_relayout(t.lead, features, tuple(out.shape), self.T, self.N)
        if len(readings) != 1:
            why = "is ambiguous" if readings else "is not supported"
            raise ConversionError(
                f"{where}: reshaping {tuple(src.shape)} (layout {','.join(t.lead)}, features "
                f"{features}) to {tuple(out.shape)} {why}; snnc follows merging or splitting "
                "time and batch, repeating a frame over time, and flattening the features")
        lead, flatten = readings[0]
        if not flatten:
            return Traced(t.name, lead)
        name = name or self.op_name("flatten")
        return Traced(self.emit(Flatten(name=name, inputs=(t.name,))), lead)

    def time_reduce(self, where: str, fname: str, traced: list, args: tuple,
                    kwargs: dict) -> Traced:
        (_, t), = traced
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if isinstance(dim, tuple | list) and len(dim) == 1:
            dim = dim[0]
        time_axis = 0 if t.lead == layout.SEQ else args[0].ndim - 1
        if t.lead not in (layout.SEQ, layout.TIME_LAST) or not isinstance(dim, int) \
                or dim % args[0].ndim != time_axis or kwargs.get("keepdim", False):
            raise ConversionError(f"{where}: only a {fname} over the time axis (dim 0 of a "
                                  "[T, N, ...] sequence, dim -1 of a time-last one) is "
                                  "supported, at the model output")
        if isinstance(self.nodes[t.name], Neuron) and self.nodes[t.name].spiking:
            # a firing rate or a spike count: read the spikes
            return Traced(t.name, layout.STEP, reduced=True,
                          scale=float(self.T) if fname == "sum" else 1.0)
        readout = Readout(name=self.fresh(f"{t.name}.readout"), inputs=(t.name,),
                          mean=fname == "mean")
        return Traced(self.emit(readout), layout.STEP, reduced=True)


class _Mode(TorchFunctionMode):
    def __init__(self, tracer: _Tracer):
        super().__init__()
        self.tracer = tracer

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.tracer.leaf_depth:
            return out
        return self.tracer.on_function(func, args, kwargs, out)


def _permutation(func: Any, args: tuple, kwargs: dict, ndim: int) -> tuple[int, ...] | None:
    """The axis order a permute / movedim / transpose call makes, found by applying it to a
    probe whose axes all have different sizes; None if the call does not run on it."""
    probe = torch.empty(tuple(range(2, ndim + 2)))
    try:
        moved = func(probe, *args[1:], **kwargs)
    except Exception:  # noqa: BLE001 - arguments this probe cannot take: not a permutation
        return None
    if not isinstance(moved, torch.Tensor) or moved.ndim != ndim:
        return None
    return tuple(size - 2 for size in moved.shape)


def _last_axis_index(index: Any, ndim: int) -> int | None:
    """t for `x[..., t]` or `x[:, ..., :, t]` (one integer on the last axis), else None."""
    if not isinstance(index, tuple) or not index or not isinstance(index[-1], int) \
            or isinstance(index[-1], bool):
        return None
    full = slice(None)
    rest = index[:-1]
    if rest == (Ellipsis,) or (len(rest) == ndim - 1 and all(i == full for i in rest)):
        return index[-1]
    return None


def _reads_time_last(conv: ConverterFn) -> bool:
    """Whether a module with this converter may receive a time-last value: converters the
    user registered (their modules take and return time last; the trace check holds them to
    it) and the built-in ones that are exact on any axis order after the channel (batch norm)
    or only reshape (Flatten, Identity, Dropout). A built-in convolution, linear layer or
    neuron would run over the wrong axis."""
    builtin = getattr(conv, "__module__", "").startswith("snnc.frontends.")
    return not builtin or conv in (layout_module, batch_norm)


def pass_through(module: nn.Module) -> bool:
    """Whether the tracer follows the forward of a module that has no converter: containers
    (a module with submodules, an empty nn.Sequential) and any module without parameters,
    buffers or a `reset()` of its own, whose forward then only calls other modules and the
    functions the tracer understands. Anything else is refused as an unsupported leaf."""
    if next(module.children(), None) is not None:
        return True
    if isinstance(module, nn.Sequential | nn.ModuleList | nn.ModuleDict):
        return True
    own_state = next(module.parameters(recurse=False), None) is not None or \
        next(module.buffers(recurse=False), None) is not None
    return not own_state and not callable(getattr(module, "reset", None))


def reset_states(model: nn.Module, converters: Mapping[type, ConverterFn] | None = None) -> None:
    """Reset every converted module that offers `reset()` (spikingjelly's stateful neurons,
    or a user's neuron class) or `reset_mem()` (snnTorch's): state starts afresh for every
    sample."""
    for m in model.modules():
        reset = getattr(m, "reset", None)
        reset = reset if callable(reset) else getattr(m, "reset_mem", None)
        if callable(reset) and find_converter(m, converters) is not None:
            reset()


def trace_model(model: nn.Module, example_input: torch.Tensor, timesteps: int, *,
                step_mode: str | None = None, input_shape: tuple[int, ...] | None = None,
                converters: Mapping[type, ConverterFn] | None = None,
                input_layout: str | None = None, decode: str = "auto") -> TraceResult:
    """Trace `model` into a float IR graph; see `trace` for the arguments."""
    if decode not in DECODES:
        raise ConversionError(f"decode (--decode) = {decode!r}; expected one of "
                              f"{', '.join(DECODES)}")
    if step_mode is not None and step_mode not in STEP_MODES:
        raise ConversionError(f"step_mode must be one of {STEP_MODES}, got {step_mode!r}")
    if not isinstance(timesteps, int) or timesteps < 1:
        raise ConversionError(f"timesteps must be a positive integer, got {timesteps!r}")
    example = torch.as_tensor(example_input)
    if not example.is_floating_point():
        example = example.float()
    lead = layout.input_layout(tuple(example.shape), timesteps, step_mode, input_shape,
                               input_layout)
    if lead == layout.SEQ and _declared_mode(model, step_mode, converters) == "single":
        example, lead = example[0], layout.STEP  # called once per step: trace one frame
    batch = layout.tracing_batch(timesteps)
    axis = lead.index("N")
    index = torch.arange(batch) % example.shape[axis]
    x = example.index_select(axis, index).to(_model_dtype(model))

    tracer = _Tracer(model, timesteps, batch, converters)
    features = layout.split(tuple(x.shape), lead, timesteps, batch)
    tracer.emit(Input(name="input", shape=features))
    tracer.bind(x, Traced("input", lead))
    hooks = []
    was_training = model.training
    try:
        for m in model.modules():
            hooks.append(m.register_forward_pre_hook(tracer.pre_hook))
            hooks.append(m.register_forward_hook(tracer.post_hook))
        model.eval()
        reset_states(model, converters)
        with torch.no_grad(), _Mode(tracer):
            out = model(x)
    except SnncError:
        raise
    except Exception as err:  # the user's model failed on our input: say so, on one line
        detail = str(err).splitlines()[0] if str(err) else ""
        raise ConversionError(f"running the model on an input of shape {list(x.shape)} failed: "
                              f"{type(err).__name__}: {detail}") from err
    finally:
        for h in hooks:
            h.remove()
        reset_states(model, converters)
        model.train(was_training)
    outputs = [tracer.lookup(o, "the model output") if isinstance(o, torch.Tensor) else None
               for o in tree_flatten(out)[0]]
    if not outputs or None in outputs:
        raise ConversionError("the model must return a tensor (or a tuple of tensors) "
                              "computed from its input")
    reads = tuple(_output(tracer, o) for o in outputs)
    mode = _step_mode(tracer, step_mode)
    if all(r.membrane for r in reads):
        raise ConversionError(
            f"the model returns only the state (membrane) of neuron {reads[0].name!r}; snnc "
            "reads an answer from spikes (decoded by count) or from a non-spiking layer: "
            "return the spikes too, or end with a non-spiking readout")
    reads = _decode(tracer, reads, decode)
    names = list(dict.fromkeys(r.name for r in reads if r.decoded))
    graph = Graph.build(_reaching(tracer.nodes, names), names)
    log.info("traced %d nodes (%s-step model): %s", len(graph), mode,
             Counter(n.op for n in graph))
    time_last = frozenset(n for n, lead in tracer.neuron_leads.items()
                          if lead == layout.TIME_LAST)
    return TraceResult(graph, mode, lead, dict(tracer.neuron_modules), tracer.loops_inside,
                       time_last, reads)


def _declared_mode(model: nn.Module, requested: str | None,
                   converters: Mapping[type, ConverterFn] | None) -> str | None:
    """The style the model's converted modules declare (spikingjelly's step_mode 's'/'m')."""
    if requested is not None:
        return requested
    modes = {getattr(m, "step_mode", None) for m in model.modules()
             if find_converter(m, converters) is not None}
    modes.discard(None)
    return {"s": "single", "m": "multi"}.get(modes.pop()) if len(modes) == 1 else None


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _decode(tracer: _Tracer, reads: tuple[OutputRead, ...], decode: str
            ) -> tuple[OutputRead, ...]:
    """Keep as graph outputs the model outputs `decode` reads: spiking ones for "count",
    non-spiking ones (a readout's potential) for "potential"; "auto" is "count" when the
    model returns spikes. Membranes returned beside spikes are never outputs."""
    def spiking(r: OutputRead) -> bool:
        node = tracer.nodes[r.name]
        return isinstance(node, Neuron) and node.spiking

    kinds = {spiking(r) for r in reads if not r.membrane}
    want = (True in kinds) if decode == "auto" else decode == "count"
    if want not in kinds:
        has = "spikes" if True in kinds else "a potential (non-spiking values)"
        raise ConversionError(
            f"decode (--decode) {decode!r} reads the answer from "
            f"{'spike counts' if want else 'a potential'}, but the model returns only {has}; "
            f"use --decode {'potential' if want else 'count'} or auto")
    return tuple(replace(r, decoded=not r.membrane and spiking(r) == want) for r in reads)


def _reaching(nodes: dict[str, Node], outputs: list[str]) -> list[Node]:
    """The nodes the outputs depend on (an output left undecoded leaves its readout out)."""
    keep, todo = set(), list(outputs)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(nodes[name].inputs)
    return [n for name, n in nodes.items() if name in keep or isinstance(n, Input)]


def _output(tracer: _Tracer, t: Traced) -> OutputRead:
    if t.state is not None:
        return OutputRead(t.name, membrane=True)
    if t.reduced:
        return OutputRead(t.name, t.scale)
    node = tracer.nodes[t.name]
    if t.lead not in (layout.STEP, layout.SEQ, layout.TIME_LAST):
        raise ConversionError(f"the model output {t.name!r} has layout {','.join(t.lead)}; "
                              "expected [N, ...], [T, N, ...] or [N, ..., T]")
    time_last = t.lead == layout.TIME_LAST
    if isinstance(node, Neuron):
        return OutputRead(t.name, time_last=time_last)
    # A per-step value (single-step models; multi-step models that return the sequence):
    # the caller averages it over time, which is what the readout does.
    readout = Readout(name=tracer.fresh(f"{t.name}.readout"), inputs=(t.name,))
    return OutputRead(tracer.emit(readout), time_last=time_last)


def _step_mode(tracer: _Tracer, requested: str | None) -> str:
    if not tracer.neuron_leads:
        raise ConversionError("the model has no spiking neuron modules that snnc recognizes; "
                              "supported modules: " + ", ".join(supported_types(tracer.extra)))
    modes = {}
    for name, lead in tracer.neuron_leads.items():
        if lead == layout.STEP:
            modes[name] = "single"
        elif lead in (layout.SEQ, layout.TIME_LAST):  # a whole sequence per call
            modes[name] = "multi"
        else:
            raise ConversionError(f"neuron {name!r} receives a tensor of layout "
                                  f"{','.join(lead)}; neurons need [N, ...] or [T, N, ...]")
    kinds = set(modes.values())
    if len(kinds) > 1:
        detail = ", ".join(f"{n}: {m}" for n, m in modes.items())
        raise ConversionError(f"the model mixes single-step and multi-step neurons ({detail})")
    mode = kinds.pop()
    if requested is not None and requested != mode:
        first = next(iter(modes))
        raise ConversionError(f"step_mode={requested!r} was requested, but neuron {first!r} "
                              f"runs {mode}-step (it receives "
                              f"{'[T, N, ...]' if mode == 'multi' else '[N, ...]'} tensors)")
    return mode

