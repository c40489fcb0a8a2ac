"""Converters for spikingjelly 2.0's neurons and layers (`docs/semantics.md` §1).

Every neuron class spikingjelly ships is either mapped exactly onto an IR neuron (LIF, CLIF)
or refused with the reason, so a model never compiles to something that spikes differently
from torch. A mapped class is accepted only as itself: a subclass that overrides its
dynamics (a method in `_DYNAMICS`) is refused unless it has a converter of its own.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from snnc.frontends.torch.context import ConvertContext
from snnc.frontends.torch.converters import batch_norm, layout_module
from snnc.frontends.torch.registry import converter
from snnc.ir import CLIF, LIF

log = logging.getLogger(__name__)

#: The methods that define a spikingjelly neuron's forward equations.
_DYNAMICS = ("single_step_functional_forward", "multi_step_functional_forward",
             "single_step_forward", "multi_step_forward", "materialize_states",
             "neuronal_charge", "neuronal_fire", "neuronal_reset", "forward")

#: What snnc maps exactly, for the refusals' "accepted" part.
_ACCEPTED = ("accepted: IFNode, LIFNode, ParametricLIFNode, SimpleIFNode, SimpleLIFNode, "
             "ComplementaryLIFNode, OTTTLIFNode, SLTTLIFNode, ActivationAwareIFNode, "
             "CUBALIFNode with c_decay=0 (docs/semantics.md §1), or register a converter "
             "for the class")

#: spikingjelly neuron classes with no exact lowering, and why (`{m}` is the module).
#: A class not in spikingjelly's installed version is skipped.
REFUSED: dict[str, str] = {
    "HalfThresholdIFNode": "starts every sample at v = v_threshold/2 and resets softly; IR "
                           "neurons start at their reset value (0 for a soft reset), so it has "
                           "no exact mapping",
    "ILIFNode": "fires multi-level spike counts (its MultiLevelSpikeCount surrogate emits up "
                "to {m.surrogate_function.max_spike_count} spikes a step), not binary spikes",
    "LIAFNode": "outputs an analog activation act(v) (leaky integrate and analog fire), not "
                "spikes",
    "KLIFNode": "scales and ReLU-clamps its membrane every step (relu(k * h)), which a LIF "
                "cannot express",
    "GatedLIFNode": "gates its leak, input and reset with learned per-step sigmoids (GLIF), "
                    "which a LIF cannot express",
    "QIFNode": "quadratic membrane dynamics (QIF) have no exact fixed-point lowering",
    "EIFNode": "exponential membrane dynamics (EIF) have no exact fixed-point lowering",
    "AdaptBaseNode": "an adaptive two-variable neuron (membrane plus recovery current w) has "
                     "no exact mapping onto the IR LIF",
    "IzhikevichNode": "quadratic membrane dynamics with a recovery current (Izhikevich) have "
                      "no exact fixed-point lowering",
    "RAFNode": "resonate-and-fire: an oscillating two-variable membrane (rotation by "
               "omega*dt) that a LIF cannot express",
    "PSN": "parallel spiking neuron: each step is a learned weighted sum of the inputs of all "
           "T steps, with no membrane recurrence",
    "MaskedPSN": "masked parallel spiking neuron: each step is a learned weighted sum of the "
                 "last k inputs, with no membrane recurrence",
    "SlidingPSN": "sliding parallel spiking neuron: each step is a learned weighted sum of "
                  "the last k inputs, with no membrane recurrence",
    "FlexSN": "its dynamics are a user-defined core function, which snnc cannot read",
    "FewSpikeNode": "few-spike coding emits weighted spikes from a table over K phases, not "
                    "binary spikes of one membrane",
    "TernaryIFNode": "emits ternary spikes {{-1, 0, +1}}; IR neurons emit binary spikes",
    "TernaryLIFNode": "emits ternary spikes {{-1, 0, +1}}; IR neurons emit binary spikes",
    "STBIFNode": "signed multi-threshold integrate-and-fire (SpikeZIP) emits signed, scaled "
                 "spikes",
    "DSRIFNode": "emits spikes of amplitude v_threshold and fires at alpha*v_threshold (DSR), "
                 "not unit spikes",
    "DSRLIFNode": "emits spikes of amplitude v_threshold and fires at alpha*v_threshold "
                  "(DSR), not unit spikes",
    "ILCBaseNode": "adds a learned Conv1d of each step's spikes to the next step's input "
                   "inside the neuron (inter-layer connection), a recurrent synapse the IR "
                   "does not have",
    "NoisyBaseNode": "a noisy spiking neuron (NoisySNN): current-based dynamics plus injected "
                     "noise, which a LIF cannot express",
    "NoisyNonSpikingBaseNode": "a noisy non-spiking membrane (NoisySNN) has no exact mapping",
    "MPBNBaseNode": "normalizes its membrane potential by batch norm every step (MPBN), "
                    "which a LIF cannot express",
    "NonSpikingIFNode": "a non-spiking integrator that decodes its own membrane sequence "
                        "(decode={m.decode!r}); snnc reads a model's answer from a sum or mean "
                        "over time of a layer's output: for decode='last_mem' write "
                        "`x_seq.sum(0)`, the same value",
    "NonSpikingLIFNode": "a non-spiking leaky membrane v += (x - v)/tau decoded inside the "
                         "module (decode={m.decode!r}); the IR readout has no input gain 1/tau "
                         "and reads a model's answer from a sum or mean over time of a "
                         "layer's output",
}


def register() -> None:
    """Register the converters (nothing when spikingjelly is not installed)."""
    try:
        from spikingjelly.activation_based import layer, neuron
    except ImportError:
        log.debug("spikingjelly is not installed; its modules are not registered")
        return

    @converter(neuron.LIFNode)
    def lif(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        # h = v + (x - (v - v_reset)) / tau   (decay_input)   = r + (1-1/tau)(v - r) + x/tau
        # h = v - (v - v_reset) / tau + x      (otherwise)     = r + (1-1/tau)(v - r) + x
        _exact(ctx, m, neuron.LIFNode)
        return ctx.emit(_lif_tau(ctx, m, x, ctx.scalar(m.tau, "tau")))

    @converter(neuron.SimpleLIFNode)
    def simple_lif(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        # v + (v_reset - v + x) / tau, or v + (v_reset - v) / tau + x: LIFNode's charge
        _exact(ctx, m, neuron.SimpleLIFNode)
        _starts_at_zero(ctx, m)
        return ctx.emit(_lif_tau(ctx, m, x, ctx.scalar(m.tau, "tau")))

    @converter(neuron.ParametricLIFNode)
    def plif(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        # LIFNode's equations with 1/tau = sigmoid(w), w learned (functional.plif_step)
        _exact(ctx, m, neuron.ParametricLIFNode)
        return ctx.emit(_plif(ctx, m, x))

    @converter(neuron.IFNode)
    def if_node(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        _exact(ctx, m, neuron.IFNode)
        return ctx.emit(_sj_lif(ctx, m, x, decay=1.0, gain=1.0))

    @converter(neuron.SimpleIFNode)
    def simple_if(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        _exact(ctx, m, neuron.SimpleIFNode)
        _starts_at_zero(ctx, m)
        return ctx.emit(_sj_lif(ctx, m, x, decay=1.0, gain=1.0))

    def online_lif(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        # OTTT/SLTT at inference: LIFNode's step with the Heaviside (any surrogate)
        _exact(ctx, m, next(c for c in type(m).__mro__ if c in online), heaviside=False)
        return ctx.emit(_lif_tau(ctx, m, x, ctx.scalar(m.tau, "tau")))

    online = [getattr(neuron, n) for n in ("OTTTLIFNode", "SLTTLIFNode") if hasattr(neuron, n)]
    if online:
        converter(*online)(online_lif)

    @converter(neuron.CUBALIFNode)
    def cuba_lif(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        # c = c_decay*c + x; h = v_decay*v + c: with c_decay = 0, h = v_decay*v + x, which
        # is the LIF's r + decay*(v - r) + x when r = 0 (soft reset, or a hard reset to 0)
        _exact(ctx, m, neuron.CUBALIFNode)
        c_decay = ctx.scalar(m.c_decay, "c_decay")
        if c_decay != 0.0:
            raise ctx.fail(m, f"c_decay={c_decay!r}: a current-based LIF keeps a synaptic "
                              "current, which the IR LIF does not have; accepted: c_decay=0 "
                              "(no current memory) with v_reset 0.0 or None")
        if m.v_reset is not None and ctx.scalar(m.v_reset, "v_reset") != 0.0:
            raise ctx.fail(m, f"v_reset={m.v_reset!r}: its membrane decays toward 0, not toward "
                              "v_reset; accepted: v_reset=0.0 or None")
        decay = ctx.scalar(m.v_decay, "v_decay")
        if not 0.0 <= decay <= 1.0:
            raise ctx.fail(m, f"v_decay={decay!r}; accepted: 0 <= v_decay <= 1")
        return ctx.emit(_sj_lif(ctx, m, x, decay=decay, gain=1.0))

    @converter(neuron.ActivationAwareIFNode)
    def activation_aware_if(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        # h = v + x; fires on h + v_offset >= v_threshold; resets by v_threshold (soft) or
        # to v_reset (hard): a hard reset is an IF with threshold v_threshold - v_offset
        _exact(ctx, m, neuron.ActivationAwareIFNode)
        threshold = np.asarray(ctx.array(m.v_threshold, "v_threshold"), np.float64)
        offset = np.asarray(ctx.array(m.v_offset, "v_offset"), np.float64)
        if m.v_reset is None and np.any(offset != 0.0):
            raise ctx.fail(m, "a soft reset with a nonzero v_offset fires at v_threshold - "
                              "v_offset but subtracts v_threshold; the IR subtracts the firing "
                              "threshold; accepted: v_offset=0, or a hard reset (v_reset a "
                              "number)")
        fire = threshold - offset
        if fire.ndim == 1 and fire.size > 1:
            ndim = len(ctx.shape(x)) + 1  # the step's [N, ...] the module sees
            if m.channel_dim % ndim != 1:
                raise ctx.fail(m, f"channel_dim={m.channel_dim!r} puts its per-channel "
                                  f"threshold on axis {m.channel_dim % ndim} of an [N, ...] "
                                  f"input of {ndim} axes; accepted: the channel axis 1")
        else:
            fire = float(fire.reshape(-1)[0])
        hard = m.v_reset is not None
        return ctx.emit(LIF(name=ctx.name, inputs=(x,), decay=1.0, gain=1.0, threshold=fire,
                            compare=">=", reset="hard" if hard else "soft",
                            v_reset=ctx.scalar(m.v_reset, "v_reset") if hard else 0.0))

    @converter(neuron.ComplementaryLIFNode)
    def clif(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        _exact(ctx, m, neuron.ComplementaryLIFNode)
        return ctx.emit(CLIF(name=ctx.name, inputs=(x,), tau=ctx.scalar(m.tau, "tau"),
                             threshold=ctx.scalar(m.v_threshold, "v_threshold"), compare=">="))

    def refused(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        why = next(REFUSED[c.__name__] for c in type(m).__mro__ if c.__name__ in REFUSED
                   and getattr(neuron, c.__name__, None) is c)
        raise ctx.fail(m, f"{why.format(m=m)}; {_ACCEPTED}")

    refused.refuses = True  # not listed among the supported types
    refused_types = [getattr(neuron, n) for n in REFUSED if hasattr(neuron, n)]
    converter(*refused_types)(refused)

    converter(layer.SeqToANNContainer)(children_in_order)
    converter(layer.Dropout)(layout_module)
    converter(layer.ThresholdDependentBatchNorm1d, layer.ThresholdDependentBatchNorm2d)(batch_norm)


def children_in_order(ctx: ConvertContext, m: nn.Module, x: str) -> str:
    """A container that applies its children in order to every step (SeqToANNContainer on
    the merged [T*N, ...] batch, the legacy MultiStepContainer step by step): per sample,
    the children in order."""
    for key, child in m.named_children():
        x = ctx.convert(child, x, ctx.child_name(key))
    return x


def _exact(ctx: ConvertContext, m: nn.Module, cls: type, heaviside: bool = True,
           dynamics: tuple[str, ...] = _DYNAMICS, accepted: str = _ACCEPTED) -> None:
    """Refuse what would make `m` compute other than `cls`'s float equations: a subclass
    that overrides them (a method in `dynamics`), reduced neuron precision, or a forward
    that is not the Heaviside. `detach_reset`, `store_v_seq` and the surrogate's gradient
    change neither. `accepted` ends the refusals."""
    for method in dynamics:
        if getattr(type(m), method, None) is not getattr(cls, method, None):
            raise ctx.fail(m, f"subclasses {cls.__name__} and overrides {method}, so snnc "
                              f"cannot read its equations; {accepted}")
    precision = getattr(m, "_neuron_precision", None)
    if precision is not None:
        raise ctx.fail(m, f"runs at reduced neuron precision {precision!r}; snnc reproduces "
                          "the float32 equations: remove the neuron precision setting")
    if heaviside:
        _check_heaviside(ctx, m)


_PROBE = (-2.0, -1e-3, -1e-30, 0.0, 1e-30, 1e-3, 2.0, 7.0)


def _check_heaviside(ctx: ConvertContext, m: nn.Module) -> None:
    """The forward of the spike function must be the Heaviside step `x >= 0` (spikingjelly's
    surrogates in spiking mode), the comparison the IR's `>=` neurons make."""
    fn = getattr(m, "surrogate_function", None)
    probe = torch.tensor(_PROBE, dtype=torch.float64)
    try:
        with torch.no_grad():
            out = fn(probe)
        ok = isinstance(out, torch.Tensor) and torch.equal(
            out.to(torch.float64), (probe >= 0).to(torch.float64))
    except Exception:  # noqa: BLE001 - any failure means it is not the step function
        ok = False
    if not ok:
        raise ctx.fail(m, f"uses a non-spiking surrogate: its surrogate_function "
                          f"{type(fn).__name__} does not output binary spikes (x >= 0) in its "
                          "forward; accepted: a spikingjelly surrogate with spiking=True")


