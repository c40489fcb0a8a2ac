"""Lava itself works in this environment: a 3-neuron LIF, 5 steps, bit-accurate model.

The expected spikes are worked by hand from Lava 0.10's fixed-point LIF equations
(semantics.md section 4), not taken from a previous run.
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
