"""The golden node cases (tests/cases/*.json) on Lava: quantized graphs on fixed_pt
(`lower.run_fixed`), float graphs on floating_pt (`lower.run_float`).

Lava returns hardware-timed records (one step of delay per synaptic hop): each layer is read
in its window of the pipeline schedule (golden_cases.hardware_values, through
tools/check.windows), which gives back the trained model's zero-delay timing the cases are
written for. Checked: every spiking layer's spikes, every readout's final value and its v at
each step; a hidden layer's u, v or m is not recorded by Lava, and each case lists those it
carries under `unchecked` (asserted by golden_cases.check). One Lava run per case.

A case that does not declare a Lava precision must be refused by it before Lava starts: so
the declared set is exactly the set that runs, and nothing is skipped silently.
"""

from dataclasses import replace

import numpy as np
import pytest

from snnc.backends.lava import lower
from snnc.backends.lava.validate import LavaBuildError

pytestmark = pytest.mark.timeout(120)  # a Lava run that breaks inside a worker can hang


def test_case_on_lava_fixed_pt(lava_fixed_case, golden):
    case = lava_fixed_case
    records = lower.run_fixed(case.graph, case.inputs, case.timesteps)
    assert golden.check(case, "lava-fixed", golden.hardware_values(case, records)) > 0


def test_case_on_lava_floating_pt(lava_float_case, golden):
    case = lava_float_case
    records = lower.run_float(case.graph, case.inputs, case.timesteps)
    assert golden.check(case, "lava-float", golden.hardware_values(case, records)) > 0


def test_cases_not_declared_for_a_precision_are_refused_by_it(golden):
    refused = 0
    for case in golden.load_cases():
        for backend, run in (("lava-fixed", lower.run_fixed), ("lava-float", lower.run_float)):
            if backend in case.backends:
                continue
            with pytest.raises(LavaBuildError, match="fixed-point|float graphs"):
                run(case.graph, case.inputs, case.timesteps)
            refused += 1
    assert refused == len(golden.load_cases())  # each case declares exactly one precision


def test_lava_fails_a_case_written_with_the_wrong_rounding(golden):
    # the readout's decay rounds toward zero; a floor would give v = -3, -5, -6 (and the
    # readout -6). Lava's record must contradict those values at steps 1 and 2.
    case = next(c for c in golden.load_cases()
                if c.name == "fx_readout_decay_rounds_toward_zero")
    floor = {**case.expected, "states/r/v": np.array([[[-3.0]], [[-5.0]], [[-6.0]]]),
             "readout/r": np.array([[-6.0]])}
    got = golden.hardware_values(case, lower.run_fixed(case.graph, case.inputs, case.timesteps))
    golden.check(case, "lava-fixed", got)
    with pytest.raises(AssertionError, match="states/r/v"):
        golden.check(replace(case, expected=floor), "lava-fixed", got)
