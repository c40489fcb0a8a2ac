"""Lava processes for what Lava's stock processes cannot express exactly.

`SnncNeuron` runs every neuron kind of the IR, at either precision; it adds what the reference
simulator's hardware timing defines and stock LIF lacks:

- a layer starts at its first valid step (`first_step`): before it, no update, so no bias;
- samples run back to back, each in a period of `sample_steps` steps; from step `stop_step`
  of a period the neuron is silent and its state returns to rest (the synapse buffers drain
  meanwhile);
- the soft reset, the CLIF, the non-spiking readout, and the CubaLIF (snnTorch's reset
  rule: the reset a step owes is read from v before Lava's u and v update, `cuba_reset`
  says which, `reset_delay` whether the spike's own step pays it too);
- a record of every step's spikes (or readout v), kept in an array of the model's own (not
  a Var, whose value the process would hold too) and written once at the end of the run to
  a file the lowering names (`record_file`: `np.save`, spikes as int8): Lava's Monitor costs
  about 65 us per value, and `Var.get` sends an array through the runtime one value at a
  time (hours for a ResNet-19's 10^8 recorded values). (Var names must not shadow the
  model's own attributes: `log` is its logger and `start` its run-loop method; either
  breaks the runtime silently.)

Its Vars depend on the precision (`FixedParams` or `FloatParams`): Lava builds a model only
when it declares a type for every Var of the process, and every Var it declares must exist.

- fixed_pt (`PySnncNeuronFixed`): Lava LIF's variables under the same names, so Lava's own
  fixed-point LIF code (`AbstractPyLifModelFixed`, the base of its bit-accurate
  `PyLifModelBitAcc`) does the decay, the 24-bit wrap of u, the clip of v and the bias
  mantissa and exponent; the threshold test restates Lava's two lines; the soft reset and
  the fixed-point CLIF are snnc/ir/fixed.py's equations.
- floating_pt (`PySnncNeuronFloat`): the float LIF, CLIF and Readout of snnc/ir/neuron.py,
  written as backends/refsim/float_ops.py computes them (same operations in the same order,
  float64), so equal inputs give equal bits.

Each model runs a kind through its own table (`STEPS`: kind -> step), which names every kind
in `KINDS`; a kind SnncNeuron does not know is refused when the process is built. Which node
type runs as which kind is the lowering's table (lower.FIXED_NEURONS, lower.FLOAT_NEURONS).

`GradedSource` replays precomputed input frames (graded spikes): integer payloads at
fixed_pt, the float frames themselves at floating_pt. `StepRecorder` records the spikes of a
layer that runs on Lava's stock LIF.

(No `from __future__ import annotations` here: Lava's model search executes every module
of this folder again under its bare name, and a dataclass with string annotations fails
to import outside `sys.modules`.)
"""

from dataclasses import dataclass, field

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed

from snnc.backends.lava.validate import LavaBuildError
from snnc.ir.widths import FORMAT

KINDS = {"hard": 0, "soft": 1, "clif": 2, "readout": 3, "cuba": 4}
#: CubaLIF resets (snnc/ir/neuron.py), as the `cuba_reset` Var holds them.
CUBA_RESETS = {"subtract": 0, "zero": 1, "zero_all": 2, "none": 3}


class GradedSource(AbstractProcess):
    """Sends frames[t] at step t+1 (Lava counts from 1): one payload per pixel."""

    def __init__(self, frames: np.ndarray, **kwargs) -> None:
        super().__init__(**kwargs)
        self.frames = Var(shape=frames.shape, init=frames)
        self.s_out = OutPort(shape=frames.shape[1:])


@implements(proc=GradedSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyGradedSource(PyLoihiProcessModel):
    frames: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)

    def run_spk(self) -> None:
        self.s_out.send(self.frames[self.time_step - 1])


