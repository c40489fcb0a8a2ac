"""`SnncMerge`: the merge of a split fan-in (snnc/ir/split.py) as one Lava process.

Its InPort is connected to the partial-sum synapses of every group (a Dense or an SnncConv
each, exponent 0), whose outputs Lava sums at the port: that sum is what the relay neurons
send as graded spikes, one-to-one, in the step they receive it. The merge then keeps Dense's
contract (what it sends at step t is what it received `delay + 1` steps before) and applies
the weight exponent once, to the whole sum:

    a_out[t + 1 + delay] = (sum_g P_g[t]) << weight_exp      (a floor >> for a negative one)

so the neuron receives the unsplit synapse's input bit for bit, one hop later. fixed_pt only:
splits exist only in fixed-point graphs.

(No `from __future__ import annotations` here: see processes.py.)
"""

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

from snnc.backends.lava.models.conv import DelayRing, shift_by_exponent


class SnncMerge(AbstractProcess):
    """The merge of `shape` neurons' partial sums, `weight_exp` applied once, `delay` extra
    steps (0: Dense's one step)."""

    def __init__(self, *, shape: tuple, weight_exp: int = 0, delay: int = 0, **kwargs) -> None:
        super().__init__(weight_exp=int(weight_exp), **kwargs)
        self.a_in = InPort(shape=shape)
        self.a_out = OutPort(shape=shape)
        self.a_buff = Var(shape=(int(np.prod(shape)), int(delay) + 1), init=0)


@implements(proc=SnncMerge, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySnncMergeFixed(DelayRing, PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def arrived(self) -> np.ndarray:
        total = np.asarray(self.a_in.recv(), np.int64)  # the partial sums, summed at the port
        return shift_by_exponent(total, self.proc_params["weight_exp"])
