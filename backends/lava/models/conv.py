"""`SnncConv`: a convolution synapse as one Lava process, in memory proportional to its
weights and its neurons (never the dense [C_out*Ho*Wo, C_in*H*W] matrix, 128 GiB for a
ResNet-19 layer at 32x32).

Lava's own `Conv` process cannot stand in: it ignores `weight_exp` and mis-sizes its first
buffer (docs/semantics.md §6). This process keeps Lava `Dense`'s contract step for step, so
that the lowering can put it wherever a Dense would go:

- fixed_pt (`PySnncConvFixed`): the weights pass through Lava's own `clip_weights` and
  `truncate_weights` for their sign mode (what `PyDenseModelBitAcc` does to a matrix, done
  here to the kernel: both act value by value); each step the integer sum over the receptive
  field is shifted by `weight_exp` (left, or right with floor, as Dense does), once, after
  the sum;
- floating_pt (`PySnncConvFloat`): the float sum over the receptive field;
- both: what is sent at step t is the sum of the inputs received `delay + 1` steps before
  (Dense: delay 0, one step; DelayDense: a ring of `delay + 1` slots, cleared as it turns).

The sum is one matrix product per step over the input's sliding windows (im2col), in float64:
exact for integers while max|w| * max|x| * fan-in stays below 2**53, which the lowering checks
before it builds the process (`exact_in_float64`). Inputs and outputs are flat, in the (C, H, W)
C order of the IR.

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
from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights
from numpy.lib.stride_tricks import sliding_window_view

#: float64 holds every integer below this exactly.
FLOAT64_EXACT = 2 ** 53


class SnncConv(AbstractProcess):
    """A Conv2d synapse: `weights` [C_out, C_in, kH, kW] from a flat (C_in, H, W) input to a
    flat (C_out, Ho, Wo) output, `stride` and `padding` as the IR's, `delay` extra steps
    (0: Dense's one step). `weight_exp` and `num_weight_bits` at fixed_pt, as Dense's."""

    def __init__(self, *, weights: np.ndarray, in_shape: tuple, out_shape: tuple,
                 stride: tuple, padding: tuple, delay: int = 0, weight_exp: int = 0,
                 num_weight_bits: int = 8, **kwargs) -> None:
        super().__init__(weight_exp=int(weight_exp), num_weight_bits=int(num_weight_bits),
                         in_shape=tuple(int(d) for d in in_shape),
                         out_shape=tuple(int(d) for d in out_shape),
                         stride=tuple(int(s) for s in stride),
                         padding=tuple(int(p) for p in padding), **kwargs)
        n_in, n_out = int(np.prod(in_shape)), int(np.prod(out_shape))
        self.s_in = InPort(shape=(n_in,))
        self.a_out = OutPort(shape=(n_out,))
        self.weights = Var(shape=weights.shape, init=weights)
        self.a_buff = Var(shape=(n_out, int(delay) + 1), init=0)


def exact_in_float64(weights: np.ndarray, max_input: float, fan_in: int) -> bool:
    """Whether every partial sum of an integer convolution is an exact float64 integer."""
    bound = float(np.abs(weights).max(initial=0)) * float(max_input) * fan_in
    return bound < FLOAT64_EXACT


def shift_by_exponent(total: np.ndarray, exp: int) -> np.ndarray:
    """Dense's weight exponent on an integer sum: << exp, or a floor >> for a negative one."""
    return np.left_shift(total, exp) if exp > 0 else np.right_shift(total, -exp)


class DelayRing:
    """Lava Dense's contract for a synapse-like model: what it sends at step t is what
    `arrived()` returned `delay + 1` steps before, through `a_buff` (a ring of delay + 1
    slots, cleared as it turns). Shared by SnncConv and SnncMerge (merge.py)."""

    def run_spk(self) -> None:
        self.a_out.send(self.a_buff[:, 0])
        act = self.arrived()
        self.a_buff[:, 0] = 0
        self.a_buff = np.roll(self.a_buff, -1, axis=1)
        self.a_buff[:, -1] += act


class _ConvModel(DelayRing, PyLoihiProcessModel):
    """The step both precisions share; `_product` is each one's arithmetic, on `_kernel`
    ([C_out, C_in*kH*kW] float64), which each prepares from `weights` at its first step."""

    def __init__(self, proc_params) -> None:
        super().__init__(proc_params)
        self._kernel = None

    def _sum(self, s_in: np.ndarray) -> np.ndarray:
        """The sum over each output's receptive field, flat [C_out*Ho*Wo], float64."""
        c_in, h, w = self.proc_params["in_shape"]
        c_out, ho, wo = self.proc_params["out_shape"]
        (sh, sw), (ph, pw) = self.proc_params["stride"], self.proc_params["padding"]
        _, _, kh, kw = self.weights.shape
        x = np.asarray(s_in, np.float64).reshape(c_in, h, w)
        x = np.pad(x, ((0, 0), (ph, ph), (pw, pw)))
        win = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::sh, ::sw][:, :ho, :wo]
        # [C_in, Ho, Wo, kH, kW] -> [C_in*kH*kW, Ho*Wo], once per step
        cols = win.transpose(0, 3, 4, 1, 2).reshape(c_in * kh * kw, ho * wo)
        return (self._kernel @ cols).reshape(c_out * ho * wo)

    def arrived(self) -> np.ndarray:
        return self._product(self.s_in.recv())


@implements(proc=SnncConv, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySnncConvFixed(_ConvModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    weights: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)

    def _product(self, s_in: np.ndarray) -> np.ndarray:
        if self._kernel is None:  # as PyDenseModelBitAcc prepares its matrix, once
            sign_mode = determine_sign_mode(self.weights)
            w = clip_weights(self.weights, sign_mode, num_bits=8)
            w = truncate_weights(w, sign_mode, self.proc_params["num_weight_bits"])
            self._kernel = w.reshape(w.shape[0], -1).astype(np.float64)
        total = np.rint(self._sum(s_in)).astype(np.int64)
        return shift_by_exponent(total, self.proc_params["weight_exp"])


@implements(proc=SnncConv, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySnncConvFloat(_ConvModel):
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    a_buff: np.ndarray = LavaPyType(np.ndarray, float)
    weights: np.ndarray = LavaPyType(np.ndarray, float)

    def _product(self, s_in: np.ndarray) -> np.ndarray:
        if self._kernel is None:
            self._kernel = np.asarray(self.weights, np.float64).reshape(
                self.weights.shape[0], -1)
        return self._sum(s_in)