@implements(proc=GradedSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyGradedSourceFloat(PyLoihiProcessModel):
    frames: np.ndarray = LavaPyType(np.ndarray, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)

    def run_spk(self) -> None:
        self.s_out.send(self.frames[self.time_step - 1])


class StepRecorder(AbstractProcess):
    """Keeps what arrives at its port at every step ([steps, n]), saved once at the end to
    `record_file`: the spike record of a stock Lava process (its s_out connected here, no
    delay)."""

    def __init__(self, *, shape: tuple[int, ...], steps: int, record_file: str) -> None:
        super().__init__(shape=shape, record_file=record_file, spiking=True, steps=steps)
        self.a_in = InPort(shape=shape)


class _SavesRecord:
    """Keeps each step's values (`keep`) in an array of the model's own, [steps, n]: int8
    spikes, or the readout's v in `READOUT_TYPE`; saves it to the process's `record_file`
    after the run's last step (Lava's post-management phase, which runs after every
    process's spiking phase of the step). Steps a layer skips stay 0."""

    READOUT_TYPE = np.int64
    _record = None

    def _records(self) -> np.ndarray:
        if self._record is None:
            n = int(np.prod(self.proc_params["shape"]))
            dtype = np.int8 if self.proc_params["spiking"] else self.READOUT_TYPE
            self._record = np.zeros((self.proc_params["steps"], n), dtype)
        return self._record

    def keep(self, values: np.ndarray) -> None:
        self._records()[self.time_step - 1] = np.ravel(values)

    def post_guard(self) -> bool:
        return self.time_step == self.proc_params["steps"]

    def run_post_mgmt(self) -> None:
        np.save(self.proc_params["record_file"], self._records())


@implements(proc=StepRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyStepRecorder(_SavesRecord, PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)

    def run_spk(self) -> None:
        self.keep(self.a_in.recv())


@dataclass(frozen=True)
class FixedParams:
    """Integer parameters (snnc/ir/fixed.py); bias_mant and bias_exp one per neuron."""

    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    reset_sub: int = 0
    sig_lut: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    sig_mult: int = 0
    sig_shift: int = 1
    reset_lut: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    m_shift: int = 0
    cuba_reset: int = 0
    reset_delay: int = 1


@dataclass(frozen=True)
class FloatParams:
    """Float parameters (snnc/ir/neuron.py). threshold and bias are one per neuron; bias is
    the sum of the biases of the synapses feeding the layer (Lava's Dense has none)."""

    threshold: np.ndarray
    bias: np.ndarray
    decay: float
    gain: float = 1.0
    v_reset: float = 0.0
    tau: float = 2.0
    strict: bool = False  # fires on '>' (True) or '>=' (False)
    current_decay: float = 0.0
    cuba_reset: int = 0
    reset_delay: int = 1


class SnncNeuron(AbstractProcess):
    """A layer of neurons of one kind ('hard', 'soft', 'clif', 'readout') with the sample
    gating and step record of the module docstring. Not a subclass of Lava's LIF process:
    that would let Lava pick a stock LIF model without these variables."""

    def __init__(self, *, shape: tuple[int, ...], steps: int, kind: str, start: int, end: int,
                 period: int, params: FixedParams | FloatParams, record_file: str) -> None:
        super().__init__(shape=shape, record_file=record_file, spiking=kind != "readout",
                         steps=steps)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        if kind not in KINDS:
            raise LavaBuildError(f"SnncNeuron kind {kind!r} is not one its models run; "
                                 f"known kinds: {', '.join(KINDS)}")
        self.kind = Var(shape=(1,), init=KINDS[kind])
        self.first_step = Var(shape=(1,), init=start)
        self.stop_step = Var(shape=(1,), init=end)
        self.sample_steps = Var(shape=(1,), init=period)
        self.m = Var(shape=shape, init=0)
        self.cuba_reset = Var(shape=(1,), init=params.cuba_reset)
        self.reset_delay = Var(shape=(1,), init=params.reset_delay)
        if isinstance(params, FixedParams):
            self._fixed_vars(shape, params)
        else:
            self._float_vars(shape, params)

    def _fixed_vars(self, shape: tuple[int, ...], p: FixedParams) -> None:
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)
        self.du = Var(shape=(1,), init=p.du)
        self.dv = Var(shape=(1,), init=p.dv)
        self.bias_mant = Var(shape=shape, init=p.bias_mant)
        self.bias_exp = Var(shape=shape, init=p.bias_exp)
        self.vth = Var(shape=(1,), init=p.vth)
        self.reset_sub = Var(shape=(1,), init=p.reset_sub)
        self.sig_lut = Var(shape=p.sig_lut.shape, init=p.sig_lut)
        self.sig_mult = Var(shape=(1,), init=p.sig_mult)
        self.sig_shift = Var(shape=(1,), init=p.sig_shift)
        self.reset_lut = Var(shape=p.reset_lut.shape, init=p.reset_lut)
        self.m_shift = Var(shape=(1,), init=p.m_shift)

    def _float_vars(self, shape: tuple[int, ...], p: FloatParams) -> None:
        self.v = Var(shape=shape, init=p.v_reset)  # v starts at rest: v_reset (0 when soft)
        self.threshold = Var(shape=shape, init=p.threshold)
        self.bias = Var(shape=shape, init=p.bias)
        self.decay = Var(shape=(1,), init=p.decay)
        self.gain = Var(shape=(1,), init=p.gain)
        self.v_reset = Var(shape=(1,), init=p.v_reset)
        self.tau = Var(shape=(1,), init=p.tau)
        self.strict = Var(shape=(1,), init=int(p.strict))
        self.current_decay = Var(shape=(1,), init=p.current_decay)


class _SampleGate:
    """The timing both models share: which steps update, and the return to rest."""

    kind: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    first_step: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=32)
    stop_step: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=32)
    sample_steps: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=32)
    cuba_reset: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    reset_delay: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)

    def live(self) -> bool:
        """Whether this step updates the layer. From `stop_step` to the end of the sample's
        period it does not, and its state returns to rest for the next sample."""
        local = (self.time_step - 1) % int(self.sample_steps[0])
        if local >= int(self.stop_step[0]):
            self.rest()
        return int(self.first_step[0]) <= local < int(self.stop_step[0])

    def rest(self) -> None:
        raise NotImplementedError


