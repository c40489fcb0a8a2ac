"""The golden node cases (tests/cases/*.json) on the reference simulator's torch engine
(`simulate(..., engine="torch")`) and int engine (`engine="int"`). Each checks what the numpy
engine checks in tests/core: every spike, state and readout. The torch engine differs only
in the integer convolution (torch's CPU conv2d), which the cases with an FxConv2d exercise;
the other cases run the same code and are here so that every case runs on every engine. The
int engine runs every fixed-point case on its own rules, and refuses a float graph.
"""

from __future__ import annotations


def test_case_on_refsim_torch(refsim_torch_case, golden):
    case = refsim_torch_case
    got = golden.refsim_values(case, engine="torch")
    assert golden.check(case, "refsim-torch", got) > 0


def test_the_torch_convolution_is_exercised(refsim_torch_case, golden, monkeypatch):
    # a case with an FxConv2d reaches torch's conv2d (not the numpy fallback); no other does
    from snnc.backends.refsim import torch_engine
    from snnc.ir import FxConv2d

    calls = []
    original = torch_engine.F.conv2d
    monkeypatch.setattr(torch_engine.F, "conv2d",
                        lambda *a, **kw: calls.append(a) or original(*a, **kw))
    golden.refsim_values(refsim_torch_case, engine="torch")
    assert bool(calls) == any(isinstance(n, FxConv2d) for n in refsim_torch_case.graph)


def test_case_on_refsim_int(refsim_torch_case, golden):
    import pytest

    from snnc.errors import SimulationInputError
    from snnc.ir import FxInput

    case = refsim_torch_case
    if not any(isinstance(n, FxInput) for n in case.graph):  # a float graph
        with pytest.raises(SimulationInputError, match="engine 'int' runs fixed-point"):
            golden.refsim_values(case, engine="int")
        return
    got = golden.refsim_values(case, engine="int")
    assert golden.check(case, "refsim-torch", got) > 0
