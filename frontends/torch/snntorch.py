"""Converters for snnTorch's neurons (pinned: snntorch 1.0.0; `docs/semantics.md`, "snnTorch").

`snn.Leaky` and `snn.Synaptic` map exactly onto the IR's `CubaLIF` (snnTorch's reset rule,
Loihi's current-based arithmetic): Leaky with no current state (current_decay = 0), Synaptic
with current_decay = alpha. The values are read as numbers at trace time, learned ones
(`learn_beta`, `learn_alpha`, `learn_threshold`) included, with snnTorch's own clamp of beta
and alpha to [0, 1]. Every other snnTorch neuron class is refused with the reason. A class
is accepted only as itself: a subclass that overrides its dynamics is refused unless it has
a converter of its own. Registered only when snntorch imports.

The tracer hands a converter the module's first tensor argument, so this serves both loop
styles once the tracer passes the neuron's state (`spk, mem = lif(cur, mem)`) through; with
`init_hidden=True` a Sequential called once per step needs nothing more.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from snnc.frontends.torch.context import ConvertContext
from snnc.frontends.torch.registry import converter
from snnc.ir import CubaLIF

log = logging.getLogger(__name__)

#: The methods that define a Leaky's or Synaptic's forward equations.
_DYNAMICS = ("forward", "fire", "mem_reset", "_base_state_function", "_base_sub",
             "_base_zero", "_base_int", "_base_state_reset_zero", "fire_inhibition")

_ACCEPTED = ("accepted: snntorch.Leaky and snntorch.Synaptic (docs/semantics.md, "
             "\"snnTorch\"), or register a converter for the class")

#: snnTorch module classes with no exact lowering, and why. A class not in the installed
#: version is skipped.
REFUSED: dict[str, str] = {
    "Alpha": "an alpha neuron keeps an excitatory and an inhibitory current and builds its "
             "membrane from their difference (two current states), which CubaLIF's single "
             "current cannot express",
    "Lapicque": "its RC form scales the input by time_step / C and leaks by 1 - time_step / "
                "(R * C) with a reset of its own; rewrite it as snn.Leaky (beta = 1 - "
                "time_step / (R * C), the input scaled in the layer before)",
    "RLeaky": "its recurrent connection feeds its own spikes back as input (a recurrent "
              "synapse), which the feed-forward IR has no edge for",
    "RSynaptic": "its recurrent connection feeds its own spikes back as input (a recurrent "
                 "synapse), which the feed-forward IR has no edge for",
    "SLSTM": "a spiking LSTM: gated cell state (sigmoid and tanh gates), not a LIF",
    "SConv2dLSTM": "a spiking convolutional LSTM: gated cell state, not a LIF",
    "DeltaLeaky": "fires on the change of its membrane (|mem[t] - mem[t-1]| > threshold) and "
                  "never resets, which no IR neuron compares",
    "StateLeaky": "a parallel (whole-sequence) leaky integrator returning its membrane trace, "
                  "with no spiking reset rule",
    "LinearLeaky": "a parallel (whole-sequence) leaky integrator with a built-in linear layer",
    "LeakyParallel": "an RNN-based parallel leaky neuron with no reset, fed the whole sequence",
    "AssociativeLeaky": "an associative-memory neuron with learned internal projections, not "
                        "a LIF",
    "GradedSpikes": "scales spikes by a learned per-neuron factor (graded spikes); the IR's "
                    "spikes are binary",
}

_PROBE = (-2.0, -1e-3, -1e-30, 0.0, 1e-30, 1e-3, 2.0, 7.0)


def _check_heaviside(ctx: ConvertContext, m: nn.Module) -> None:
    """snnTorch's spike function must be the strict step `x > 0` in its forward (every
    surrogate in snntorch.surrogate is): probed on values around 0."""
    probe = torch.tensor(_PROBE, dtype=torch.float64)
    try:
        with torch.no_grad():
            out = m.spike_grad(probe)
        ok = isinstance(out, torch.Tensor) and torch.equal(
            out.to(torch.float64), (probe > 0).to(torch.float64))
    except Exception:  # noqa: BLE001 - any failure means it is not the step function
        ok = False
    if not ok:
        raise ctx.fail(m, f"spike_grad {getattr(m.spike_grad, '__name__', m.spike_grad)!r} "
                          "does not output the step x > 0 in its forward; accepted: a "
                          "snntorch.surrogate function (their forward is (x > 0))")


def _exact(ctx: ConvertContext, m: nn.Module, cls: type) -> None:
    """Refuse what makes `m` compute other than `cls`'s equations as read from snnTorch."""
    for method in _DYNAMICS:
        if getattr(type(m), method, None) is not getattr(cls, method, None):
            raise ctx.fail(m, f"subclasses {cls.__name__} and overrides {method}, so snnc "
                              f"cannot read its equations; {_ACCEPTED}")
    if m.inhibition:
        raise ctx.fail(m, "inhibition=True lets only the most excited neuron of each sample "
                          "fire (a winner-take-all over the layer); accepted: inhibition=False")
    if m.state_quant:
        raise ctx.fail(m, "state_quant quantizes the membrane with a user function every step; "
                          "accepted: state_quant=False (snnc quantizes for the target itself)")
    factor = ctx.array(m.graded_spikes_factor, "graded_spikes_factor")
    if not np.all(factor == 1.0):
        raise ctx.fail(m, f"graded_spikes_factor={factor.tolist()!r} sends graded spikes; the "
                          "IR's spikes are 0/1; accepted: graded_spikes_factor=1.0")
    _check_heaviside(ctx, m)


