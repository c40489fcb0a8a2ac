"""The golden node cases (tests/cases/*.json) on the reference simulator's numpy engine, and
the rules every case and every runner follow (tests/golden_cases.py says the format and which
values each backend checks). The torch engine runs them in tests/compile, Lava in tests/lava.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from snnc.errors import GraphError


def test_case_on_refsim(refsim_case, golden):
    # the reference simulator exposes every expected value: spikes, states and readouts
    assert golden.check(refsim_case, "refsim", golden.refsim_values(refsim_case)) > 0


def test_every_case_runs_on_refsim_and_every_fixed_point_case_on_lava(golden):
    cases = golden.load_cases()
    assert len(cases) >= 24
    for case in cases:
        assert {"refsim", "refsim-torch"} <= set(case.backends), case.name
        # Lava runs a quantized graph on fixed_pt, a float one on floating_pt, never across
        lava, other = {"fixed": ("lava-fixed", "lava-float"),
                       "float": ("lava-float", "lava-fixed")}[case.precision]
        assert lava in case.backends and other not in case.backends, case.name


def test_every_declared_backend_checks_something_and_says_what_it_cannot(golden):
    for case in golden.load_cases():
        for backend in case.backends:
            keys = golden.checked_keys(case, backend)
            assert keys, (case.name, backend)
            hidden = set(case.expected) - set(keys)
            assert hidden == case.unchecked.get(backend, frozenset()), (case.name, backend)


def test_the_cases_cover_the_hand_worked_traces(golden):
    # every hand-computed case once in test_refsim_fixed.py and test_refsim_float.py
    names = {c.name for c in golden.load_cases()}
    assert names >= {
        "fx_lif_hard_reset", "fx_decay_rounds_toward_zero", "fx_bias_exponent",
        "fx_u_wraps_at_24_bits", "fx_v_clips_at_24_bits", "fx_soft_reset", "fx_clif",
        "fx_negative_weight_exponent", "fx_graded_input_rounding", "fx_conv_and_add",
        "lif_hard_reset", "lif_threshold_tie_strict", "lif_threshold_tie_inclusive",
        "lif_soft_reset", "lif_spikingjelly_nonzero_reset", "lif_stbp",
        "lif_per_channel_threshold", "clif_first_step", "readout_if_mean", "readout_if_sum",
        "readout_leaky_sum"}


def test_declared_output_types(golden):
    for case in golden.load_cases():
        for layer, text in case.types.items():
            assert str(case.graph[layer].type) == text, (case.name, layer)


def test_a_wrong_spike_fails_the_comparison(golden):
    case = next(c for c in golden.load_cases() if c.name == "fx_lif_hard_reset")
    got = golden.refsim_values(case)
    got["spikes/n"] = got["spikes/n"].copy()
    got["spikes/n"][2, 0, 0] = True  # t2: the hand trace has no spike there
    with pytest.raises(AssertionError, match="fx_lif_hard_reset on refsim: spikes/n"):
        golden.check(case, "refsim", got)


def test_a_state_off_by_its_last_bit_fails_the_comparison(golden):
    # v = .5 - sig(1) is checked to 1e-15: one ulp away passes, 1e-14 does not
    case = next(c for c in golden.load_cases() if c.name == "clif_first_step")
    got = golden.refsim_values(case)
    golden.check(case, "refsim", {**got, "states/n/v": np.nextafter(got["states/n/v"], 0)})
    with pytest.raises(AssertionError, match="states/n/v"):
        golden.check(case, "refsim", {**got, "states/n/v": got["states/n/v"] + 1e-14})


def test_a_hidden_value_must_be_declared_unchecked(golden):
    # Lava exposes no hidden layer's state: a case that does not say so fails on Lava
    case = next(c for c in golden.load_cases() if c.name == "fx_soft_reset")
    undeclared = replace(case, unchecked={})
    got = golden.refsim_values(case)
    golden.check(case, "lava-fixed", got)
    with pytest.raises(AssertionError, match=r"not exposed \['states/n/v'\], declared "
                                             r"unchecked \[\]"):
        golden.check(undeclared, "lava-fixed", got)


def test_a_state_the_backend_does_not_record_fails(golden):
    case = next(c for c in golden.load_cases() if c.name == "lif_soft_reset")
    extra = {**case.expected, "states/n/m": np.zeros((4, 1, 1))}
    with pytest.raises(AssertionError, match=r"states/n/m: the backend recorded only"):
        golden.check(replace(case, expected=extra), "refsim",
                     golden.refsim_values(case))


def test_a_missing_spiking_layer_fails(golden):
    case = next(c for c in golden.load_cases() if c.name == "readout_if_sum")
    got = {**golden.refsim_values(case), "spikes/r": np.zeros((3, 1, 1), bool)}
    with pytest.raises(AssertionError, match="spiking layers"):
        golden.check(case, "refsim", got)


def _write(tmp_path, **changes):
    base = {
        "why": ["a hand trace"],
        "graph": [{"op": "Input", "name": "x", "shape": [1]},
                  {"op": "Dense", "name": "syn", "inputs": ["x"],
                   "weight": {"array": [[1.0]]}},
                  {"op": "LIF", "name": "n", "inputs": ["syn"], "decay": 1.0,
                   "threshold": 1.0}],
        "inputs": [[1.0]], "timesteps": 1, "timing": "zero",
        "expected": {"spikes": {"n": [[[0]]]}},
        "backends": ["refsim"],
    }
    base.update(changes)
    path = tmp_path / "case.json"
    path.write_text(json.dumps(base))
    return path


@pytest.mark.parametrize("changes, message", [
    ({"timing": "hardware"}, r"case.json: timing = 'hardware' is invalid; accepted: \['zero'\]"),
    ({"backends": ["onnx"]}, r"case.json: backends = \['onnx'\] is invalid; expected a list "
                             r"drawn from"),
    ({"extra": 1}, r"case.json: keys = \['extra'\] is invalid"),
    ({"unchecked": {"lava-fixed": []}}, r"unchecked = \['lava-fixed'\] is invalid; expected "
                                        r"backends among \['refsim'\]"),
    ({"expected": {"spikes": {}}}, r"expected.spikes = \[\] is invalid; expected one entry "
                                   r"per spiking layer: \['n'\]"),
    ({"expected": {"spikes": {"n": [[[0]]]}, "readout": {"n": [[0]]}}},
     r"expected.readout = 'n' is invalid; 'n' \(LIF\) gives spikes"),
    ({"expected": {"spikes": {"n": [[[0]]]}, "readout": {"syn": [[0]]}}},
     r"expected.readout = 'syn' is invalid; expected the name of a neuron layer"),
    ({"graph": [{"op": "Input", "name": "x", "shape": [1],
                 "encoding": {"array": [1], "dtype": "str"}}]},
     r"graph\[0\].encoding = .* is invalid"),
])
def test_a_malformed_case_is_refused_naming_file_and_key(tmp_path, golden, changes, message):
    with pytest.raises(golden.CaseError, match=message):
        golden.load_case(_write(tmp_path, **changes))


def test_a_case_graph_is_checked_by_the_ir(tmp_path, golden):
    graph = [{"op": "Input", "name": "x", "shape": [1]},
             {"op": "LIF", "name": "n", "inputs": ["x"], "decay": 2.0, "threshold": 1.0}]
    with pytest.raises(GraphError, match="field decay = 2.0"):
        golden.load_case(_write(tmp_path, graph=graph))
