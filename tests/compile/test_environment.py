"""The compile environment holds what the torch frontend will trace (docs/architecture.md)."""

from __future__ import annotations

import importlib.metadata as md


def test_torch_is_the_pinned_cpu_build():
    import torch

    assert torch.__version__.split("+")[0] == "2.13.0"
    assert md.version("snnc") == "0.1.0"


def test_spikingjelly_provides_clif_and_tdbn():
    from spikingjelly.activation_based import layer, neuron

    assert md.version("spikingjelly") == "2.0.0"
    assert hasattr(neuron, "ComplementaryLIFNode")
    assert hasattr(layer, "ThresholdDependentBatchNorm2d")