def _starts_at_zero(ctx: ConvertContext, m: nn.Module) -> None:
    """SimpleBaseNode starts v at 0, where the IR's hard-reset LIF starts at v_reset."""
    if m.v_reset is not None and ctx.scalar(m.v_reset, "v_reset") != 0.0:
        raise ctx.fail(m, f"v_reset={m.v_reset!r}: this Simple* neuron starts every sample at "
                          "v = 0, not at v_reset as IR neurons do; accepted: v_reset=0.0 or "
                          "None, or the IFNode/LIFNode equivalent")


def _lif_tau(ctx: ConvertContext, m: nn.Module, x: str, tau: float) -> LIF:
    """LIFNode's charge: decay 1 - 1/tau, gain 1/tau when it decays its input."""
    if not tau >= 1.0:
        raise ctx.fail(m, f"tau={tau!r} gives a leak 1 - 1/tau outside [0, 1]; accepted: "
                          "tau >= 1")
    return _sj_lif(ctx, m, x, decay=1.0 - 1.0 / tau, gain=1.0 / tau if m.decay_input else 1.0)


def _plif(ctx: ConvertContext, m: nn.Module, x: str) -> LIF:
    """ParametricLIFNode's charge: LIFNode's with 1/tau = sigmoid(w), w learned."""
    w = torch.as_tensor(ctx.array(m.w, "w"), dtype=torch.float64)
    q = ctx.scalar(torch.sigmoid(w), "w")
    return _sj_lif(ctx, m, x, decay=1.0 - q, gain=q if m.decay_input else 1.0)


def _sj_lif(ctx: ConvertContext, m: nn.Module, x: str, decay: float, gain: float) -> LIF:
    threshold = ctx.scalar(m.v_threshold, "v_threshold")
    if m.v_reset is None:
        return LIF(name=ctx.name, inputs=(x,), decay=decay, gain=gain, threshold=threshold,
                   compare=">=", reset="soft")
    return LIF(name=ctx.name, inputs=(x,), decay=decay, gain=gain, threshold=threshold,
               compare=">=", reset="hard", v_reset=ctx.scalar(m.v_reset, "v_reset"))


register()