def _clamped(ctx: ConvertContext, m: nn.Module, field: str) -> float:
    """beta or alpha as snnTorch uses it: `.clamp(0, 1)`, one number for the layer."""
    value = getattr(m, field)
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        raise ctx.fail(m, f"{field} has shape {tuple(value.shape)} (one per neuron); it "
                          "broadcasts over the last axis of the input, not over channels; "
                          f"accepted: a single {field}")
    return min(max(ctx.scalar(value, field), 0.0), 1.0)


def _threshold(ctx: ConvertContext, m: nn.Module) -> float:
    th = m.threshold
    if isinstance(th, torch.Tensor) and th.numel() != 1:
        raise ctx.fail(m, f"threshold has shape {tuple(th.shape)}; accepted: a single "
                          "threshold (learned or not)")
    return ctx.scalar(th, "threshold")


def _cuba(ctx: ConvertContext, m: nn.Module, x: str, current_decay: float,
          zero: str = "zero") -> str:
    """`zero`: the CubaLIF reset snnTorch's "zero" is in this class."""
    reset = m.reset_mechanism
    if reset not in ("subtract", "zero", "none"):
        raise ctx.fail(m, f"reset_mechanism={reset!r}; accepted: 'subtract', 'zero', 'none'")
    reset = zero if reset == "zero" else reset
    return ctx.emit(CubaLIF(name=ctx.name, inputs=(x,), decay=_clamped(ctx, m, "beta"),
                            current_decay=current_decay, threshold=_threshold(ctx, m),
                            reset=reset, reset_delay=bool(m.reset_delay), compare=">"))


def register() -> None:
    try:
        import snntorch
    except ImportError:
        log.debug("snntorch not installed: its converters are not registered")
        return

    @converter(snntorch.Leaky)
    def leaky(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        """Leaky: mem[t] = beta * mem[t-1] + x[t] with snnTorch's reset rule."""
        _exact(ctx, m, snntorch.Leaky)
        return _cuba(ctx, m, x, current_decay=0.0)

    @converter(snntorch.Synaptic)
    def synaptic(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        """Synaptic: syn[t] = alpha * syn[t-1] + x[t]; mem from syn as Leaky's from x, but its
        zero reset zeroes the whole new membrane (CubaLIF reset "zero_all")."""
        _exact(ctx, m, snntorch.Synaptic)
        return _cuba(ctx, m, x, current_decay=_clamped(ctx, m, "alpha"), zero="zero_all")

    def refused(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        why = next(REFUSED[c.__name__] for c in type(m).__mro__ if c.__name__ in REFUSED
                   and getattr(snntorch, c.__name__, None) is c)
        raise ctx.fail(m, f"{why}; {_ACCEPTED}")

    refused.refuses = True  # not listed among the supported types
    refused_types = [getattr(snntorch, n) for n in REFUSED if hasattr(snntorch, n)]
    converter(*refused_types)(refused)


register()
