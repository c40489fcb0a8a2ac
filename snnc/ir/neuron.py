"""Neurons: the stateful nodes. State starts afresh for every sample.

Each node's docstring is its definition at float precision; the reference simulator
(`snnc.backends.refsim`) implements exactly these equations, and `docs/semantics.md` says how
the trained models' neurons map onto them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from snnc.ir.node import Node
from snnc.ir.types import F32, SPIKE, TensorType

COMPARISONS = (">", ">=")
RESETS = ("hard", "soft")


@dataclass(frozen=True, eq=False, kw_only=True)
class Neuron(Node):
    """Family base: one input (the synaptic current), per-step output."""

    abstract: ClassVar[bool] = True
    #: Whether the output is spikes (True) or the membrane value (readout).
    spiking: ClassVar[bool] = True
    #: Names of the state variables the simulators can record.
    states: ClassVar[tuple[str, ...]] = ("v",)

    def _check_input(self, in_types: Sequence[TensorType]) -> TensorType:
        (x,) = in_types
        return x

    def _check_finite(self, *fields: str) -> None:
        for field in fields:
            value = getattr(self, field)
            finite = bool(np.all(np.isfinite(value))) if isinstance(value, np.ndarray) else (
                isinstance(value, int | float) and math.isfinite(value)
            )
            if not finite:
                raise self.field_error(field, value, "expected a finite number")

    def _check_choice(self, field: str, choices: tuple[str, ...]) -> None:
        value = getattr(self, field)
        if value not in choices:
            raise self.field_error(field, value, f"accepted: {', '.join(map(repr, choices))}")


@dataclass(frozen=True, eq=False, kw_only=True)
class LIF(Neuron):
    """Leaky integrate-and-fire, with hard or soft reset. Per step t, x the synaptic input:

        h[t] = r + decay * (v[t-1] - r) + gain * x[t]     r = v_reset (hard) or 0 (soft)
        s[t] = h[t] > threshold          (compare ">";  ">=" fires on equality too)
        v[t] = v_reset          if s[t]  (reset "hard")
             = h[t] - threshold if s[t]  (reset "soft")
             = h[t]             otherwise
        v[-1] = r

    decay = 1 is an IF neuron; STBP's LIF (u = tau*u*(1-o) + x, fires on >) is decay = tau,
    hard reset to 0; spikingjelly's LIFNode is decay = 1 - 1/tau, gain = 1/tau when it
    decays its input. threshold is a number, one per channel `(C,)`, or one per neuron.
    """

    decay: float
    threshold: float | np.ndarray
    compare: str = ">"
    reset: str = "hard"
    v_reset: float = 0.0
    gain: float = 1.0

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        x = self._check_input(in_types)
        self._check_choice("compare", COMPARISONS)
        self._check_choice("reset", RESETS)
        self._check_finite("decay", "threshold", "v_reset", "gain")
        if not 0.0 <= self.decay <= 1.0:
            raise self.field_error("decay", self.decay, "expected 0 <= decay <= 1 (1 = no leak)")
        if self.reset == "soft" and self.v_reset != 0.0:
            raise self.field_error("v_reset", self.v_reset, "a soft reset subtracts the threshold; "
                                   "v_reset must be 0.0")
        self.check_channel_param("threshold", x.shape)
        return TensorType(x.shape, SPIKE)


@dataclass(frozen=True, eq=False, kw_only=True)
class CLIF(Neuron):
    """Complementary LIF (Huang et al., ICML 2024; spikingjelly ComplementaryLIFNode):

        H[t] = (1 - 1/tau) * V[t-1] + X[t]
        S[t] = H[t] >= threshold          (compare ">=" as trained; ">" also accepted)
        M[t] = M[t-1] * sigmoid(H[t] / tau) + S[t]
        V[t] = H[t] - S[t] * (threshold + sigmoid(M[t]))
        V[-1] = M[-1] = 0

    The reset depends on the absolute scale of H: batch norm folds into the weights of a
    CLIF layer, never into its threshold.
    """

    tau: float = 2.0
    threshold: float = 1.0
    compare: str = ">="

    states: ClassVar[tuple[str, ...]] = ("v", "m")

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        x = self._check_input(in_types)
        self._check_choice("compare", COMPARISONS)
        self._check_finite("tau", "threshold")
        if not self.tau > 1.0:
            raise self.field_error("tau", self.tau, "CLIF needs tau > 1.0")
        return TensorType(x.shape, SPIKE)

    @property
    def decay(self) -> float:
        return 1.0 - 1.0 / self.tau


@dataclass(frozen=True, eq=False, kw_only=True)
class Readout(Neuron):
    """Non-spiking integrator that reads the network's answer:

        v[t] = decay * v[t-1] + x[t],   v[-1] = 0
        result = v[T-1] / T  if mean  else  v[T-1]

    decay = 1 and mean = True give the time average of the last layer's output, the usual
    `out.mean(0)` of SNN classifiers. Its per-step output is v[t].
    """

    decay: float = 1.0
    mean: bool = True

    spiking: ClassVar[bool] = False

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        x = self._check_input(in_types)
        self._check_finite("decay")
        if not 0.0 <= self.decay <= 1.0:
            raise self.field_error("decay", self.decay, "expected 0 <= decay <= 1")
        if not isinstance(self.mean, bool):
            raise self.field_error("mean", self.mean, "expected True or False")
        return TensorType(x.shape, F32)


CUBA_RESETS = ("subtract", "zero", "zero_all", "none")


@dataclass(frozen=True, eq=False, kw_only=True)
class CubaLIF(Neuron):
    """Current-based LIF with snnTorch's reset rule (snnTorch's Leaky and Synaptic, exactly;
    Loihi's CUBA neuron when the reset is owed at the spike's own step). Per step t, x the
    synaptic input, th the threshold, `>` the comparison (`compare`: ">" as snnTorch's
heaviside; ">=" fires on equality too, in r and s alike), i[-1] = v[-1] = 0:

        i[t] = current_decay * i[t-1] + x[t]                 (current_decay = 0: i[t] = x[t])
        r[t] = v[t-1] > th                                   the reset owed from step t-1
        h[t] = decay * v[t-1] + i[t] - r[t] * th             reset "subtract"
             = decay * ((1 - r[t]) * v[t-1]) + i[t]          reset "zero"     (Leaky's)
             = (1 - r[t]) * (decay * v[t-1] + i[t])          reset "zero_all" (Synaptic's)
             = decay * v[t-1] + i[t]                         reset "none"
        s[t] = h[t] > th
        v[t] = h[t]                                          if reset_delay (or "none")
             = h[t] - (s[t] - r[t]) * th                     "subtract", not reset_delay
             = h[t] - (s[t] - r[t]) * h[t]                   "zero"/"zero_all", not delayed

    With reset_delay (snnTorch's default) the state leaving step t is the membrane before
    its reset, and the reset is paid at step t+1 from r[t+1]. Without it the reset is paid
    at once, yet the next step still reads r from the stored v, as snnTorch does. decay
    and current_decay are in [0, 1]; threshold is a number, one per channel `(C,)` or one
    per neuron.
    """

    decay: float
    current_decay: float = 0.0
    threshold: float | np.ndarray
    reset: str = "subtract"
    reset_delay: bool = True
    compare: str = ">"

    states: ClassVar[tuple[str, ...]] = ("v", "i")

    def infer(self, in_types: Sequence[TensorType]) -> TensorType:
        x = self._check_input(in_types)
        self._check_choice("compare", COMPARISONS)
        self._check_choice("reset", CUBA_RESETS)
        self._check_finite("decay", "current_decay", "threshold")
        for field in ("decay", "current_decay"):
            if not 0.0 <= getattr(self, field) <= 1.0:
                raise self.field_error(field, getattr(self, field),
                                       f"expected 0 <= {field} <= 1")
        if not isinstance(self.reset_delay, bool):
            raise self.field_error("reset_delay", self.reset_delay, "expected True or False")
        self.check_channel_param("threshold", x.shape)
        return TensorType(x.shape, SPIKE)
