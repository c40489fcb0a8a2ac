"""The deep examples (ResNet-19 of STBP-tdBN, the CLIF authors' pre-activation ResNet-18) at
the seeds' 3x32x32 input: the checkpoints load with `weights_only=True` into the shipped
models, keep the seeds' depth, and trace to graphs that spike exactly like torch.

Cheap on purpose (a few digits32 images): the full test split's float, fixed and Lava
figures are `make demo`'s and the README's, not the test suite's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from snnc.backends.refsim import simulate
from snnc.datasets import digits32_split
from snnc.frontends.torch import trace_model

T = 4
IMAGES = 8
#: name -> (step mode of its factory, weight layers on the main path: convolutions and
#: linear layers, 1x1 shortcut convolutions not counted, as the "19" and "18" count them).
DEEP = {"stbp_resnet19": ("m", 19), "clif_resnet18": ("s", 18)}


def _load(load_example, examples_dir, name: str) -> nn.Module:
    model = load_example("models").MODELS[name](timesteps=T)
    state = torch.load(examples_dir / "checkpoints" / f"{name}.pt", weights_only=True)
    model.load_state_dict(state.get("net", state), strict=True)
    return model.eval()


@pytest.mark.parametrize("name", DEEP)
def test_deep_checkpoint_is_small_and_keeps_the_seeds_depth(name, load_example, examples_dir):
    assert (examples_dir / "checkpoints" / f"{name}.pt").stat().st_size < 2 * 1024 * 1024
    model = _load(load_example, examples_dir, name)
    main_path = [m for m in model.modules() if isinstance(m, nn.Linear)
                 or (isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1))]
    assert len(main_path) == DEEP[name][1]
    assert model.step_mode == DEEP[name][0]


@pytest.mark.parametrize("name", DEEP)
def test_deep_example_traces_and_spikes_like_torch(name, load_example, examples_dir,
                                                   record_spikes):
    model = _load(load_example, examples_dir, name)
    x = digits32_split()[2][:IMAGES]
    result = trace_model(model, torch.zeros(2, 3, 32, 32), T, input_shape=(3, 32, 32))
    expected, torch_out = record_spikes(model, x, T, DEEP[name][0])
    sim = simulate(result.graph, x, T)
    assert set(sim.spikes) == set(expected)
    for layer, spikes in expected.items():
        assert int((sim.spikes[layer] != spikes.astype(bool)).sum()) == 0, layer
    (readout,) = sim.readout.values()
    np.testing.assert_allclose(readout, torch_out, rtol=0, atol=1e-9)
