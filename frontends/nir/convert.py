"""NIR leaf nodes -> IR nodes, exactly or not at all (docs/semantics.md §7).

Each value carries a pending scalar factor (SumPool2d's kernel area, a uniform Scale) that
the next synapse takes into its weights or the next neuron into its input gain; a neuron's
own input scale (dt r / tau) becomes the LIF's gain, or is divided out of the threshold
(its whole state scales with it when v_leak = v_reset = 0, as snnTorch's importer does it),
or, for a readout, is folded into the weights of the synapse feeding it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc import discretise
from snnc.discretise import DiscretisationError, uniform
from snnc.frontends.nir.graph import PASS, Flat, declared_shape
from snnc.frontends.nir.reader import NirError, NirNode
from snnc.ir import LIF, Add, AvgPool2d, Conv2d, CubaLIF, Dense, Flatten, Graph, Input, Readout

NEURONS = ("IF", "LIF", "LI", "I", "CubaLIF")


@dataclass
class Value:
    name: str                # the IR node producing it
    shape: tuple[int, ...]
    scale: float = 1.0       # the NIR value is scale * the IR value


def to_ir(flat: Flat, dt: float, input_shape: tuple[int, ...] | None = None) -> Graph:
    conv = _Converter(flat, dt)
    for path, node in flat.nodes.items():
        try:
            conv.visit(path, node, input_shape)
        except DiscretisationError as err:
            raise NirError(f"{node.where()}: {err}") from None
    outputs = []
    for out in flat.outputs:
        v = conv.values[out]
        if v.scale != 1.0:
            raise NirError(f"{flat.nodes[out].where()} receives a value scaled by "
                           f"{v.scale:g} with no synapse or neuron to take it")
        outputs.append(v.name)
    for name, readout in conv.folded.items():
        readers = sum(name in getattr(n, "inputs", ()) for n in conv.ir.values())
        if readers != 1 or name in outputs:
            raise NirError(f"{readout.where('r')}: its input scale dt*r/tau has no IR form: "
                           f"the synapse {name!r} it would go into is also read elsewhere")
    return Graph.build(list(conv.ir.values()), list(dict.fromkeys(outputs)))


class _Converter:
    def __init__(self, flat: Flat, dt: float):
        self.flat, self.dt = flat, dt
        self.ir: dict[str, object] = {}
        self.values: dict[str, Value] = {}
        self.folded: dict[str, NirNode] = {}  # synapse -> the readout that scaled it

    # -- inputs of a node --------------------------------------------------------------------

    def incoming(self, path: str, node: NirNode) -> Value:
        vals = [self.values[p] for p in self.flat.reads[path]]
        for p, v in zip(self.flat.reads[path][1:], vals[1:], strict=True):
            if v.shape != vals[0].shape:
                raise NirError(f"{node.where()}: its inputs disagree in shape: "
                               f"{self.flat.reads[path][0]!r} gives {list(vals[0].shape)}, "
                               f"{p!r} gives {list(v.shape)}")
            if v.scale != vals[0].scale:
                raise NirError(f"{node.where()}: its inputs carry different pending scales "
                               f"({vals[0].scale:g}, {v.scale:g}); put the Scale or SumPool "
                               "before a synapse")
        x = vals[0]
        if len(vals) > 1:
            names = list(dict.fromkeys(v.name for v in vals))
            if len(names) != len(vals):
                raise NirError(f"{node.where()} reads the same value twice")
            self.ir[f"{path}.sum"] = Add(name=f"{path}.sum", inputs=tuple(names))
            x = Value(f"{path}.sum", x.shape, x.scale)
        declared = declared_shape(node, "input_type") if node.type == "Flatten" else None
        if declared is not None and declared != x.shape:
            raise NirError(f"{node.where('input_type')}: declares {list(declared)} but "
                           f"receives {list(x.shape)}")
        return x

    def visit(self, path: str, node: NirNode, input_shape) -> None:
        if node.type == "Input":
            shape = declared_shape(node, "shape")
            if shape is None:
                if input_shape is None:
                    raise NirError(f"{node.where('shape')} is missing or empty; give "
                                   "--input-shape")
                shape = tuple(input_shape)
            elif input_shape is not None and tuple(input_shape) != shape:
                raise NirError(f"--input-shape {list(input_shape)} disagrees with "
                               f"{node.where('shape')} = {list(shape)}")
            self.ir[path] = Input(name=path, shape=shape)
            self.values[path] = Value(path, shape)
            return
        x = self.incoming(path, node)
        handler = getattr(self, f"_{node.type.lower().lstrip('_')}", None)
        if handler is None:
            raise NirError(f"{node.where()}: {REFUSED.get(node.type, 'no IR form')}")
        self.values[path] = handler(path, node, x)

    def emit(self, node, shape: tuple[int, ...], scale: float = 1.0) -> Value:
        self.ir[node.name] = node
        return Value(node.name, shape, scale)

    # -- parameters ----------------------------------------------------------------------------

    def arr(self, node: NirNode, name: str, shape: tuple[int, ...] | None = None,
            default: float | None = None) -> np.ndarray:
        raw = node.fields.get(name, default)
        try:
            a = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            raise NirError(f"{node.where(name)}: expected numbers, got {raw!r}") from None
        if not np.all(np.isfinite(a)):
            raise NirError(f"{node.where(name)}: contains NaN or infinite values")
        if shape is not None:
            try:
                a = np.broadcast_to(a, shape)
            except ValueError:
                raise NirError(f"{node.where(name)}: shaped {list(a.shape)}, but the node "
                               f"receives {list(shape)}") from None
        return a

    def ints(self, node: NirNode, name: str, low: int) -> tuple[int, int]:
        a = np.asarray(node.fields[name]).ravel()
        if a.dtype.kind not in "iuf" or a.size not in (1, 2) or np.any(a != np.round(a)) \
                or np.any(a < low):
            raise NirError(f"{node.where(name)}: expected one or two integers >= {low}, got "
                           f"{node.fields[name]!r}")
        return (int(a[0]), int(a[-1]))  # an integer kernel size means a square one

    # -- synapses and structure -----------------------------------------------------------------

    def _dense(self, path, node, x, bias):
        w = self.arr(node, "weight")
        if w.ndim != 2:
            raise NirError(f"{node.where('weight')}: shaped {list(w.shape)}; expected "
                           "[out, in]")
        if len(x.shape) != 1 or x.shape[0] != w.shape[1]:
            raise NirError(f"{node.where()}: weight reads {w.shape[1]} features, the input is "
                           f"shaped {list(x.shape)} (a NIR Affine/Linear reads a 1-D input; "
                           "put a Flatten before it)")
        b = None if bias is None else self.arr(node, "bias", (w.shape[0],)).copy()
        return self.emit(Dense(name=path, inputs=(x.name,), weight=w * x.scale, bias=b),
                         (w.shape[0],))

    def _affine(self, path, node, x):
        return self._dense(path, node, x, bias=True)

    def _linear(self, path, node, x):
        return self._dense(path, node, x, bias=None)

    def _conv2d(self, path, node, x):
        w = self.arr(node, "weight")
        if w.ndim != 4:
            raise NirError(f"{node.where('weight')}: shaped {list(w.shape)}; expected "
                           "[out, in, kH, kW]")
        if int(np.asarray(node.fields["groups"]).ravel()[0]) != 1:
            raise NirError(f"{node.where('groups')}: only groups = 1 has an IR form")
        if self.ints(node, "dilation", 1) != (1, 1):
            raise NirError(f"{node.where('dilation')}: only dilation 1 has an IR form")
        if len(x.shape) != 3 or x.shape[0] != w.shape[1]:
            raise NirError(f"{node.where()}: weight reads {w.shape[1]} channels, the input is "
                           f"shaped {list(x.shape)}")
        declared = declared_shape(node, "input_shape")
        if declared is not None and declared != x.shape[1:]:
            raise NirError(f"{node.where('input_shape')}: declares {list(declared)} but "
                           f"receives {list(x.shape[1:])}")
        stride = self.ints(node, "stride", 1)
        pad = node.fields["padding"]
        if isinstance(pad, str):
            if pad == "valid":
                padding = (0, 0)
            elif pad == "same" and stride == (1, 1) and w.shape[2] % 2 and w.shape[3] % 2:
                padding = (w.shape[2] // 2, w.shape[3] // 2)
            else:
                raise NirError(f"{node.where('padding')} = {pad!r}: accepted 'valid', "
                               "integers, or 'same' with stride 1 and an odd kernel")
        else:
            padding = self.ints(node, "padding", 0)
        bias = self.arr(node, "bias", (w.shape[0],)).copy()
        ir = Conv2d(name=path, inputs=(x.name,), weight=w * x.scale, bias=bias, stride=stride,
                    padding=padding)
        h = (x.shape[1] + 2 * padding[0] - w.shape[2]) // stride[0] + 1
        wd = (x.shape[2] + 2 * padding[1] - w.shape[3]) // stride[1] + 1
        if h <= 0 or wd <= 0:
            raise NirError(f"{node.where()}: the kernel is larger than the padded input "
                           f"{list(x.shape)}")
        return self.emit(ir, (w.shape[0], h, wd))

    def _pool(self, path, node, x, scale):
        if len(x.shape) != 3:
            raise NirError(f"{node.where()}: the input is shaped {list(x.shape)}; expected "
                           "[C, H, W]")
        k, s, p = (self.ints(node, "kernel_size", 1), self.ints(node, "stride", 1),
                   self.ints(node, "padding", 0))
        if 2 * p[0] > k[0] or 2 * p[1] > k[1]:
            raise NirError(f"{node.where('padding')}: at most half the kernel")
        h, w = ((x.shape[i + 1] + 2 * p[i] - k[i]) // s[i] + 1 for i in (0, 1))
        if h <= 0 or w <= 0:
            raise NirError(f"{node.where()}: the kernel is larger than the input")
        ir = AvgPool2d(name=path, inputs=(x.name,), kernel=k, stride=s, padding=p)
        return self.emit(ir, (x.shape[0], h, w), x.scale * (k[0] * k[1] if scale else 1.0))

    def _avgpool2d(self, path, node, x):
        return self._pool(path, node, x, scale=False)

    def _sumpool2d(self, path, node, x):  # sum = kH*kW * mean, padded zeros counted in both
        return self._pool(path, node, x, scale=True)

    def _flatten(self, path, node, x):
        nd = len(x.shape)
        start, end = (int(np.asarray(node.fields[k]).ravel()[0]) for k in ("start_dim",
                                                                          "end_dim"))
        s, e = start % nd if -nd <= start < nd else None, end % nd if -nd <= end < nd else None
        if s is None or e is None or s > e:
            raise NirError(f"{node.where()}: start_dim {start}, end_dim {end} do not fit an "
                           f"input shaped {list(x.shape)}")
        out = x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:]
        if out == x.shape:
            return x
        if len(out) != 1:
            raise NirError(f"{node.where()}: gives {list(out)}; only a flatten to one "
                           "dimension has an IR form")
        return self.emit(Flatten(name=path, inputs=(x.name,)), out, x.scale)

    def _scale(self, path, node, x):
        s = uniform(self.arr(node, "scale", x.shape))
        if s is None:
            raise NirError(f"{node.where('scale')}: only a uniform scale has an IR form "
                           "(it is carried into the next synapse or neuron)")
        return Value(x.name, x.shape, x.scale * s)

    def _delay(self, path, node, x):
        steps = self.arr(node, "delay", x.shape) / self.dt
        if np.all(steps == 0):
            return x
        u = uniform(steps)
        raise NirError(f"{node.where('delay')}: {'varying' if u is None else f'{u:g}'} steps "
                       "of dt; the IR has no delay node, only a delay of 0 is exact")

    def _pass(self, path, node, x):
        return x

    def _output(self, path, node, x):
        declared = declared_shape(node, "shape")
        if declared is not None and int(np.prod(declared)) != int(np.prod(x.shape)):
            raise NirError(f"{node.where('shape')}: declares {list(declared)} but receives "
                           f"{list(x.shape)}")
        return x

    # -- neurons -----------------------------------------------------------------------------

    def _resting(self, node, x, *fields):
        for name in fields:
            if name in node.fields or name == "v_leak":
                if np.any(self.arr(node, name, x.shape, default=0.0) != 0):
                    raise NirError(f"{node.where(name)}: must be 0; the IR's neurons start "
                                   "at rest and NIR leaves the initial state open")

    def _one(self, node, name, values):
        u = uniform(values)
        if u is None:
            raise NirError(f"{node.where(name)}: varies across neurons; the IR's decay is one "
                           "number per layer")
        return u

    def _spiking(self, path, node, x, tau):
        r = self.arr(node, "r", x.shape)
        self._resting(node, x, *(("v_leak",) if tau is not None else ()), "v_reset")
        decay, g = discretise.to_steps(tau, r, self.dt, node.where("tau"))
        g = g * x.scale
        thr = self.arr(node, "v_threshold", x.shape)
        if uniform(g) is not None and uniform(g) > 0:
            gain, threshold = uniform(g), thr
        elif np.all(g > 0):
            gain, threshold = 1.0, thr / g
        else:
            raise NirError(f"{node.where('r')}: the input scale dt*r/tau must be positive")
        return self.emit(LIF(name=path, inputs=(x.name,), decay=self._one(node, "tau", decay),
                             threshold=_compact(threshold), gain=gain, compare=">",
                             reset="hard"), x.shape)

    def _if(self, path, node, x):
        return self._spiking(path, node, x, None)

    def _lif(self, path, node, x):
        return self._spiking(path, node, x, self.arr(node, "tau", x.shape))

    def _cubalif(self, path, node, x):
        self._resting(node, x, "v_leak", "v_reset")
        ts, tm = self.arr(node, "tau_syn", x.shape), self.arr(node, "tau_mem", x.shape)
        alpha, g_in = discretise.to_steps(ts, self.arr(node, "w_in", x.shape, 1.0), self.dt,
                                          node.where("tau_syn"))
        beta, g_mem = discretise.to_steps(tm, self.arr(node, "r", x.shape), self.dt,
                                          node.where("tau_mem"))
        g = g_in * g_mem * x.scale
        if not np.all(g > 0):
            raise NirError(f"{node.where('w_in')}: the input scale (dt w_in/tau_syn)(dt r/"
                           "tau_mem) must be positive")
        thr = self.arr(node, "v_threshold", x.shape) / g
        return self.emit(CubaLIF(name=path, inputs=(x.name,),
                                 decay=self._one(node, "tau_mem", beta),
                                 current_decay=self._one(node, "tau_syn", alpha),
                                 threshold=_compact(thr), reset="zero", reset_delay=False,
                                 compare=">"), x.shape)

    def _readout(self, path, node, x, tau):
        if tau is not None:
            self._resting(node, x, "v_leak")
        decay, g = discretise.to_steps(tau, self.arr(node, "r", x.shape), self.dt,
                                       node.where("tau"))
        self._fold_into_synapse(node, x, g * x.scale)
        return self.emit(Readout(name=path, inputs=(x.name,), mean=False,
                                 decay=self._one(node, "tau", decay)), x.shape)

    def _li(self, path, node, x):
        return self._readout(path, node, x, self.arr(node, "tau", x.shape))

    def _i(self, path, node, x):
        return self._readout(path, node, x, None)

    def _fold_into_synapse(self, node: NirNode, x: Value, g: np.ndarray) -> None:
        """A readout has no gain: its input scale goes into the weights and biases of the
        synapses that feed it, which must feed nothing else."""
        if np.all(g == 1.0):
            return
        producer = self.ir[x.name]
        terms = [self.ir[i] for i in producer.inputs] if isinstance(producer, Add) else \
            [producer]
        for t in terms:
            if not isinstance(t, Dense | Conv2d):
                raise NirError(f"{node.where('r')}: the input scale dt*r/tau = "
                               f"{uniform(g) or 'varying'} has no IR form here: a readout "
                               "takes it only from Affine/Linear/Conv2d synapses it alone reads")
            self.folded[t.name] = node
            gc = g.reshape(-1) if isinstance(t, Dense) else g.reshape(g.shape[0], -1)[:, 0]
            if isinstance(t, Conv2d) and not np.all(g == gc[:, None, None]):
                raise NirError(f"{node.where('r')}: varies within a channel")
            shape = (-1,) + (1,) * (t.weight.ndim - 1)
            self.ir[t.name] = t.replace(weight=t.weight * gc.reshape(shape),
                                        bias=None if t.bias is None else t.bias * gc)


def _compact(thr: np.ndarray) -> float | np.ndarray:
    """One number, one per channel (C,), or one per neuron, as the IR takes thresholds."""
    u = uniform(thr)
    if u is not None:
        return u
    if thr.ndim > 1:
        per_channel = thr.reshape(thr.shape[0], -1)[:, :1]
        if np.all(thr.reshape(thr.shape[0], -1) == per_channel):
            return per_channel[:, 0].copy()
    return np.array(thr)


REFUSED = {
    "Conv1d": "the IR has no 1-D convolution",
    "CubaLI": "the IR's readout has no synaptic current",
    "Threshold": "a stateless Heaviside has no IR node",
    PASS: "",
}
