"""Lava processes for what Lava's stock processes cannot express exactly.

`SnncNeuron` has Lava LIF's variables and a few more, and its fixed_pt model builds on
Lava's own fixed-point LIF model (`AbstractPyLifModelFixed`, the base of its bit-accurate
`PyLifModelBitAcc`): the decay, the 24-bit wrap of u, the clip of v and the bias
mantissa and exponent are Lava's code; the threshold test restates Lava's two lines. It
adds what the reference simulator's hardware timing defines and stock LIF lacks:

- a layer starts at its first valid step (`start`): before it, no update, so no bias;
- samples run back to back, each in a period of `period` steps; from step `end` of a period
  the neuron is silent and its state returns to zero (the synapse buffers drain meanwhile);
- the soft reset (subtract `reset_sub`), the fixed-point CLIF (snnc/ir/fixed.py), and the
  non-spiking readout;
- a record of every step's spikes (or readout v) read once at the end: Lava's Monitor costs
  about 65 us per value. (Var names must not shadow the model's own attributes: `log` is
  its logger and `start` its run-loop method; either breaks the runtime silently.)

`GradedSource` replays precomputed integer input frames (graded spikes).
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed

KINDS = {"hard": 0, "soft": 1, "clif": 2, "readout": 3}


class GradedSource(AbstractProcess):
    """Sends frames[t] at step t+1 (Lava counts from 1): integer payloads, one per pixel."""

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


class SnncNeuron(AbstractProcess):
    """Lava LIF's variables (same names, so Lava's fixed-point LIF code runs on them) plus the
    gating, reset kind, CLIF tables and step log (see module). Not a subclass of Lava's LIF
    process: that would let Lava pick a stock LIF model without these variables."""

    def __init__(self, *, shape: tuple[int, ...], steps: int, kind: str, start: int, end: int,
                 period: int, du: int, dv: int, vth: int, bias_mant: np.ndarray,
                 bias_exp: np.ndarray, reset_sub: int = 0, clif: dict | None = None) -> None:
        super().__init__(shape=shape)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)
        self.du = Var(shape=(1,), init=du)
        self.dv = Var(shape=(1,), init=dv)
        self.bias_mant = Var(shape=shape, init=bias_mant)
        self.bias_exp = Var(shape=shape, init=bias_exp)
        self.vth = Var(shape=(1,), init=vth)
        clif = clif or {}
        self.kind = Var(shape=(1,), init=KINDS[kind])
        self.first_step = Var(shape=(1,), init=start)
        self.stop_step = Var(shape=(1,), init=end)
        self.sample_steps = Var(shape=(1,), init=period)
        self.reset_sub = Var(shape=(1,), init=reset_sub)
        self.m = Var(shape=shape, init=0)
        self.sig_lut = Var(shape=(len(clif.get("sig_lut", [0])),),
                           init=np.asarray(clif.get("sig_lut", [0])))
        self.sig_mult = Var(shape=(1,), init=int(clif.get("sig_mult", 0)))
        self.sig_shift = Var(shape=(1,), init=int(clif.get("sig_shift", 1)))
        self.reset_lut = Var(shape=(len(clif.get("reset_lut", [0])),),
                             init=np.asarray(clif.get("reset_lut", [0])))
        self.m_shift = Var(shape=(1,), init=int(clif.get("m_shift", 0)))
        self.record = Var(shape=(steps,) + tuple(shape), init=np.zeros((steps,) + tuple(shape),
                                                                       np.int64))


@implements(proc=SnncNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySnncNeuronFixed(AbstractPyLifModelFixed):
    """Lava's bit-accurate LIF dynamics (AbstractPyLifModelFixed: the same base, decay, wrap,
    clip and bias code as its PyLifModelBitAcc), gated per sample, with soft reset, CLIF and
    readout kinds."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)

    kind: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    first_step: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=32)
    stop_step: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=32)
    sample_steps: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=32)
    reset_sub: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    m: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    sig_lut: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=16)
    sig_mult: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=48)
    sig_shift: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=8)
    reset_lut: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)
    m_shift: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=8)
    record: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=32)

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        local = (self.time_step - 1) % int(self.sample_steps[0])
        kind = int(self.kind[0])
        if not int(self.first_step[0]) <= local < int(self.stop_step[0]):
            if local >= int(self.stop_step[0]):  # between samples: back to the initial state
                self.u[:] = 0
                self.v[:] = 0
                self.m[:] = 0
            self.s_out.send(np.zeros(self.v.shape))
            return
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        self.subthr_dynamics(activation_in=a_in)  # Lava's own u and v update
        if kind == KINDS["readout"]:
            self.record[self.time_step - 1] = self.v
            self.s_out.send(np.zeros(self.v.shape))
            return
        spikes = self.spiking_activation()
        if kind == KINDS["hard"]:
            self.reset_voltage(spike_vector=spikes)
        elif kind == KINDS["soft"]:
            self.v[spikes] -= self.reset_sub[0]
        else:
            self._clif(spikes)
        self.record[self.time_step - 1] = spikes
        self.s_out.send(spikes)

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
        self.m[:] = ((self.m * g) >> 12) + (s << 12)
        j = np.minimum(self.m >> int(self.m_shift[0]), len(self.reset_lut) - 1)
        limit = (1 << 23) - 1
        self.v[:] = np.clip(h - s * (int(self.reset_sub[0]) + self.reset_lut[j]), -limit, limit)