@implements(proc=SnncNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySnncNeuronFixed(_SampleGate, _SavesRecord, AbstractPyLifModelFixed):
    """Lava's bit-accurate LIF dynamics (AbstractPyLifModelFixed: the same base, decay, wrap,
    clip and bias code as its PyLifModelBitAcc), gated per sample, with soft reset, CLIF and
    readout kinds."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)

    reset_sub: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    m: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    sig_lut: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=16)
    sig_mult: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)
    sig_shift: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=8)
    reset_lut: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    m_shift: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=8)

    def rest(self) -> None:
        self.u[:] = 0
        self.v[:] = 0
        self.m[:] = 0

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        if not self.live():
            self.s_out.send(np.zeros(self.v.shape))
            return
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        # CubaLIF: the reset owed from the last step, read before the update
        self.owed_reset = (self.v > self.effective_vth).astype(np.int64)
        if int(self.kind[0]) == KINDS["cuba"] and \
                int(self.cuba_reset[0]) == CUBA_RESETS["zero"]:
            self.v[self.owed_reset == 1] = 0
        self.subthr_dynamics(activation_in=a_in)  # Lava's own u and v update
        record, out = self.STEPS[int(self.kind[0])](self)
        self.keep(record)
        self.s_out.send(out)

    def _readout(self) -> tuple[np.ndarray, np.ndarray]:
        return self.v, np.zeros(self.v.shape)

    def _hard(self) -> tuple[np.ndarray, np.ndarray]:
        spikes = self.spiking_activation()
        self.reset_voltage(spike_vector=spikes)
        return spikes, spikes

    def _soft(self) -> tuple[np.ndarray, np.ndarray]:
        spikes = self.spiking_activation()
        self.v[spikes] -= self.reset_sub[0]
        return spikes, spikes

    def _clif_step(self) -> tuple[np.ndarray, np.ndarray]:
        spikes = self.spiking_activation()
        self._clif(spikes)
        return spikes, spikes

    def _cuba_step(self) -> tuple[np.ndarray, np.ndarray]:
        """snnc/ir/fixed.py FxCubaLIF, after Lava's u and v update (h = v)."""
        limit = self.max_uv_val - 1  # Lava's own v clip (uv_bitwidth)
        r, sub, mode = self.owed_reset, int(self.reset_sub[0]), int(self.cuba_reset[0])
        h = self.v.astype(np.int64)
        if mode == CUBA_RESETS["subtract"]:
            h = np.clip(h - r * sub, -limit, limit)
        elif mode == CUBA_RESETS["zero_all"]:
            h = h * (1 - r)
        s = (h > self.effective_vth).astype(np.int64)
        if int(self.reset_delay[0]) or mode == CUBA_RESETS["none"]:
            v = h
        elif mode == CUBA_RESETS["subtract"]:
            v = np.clip(h - (s - r) * sub, -limit, limit)
        else:
            v = np.clip(h * (1 - s + r), -limit, limit)
        self.v[:] = v
        return s, s

    def scale_threshold(self) -> None:  # as PyLifModelBitAcc: vth MSB-aligned by 6 bits
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def spiking_activation(self) -> np.ndarray:  # as PyLifModelBitAcc: strictly above
        return self.v > self.effective_vth

    def _clif(self, spikes: np.ndarray) -> None:
        h = self.v.astype(np.int64)
        s = spikes.astype(np.int64)
        lut = self.sig_lut
        half = 1 << (int(self.sig_shift[0]) - 1)
        idx = ((h * int(self.sig_mult[0]) + half) >> int(self.sig_shift[0])) + len(lut) // 2
        g = lut[np.clip(idx, 0, len(lut) - 1)]
        frac = FORMAT.sigmoid_frac_bits
        self.m[:] = ((self.m * g) >> frac) + (s << frac)
        j = np.minimum(self.m >> int(self.m_shift[0]), len(self.reset_lut) - 1)
        limit = self.max_uv_val - 1  # Lava's own v clip (uv_bitwidth)
        self.v[:] = np.clip(h - s * (int(self.reset_sub[0]) + self.reset_lut[j]), -limit, limit)

    #: Kind -> step: after the u and v update, (what the record keeps, what s_out sends).
    STEPS = {KINDS["hard"]: _hard, KINDS["soft"]: _soft, KINDS["clif"]: _clif_step,
             KINDS["readout"]: _readout, KINDS["cuba"]: _cuba_step}


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), as the reference simulator writes it (float_ops._sigmoid)."""
    with np.errstate(over="ignore"):  # exp(-z) -> inf for very negative z: sigmoid is 0 there
        return 1.0 / (1.0 + np.exp(-z))


@implements(proc=SnncNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySnncNeuronFloat(_SampleGate, _SavesRecord, PyLoihiProcessModel):
    """The float neurons, operation for operation as backends/refsim/float_ops.py (its
    `_lif`, `_clif`, `_readout`), in float64. The layer's input is Lava's sum of its synapses
    plus their biases."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    m: np.ndarray = LavaPyType(np.ndarray, float)
    threshold: np.ndarray = LavaPyType(np.ndarray, float)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    decay: np.ndarray = LavaPyType(np.ndarray, float)
    gain: np.ndarray = LavaPyType(np.ndarray, float)
    v_reset: np.ndarray = LavaPyType(np.ndarray, float)
    tau: np.ndarray = LavaPyType(np.ndarray, float)
    strict: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)
    current_decay: np.ndarray = LavaPyType(np.ndarray, float)
    READOUT_TYPE = np.float64

    def rest(self) -> None:
        self.v[:] = float(self.v_reset[0])
        self.m[:] = 0.0

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        if not self.live():
            self.s_out.send(np.zeros(self.v.shape))
            return
        x = a_in + self.bias
        record, out = self.STEPS[int(self.kind[0])](self, x)
        self.keep(record)
        self.s_out.send(out)

    def _readout(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.v[:] = float(self.decay[0]) * self.v + x
        return self.v, np.zeros(self.v.shape)

    def _hard(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spikes = self._lif(x, KINDS["hard"])
        return spikes, spikes

    def _soft(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spikes = self._lif(x, KINDS["soft"])
        return spikes, spikes

    def _clif_step(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spikes = self._clif(x)
        return spikes, spikes

    def _fires(self, h: np.ndarray) -> np.ndarray:
        return h > self.threshold if int(self.strict[0]) else h >= self.threshold

    def _lif(self, x: np.ndarray, kind: int) -> np.ndarray:
        rest, th = float(self.v_reset[0]), self.threshold
        h = rest + float(self.decay[0]) * (self.v - rest) + float(self.gain[0]) * x
        s = self._fires(h)
        self.v[:] = np.where(s, rest, h) if kind == KINDS["hard"] else h - s * th
        return s.astype(float)

    def _clif(self, x: np.ndarray) -> np.ndarray:
        h = float(self.decay[0]) * self.v + x
        s = self._fires(h).astype(np.float64)
        self.m[:] = self.m * sigmoid(h / float(self.tau[0])) + s
        self.v[:] = h - s * (self.threshold + sigmoid(self.m))
        return s

    def _cuba_step(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float_ops._cuba_lif's operations in its order; the current i is kept in m."""
        beta, th, mode = float(self.decay[0]), self.threshold, int(self.cuba_reset[0])
        v = self.v.copy()
        self.m[:] = float(self.current_decay[0]) * self.m + x
        i = self.m
        r = self._fires(v).astype(np.float64)
        if mode == CUBA_RESETS["subtract"]:
            h = beta * v + i - r * th
        elif mode == CUBA_RESETS["zero"]:
            h = beta * ((1 - r) * v) + i
        elif mode == CUBA_RESETS["zero_all"]:
            h = beta * v + i
            h = h - h * r
        else:
            h = beta * v + i
        s = self._fires(h).astype(np.float64)
        if int(self.reset_delay[0]) or mode == CUBA_RESETS["none"]:
            self.v[:] = h
        elif mode == CUBA_RESETS["subtract"]:
            self.v[:] = h - (s - r) * th
        else:
            self.v[:] = h - (s - r) * h
        return s, s

    #: Kind -> step: (what the record keeps, what s_out sends).
    STEPS = {KINDS["hard"]: _hard, KINDS["soft"]: _soft, KINDS["clif"]: _clif_step,
             KINDS["readout"]: _readout, KINDS["cuba"]: _cuba_step}
