"""The one value comparator (snnc.compare) and the callers built on it: golden.compare (the
backend and golden rungs) and the pass runner's debug mode. The torch trace check's use of
it is tested in tests/compile/test_compare_torch.py. Expected values are worked out by hand
from the arrays below."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.compare import Diff, diff
from snnc.tools.golden import compare
from snnc.tools.pass_runner import PassError, _compare


def three_flips():
    """[steps 2, samples 3, neurons 4] all False, and a copy with three values flipped; the
    first in C order (step, then sample, then neuron) is (0, 2, 3)."""
    want = np.zeros((2, 3, 4), bool)
    got = want.copy()
    for index in [(1, 0, 2), (0, 2, 3), (1, 2, 0)]:
        got[index] = True
    return got, want


def test_diff_counts_mismatches_and_finds_the_first_in_step_sample_neuron_order():
    got, want = three_flips()
    assert diff(got, want) == Diff(compared=24, mismatches=3, index=(0, 2, 3), got=1,
                                   expected=0)
    assert diff(want, want) == Diff(compared=24, mismatches=0)
    d = diff(got.astype(np.float64), want.astype(np.int64))  # values come back as plain
    assert (d.got, d.expected) == (1.0, 0) and type(d.got) is float and type(d.expected) is int


def test_diff_counts_every_value_of_a_missing_or_misshapen_record():
    _, want = three_flips()
    missing = diff(None, want)
    assert (missing.mismatches, missing.missing, missing.comparable) == (24, True, False)
    wrong = diff(np.zeros((2, 3, 5), bool), want)
    assert (wrong.mismatches, wrong.shape, wrong.index, wrong.comparable) == (
        24, (2, 3, 5), None, False)


def test_diff_compares_floats_to_a_relative_tolerance_only_when_asked():
    want = np.full((1, 2, 2), 0.1 + 0.2)
    got = np.full((1, 2, 2), 0.3)  # 0.1 + 0.2 != 0.3 in binary: 4 exact mismatches
    assert diff(got, want).mismatches == 4
    assert diff(got, want, rtol=1e-9).mismatches == 0
    got[0, 1, 0] = 0.3001
    assert diff(got, want, rtol=1e-9) == Diff(4, 1, (0, 1, 0), 0.3001, 0.1 + 0.2)
    spikes = np.array([[[1, 0]]])  # integers are compared exactly whatever rtol says
    assert diff(spikes + 0, 1 - spikes, rtol=0.5).mismatches == 2


def test_golden_compare_and_the_pass_runner_report_what_diff_finds():
    got, want = three_flips()
    cmp = compare({"s": got}, {"s": want}, reference="r", order=["s"], step_offset={"s": 1},
                  sample_offset=10)
    assert cmp.layers == {"s": 3} and cmp.compared == {"s": 24}
    assert cmp.first == {"layer": "s", "sample": 12, "step": -1, "neuron": [3], "backend": 1,
                         "reference": 0}
    shape = compare({"s": got[:1]}, {"s": want}, reference="r", order=["s"])
    assert shape.layers == {"s": 24} and shape.first == {
        "layer": "s", "detail": "the backend gave shape [1, 3, 4], expected [2, 3, 4]"}
    with pytest.raises(PassError, match=r"^pass p changed 3 spikes in layer 's' \(passes "
                                        r"before it: a, b\)$"):
        _compare("p", "a, b", {"s": want}, {"s": got})
    with pytest.raises(PassError, match=r"^pass p removed neuron layer 's'"):
        _compare("p", "a, b", {"s": want}, {})
    _compare("p", "a, b", {"s": want}, {"s": want.copy()})  # unchanged: no error
