"""Lava itself works in this environment: a 3-neuron LIF, 5 steps, bit-accurate model.

The expected spikes are worked by hand from Lava 0.10's fixed-point LIF equations
(docs/semantics.md section 4), not taken from a previous run.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.timeout(120)  # a misconfigured Lava run can hang instead of raising


def test_three_lif_neurons_five_steps():
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor

    # du = 4095: u = u*(4096 - 4096) >> 12 + (a_in << 6) = 0 (no input connected).
    # dv = 0:    v = v*4096 >> 12 + u + (bias_mant << 0) = v + bias.  Fires when v > 10 << 6 = 640.
    # bias 100: v = 100, 200, ..., 500: never above 640 in 5 steps.
    # bias 200: v = 200, 400, 600, 800 -> fires at step 4 (index 3), reset to 0, then 200.
    # bias 700: v = 700 > 640 every step: fires every step.
    lif = LIF(shape=(3,), du=4095, dv=0, vth=10, bias_mant=np.array([100, 200, 700]), bias_exp=0)
    monitor = Monitor()
    monitor.probe(lif.s_out, 5)
    try:
        lif.run(condition=RunSteps(num_steps=5), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        spikes = monitor.get_data()[lif.name]["s_out"]
        v = lif.v.get()
    finally:
        lif.stop()
    assert spikes.astype(int).tolist() == [
        [0, 0, 1],
        [0, 0, 1],
        [0, 0, 1],
        [0, 1, 1],
        [0, 0, 1],
    ]
    assert v.tolist() == [500, 200, 0]


def test_model_search_imports_only_the_processes(residual_graph):
    """Lava imports every module in a Process's folder under its bare name while it looks
    for ProcessModels; anything else of the backend there (the backend's registration, the
    subprocess runner) would run a second time. snnc's Processes live alone in
    backends/lava/models, so a run warns of no module it could not import."""
    import warnings

    from snnc.backends.lava import lower

    graph = residual_graph(np.random.default_rng(0))
    x = np.random.default_rng(1).random((2, *graph[graph.inputs[0]].type.shape))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lower.run_float(graph, x, 2)
    searched = [str(w.message) for w in caught if "searching ProcessModels" in str(w.message)]
    assert searched == []
