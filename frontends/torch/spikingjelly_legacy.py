"""Converters for the legacy spikingjelly API, `spikingjelly.clock_driven` (releases 0.0.0.0.12
to 0.0.0.0.14), in which most published SNN code of 2021-2023 is written (the CLIF authors',
STBP-tdBN reproductions, SEW-ResNet, TET). spikingjelly 2.0 removed it, so these register only
in the legacy environment (`.venv-legacy`; README, "Legacy spikingjelly"), where `snnc
compile` moves by itself when a model imports `clock_driven`.

The legacy neurons compute the equations of their 2.0 namesakes (`docs/semantics.md` §1,
"Legacy spikingjelly"): the same charge expressions, `neuronal_fire` as the surrogate's
forward of `v - v_threshold`, and the same hard and soft resets. They map through the helpers
of `spikingjelly.py`. Single-step classes (`LIFNode`) see `[N, ...]` per call, multi-step
ones (`MultiStepLIFNode`, backend 'torch') `[T, N, ...]`; the tracer tells which from the
input's layout. As with 2.0, a mapped class is accepted only as itself: a subclass that
overrides its update (the CLIF authors' `ComplementaryLIFNeuron(LIFNode)`) needs a converter
of its own, and without one is refused, never compiled as its base class.
"""

from __future__ import annotations

import logging

from torch import nn

from snnc.frontends.torch.context import ConvertContext
from snnc.frontends.torch.converters import batch_norm, layout_module
from snnc.frontends.torch.registry import converter
from snnc.frontends.torch.spikingjelly import (
    _exact,
    _lif_tau,
    _plif,
    _sj_lif,
    children_in_order,
)

log = logging.getLogger(__name__)

#: The methods that define a legacy neuron's forward equations.
DYNAMICS = ("neuronal_charge", "neuronal_fire", "neuronal_reset", "neuronal_adaptation",
            "forward")

ACCEPTED = ("accepted from spikingjelly.clock_driven: IFNode, LIFNode, ParametricLIFNode, "
            "their MultiStep* forms with backend='torch' (docs/semantics.md §1, \"Legacy "
            "spikingjelly\"), or register a converter for the class")

#: Legacy neuron classes with no exact lowering, and why (`{m}` is the module). A class not
#: in the installed release is skipped.
REFUSED: dict[str, str] = {
    "QIFNode": "quadratic membrane dynamics (QIF) have no exact fixed-point lowering",
    "EIFNode": "exponential membrane dynamics (EIF) have no exact fixed-point lowering",
    "AdaptiveBaseNode": "an adaptive two-variable neuron (membrane plus adaptation current w) "
                        "has no exact mapping onto the IR LIF",
    "LIAFNode": "outputs an analog activation act(v) (leaky integrate and analog fire), not "
                "spikes",
}

#: Legacy layer classes with no exact lowering, and why.
REFUSED_LAYERS: dict[str, str] = {
    "NeuNorm": "divides by a running average of its own input spikes (NeuNorm), a state the "
               "IR has no place for",
    "SynapseFilter": "passes its input through a synaptic low-pass filter and outputs the "
                     "analog current, not spikes",
    "DropConnectLinear": "samples its output from a normal distribution at inference (its "
                         "eval mode averages samples_num random draws)",
    "ElementWiseRecurrentContainer": "feeds its output back into its input at the next "
                                     "step, a recurrent connection the IR does not have",
    "LinearRecurrentContainer": "feeds its output back through a linear layer at the next "
                                "step, a recurrent connection the IR does not have",
    "MultiStepTemporalWiseAttention": "scales every step by attention weights computed from "
                                      "the whole input sequence",
}


def register() -> None:
    """Register the converters (nothing unless spikingjelly.clock_driven imports)."""
    try:
        from spikingjelly.clock_driven import layer, neuron
    except ImportError:
        log.debug("spikingjelly.clock_driven is not installed; its modules are not registered")
        return

    def exact(ctx: ConvertContext, m: nn.Module, cls: type) -> None:
        _exact(ctx, m, cls, dynamics=DYNAMICS, accepted=ACCEPTED)
        backend = getattr(m, "backend", "torch")
        if backend != "torch":
            raise ctx.fail(m, f"backend={backend!r}: snnc reproduces the float equations of "
                              "backend='torch' (the CPU path); construct it with "
                              "backend='torch' to compile it (the weights are the same)")

    @converter(neuron.IFNode, neuron.MultiStepIFNode)
    def if_node(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        # v = v + x
        exact(ctx, m, _own(m, neuron.IFNode, neuron.MultiStepIFNode))
        return ctx.emit(_sj_lif(ctx, m, x, decay=1.0, gain=1.0))

    @converter(neuron.LIFNode, neuron.MultiStepLIFNode)
    def lif(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        # v + (x - (v - v_reset)) / tau (decay_input), v - (v - v_reset) / tau + x (otherwise),
        # with v_reset read as 0 for a soft reset: 2.0's LIFNode charge
        exact(ctx, m, _own(m, neuron.LIFNode, neuron.MultiStepLIFNode))
        return ctx.emit(_lif_tau(ctx, m, x, ctx.scalar(m.tau, "tau")))

    @converter(neuron.ParametricLIFNode, neuron.MultiStepParametricLIFNode)
    def plif(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        # LIFNode's charge with 1/tau = w.sigmoid()
        exact(ctx, m, _own(m, neuron.ParametricLIFNode, neuron.MultiStepParametricLIFNode))
        return ctx.emit(_plif(ctx, m, x))

    def refused(ctx: ConvertContext, m: nn.Module, x: str) -> str:
        why = next(table[c.__name__] for table, module in ((REFUSED, neuron),
                                                          (REFUSED_LAYERS, layer))
                   for c in type(m).__mro__
                   if c.__name__ in table and getattr(module, c.__name__, None) is c)
        raise ctx.fail(m, f"{why.format(m=m)}; {ACCEPTED}")

    refused.refuses = True  # not listed among the supported types
    converter(*[getattr(neuron, n) for n in REFUSED if hasattr(neuron, n)],
              *[getattr(layer, n) for n in REFUSED_LAYERS if hasattr(layer, n)])(refused)

    converter(layer.SeqToANNContainer, layer.MultiStepContainer)(children_in_order)
    converter(layer.Dropout, layer.Dropout2d, layer.MultiStepDropout,
              layer.MultiStepDropout2d)(layout_module)  # the identity at inference
    # tdBN: a BatchNorm over the merged T*N batch, with running statistics at inference
    converter(layer.MultiStepThresholdDependentBatchNorm1d,
              layer.MultiStepThresholdDependentBatchNorm2d)(batch_norm)


def _own(m: nn.Module, single: type, multi: type) -> type:
    """The class whose equations `m` must keep: the multi-step form when it is one."""
    return multi if isinstance(m, multi) else single


register()
