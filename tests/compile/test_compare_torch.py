"""The trace check's spike comparison (snnc.compare.compare_spikes) is the one value
comparator (snnc.compare.diff), worded for torch: same counts and first mismatch as the
golden and backend rungs report, sample before step."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.compare import LayerAgreement, compare_spikes
from snnc.errors import SimulationInputError
from snnc.tools.golden import compare


def test_the_trace_check_finds_the_same_first_mismatch_as_the_golden_rung():
    torch_spikes = np.zeros((2, 3, 4), np.float32)  # torch records float 0/1
    graph_spikes = torch_spikes.astype(bool)
    graph_spikes[1, 0, 2] = graph_spikes[0, 2, 3] = True  # first in (step, sample) order: 0, 2
    agreement = compare_spikes("sn", torch_spikes, graph_spikes)
    assert agreement == LayerAgreement("sn", 24, 2, (2, 0, (3,), 0.0, 1.0))
    golden = compare({"sn": graph_spikes}, {"sn": torch_spikes}, reference="torch",
                     order=["sn"]).first
    assert (golden["sample"], golden["step"], golden["neuron"]) == (2, 0, [3])
    assert compare_spikes("sn", torch_spikes, torch_spikes.astype(bool)).mismatches == 0


def test_the_trace_check_refuses_spikes_of_another_shape():
    with pytest.raises(SimulationInputError, match=r"layer 'sn': spike shapes differ: torch "
                                                   r"\(2, 3, 4\), graph \(2, 3, 5\)"):
        compare_spikes("sn", np.zeros((2, 3, 4)), np.zeros((2, 3, 5)))
