"""Fixtures shared by the test folders of both environments (no torch, no lava here)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from snnc.backends import refsim
from snnc.ir import CLIF, LIF, NODE_TYPES, Add, Conv2d, Dense, FxLIF, Graph, Input, Readout


def _load(stem: str):
    """tests/<stem>.py, loaded once by path: importlib mode keeps tests/ off sys.path."""
    name = f"snnc_tests_{stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).resolve().parent / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


GOLDEN = _load("golden_cases")


def pytest_generate_tests(metafunc):
    """A test argument named in GOLDEN.CASE_ARGS (refsim_case, lava_fixed_case, ...) runs
    the test once per golden case (tests/cases) that declares that argument's backend."""
    for arg, backend in GOLDEN.CASE_ARGS.items():
        if arg in metafunc.fixturenames:
            cases = GOLDEN.cases_for(backend)
            metafunc.parametrize(arg, cases, ids=[c.name for c in cases])


@pytest.fixture(scope="session")
def golden():
    """The golden-case module (tests/golden_cases.py): load_cases, check, refsim_values..."""
    return GOLDEN


def _residual(rng: np.random.Generator, clif: bool = False, c: int = 3, bias: float = 0.1,
              fc_bias: bool = False) -> Graph:
    """x -> conv a -> sn_a -> conv b -> sn_b -> conv c --+--> sn_c -> fc -> readout
                           `-> conv s (shortcut) ------'

    LIF hard and soft reset, or CLIF first; the shortcut is one hop shorter than the branch,
    so hardware timing must delay it."""
    def conv(name, src, k=3):
        return Conv2d(name=name, inputs=(src,), weight=rng.normal(0, 0.7, (c, c, k, k)),
                      bias=rng.normal(bias, 0.1, c), padding=(k // 2, k // 2))

    def neuron(name, src, kind):
        if kind == "clif":
            return CLIF(name=name, inputs=(src,), tau=2.0, threshold=0.6)
        return LIF(name=name, inputs=(src,), decay=0.5, threshold=0.6, compare=">=",
                   reset=kind)

    kinds = ["clif", "hard", "soft"] if clif else ["hard", "soft", "hard"]
    return Graph.build([
        Input(name="x", shape=(c, 5, 5)),
        conv("a", "x"), neuron("sn_a", "a", kinds[0]),
        conv("b", "sn_a"), neuron("sn_b", "b", kinds[1]),
        conv("c", "sn_b"), conv("s", "sn_a", 1), Add(name="sum", inputs=("c", "s")),
        neuron("sn_c", "sum", kinds[2]),
        Dense(name="fc", inputs=("sn_c",), weight=rng.normal(0, 0.3, (4, c * 25)),
              bias=rng.normal(0, 0.1, 4) if fc_bias else None),
        Readout(name="out", inputs=("fc",)),
    ])


@pytest.fixture(scope="session")
def residual_graph():
    """residual_graph(rng, clif=False, c=3, bias=0.1, fc_bias=False) -> Graph."""
    return _residual


@pytest.fixture(scope="session")
def hardware_record():
    """hardware_record(graph, x, timesteps) -> {layer: [T + latency, batch, ...]}."""
    return refsim.hardware_record


@pytest.fixture(scope="session")
def bad_inputs():
    """The bad-input module (tests/bad_inputs.py): build_inputs, run_bad, rewrite_header..."""
    return _load("bad_inputs")


@pytest.fixture(scope="session")
def bad_template(bad_inputs, tmp_path_factory):
    """The bad-input files, built once (a demo artifact, the quantized one, damaged and
    hostile variants); each row runs in its own copy (`bad_folder`)."""
    folder = tmp_path_factory.mktemp("bad-inputs") / "template"
    bad_inputs.build_inputs(folder)
    return folder


@pytest.fixture
def bad_folder(bad_inputs, bad_template, tmp_path):
    """A fresh copy of the bad-input files, with FIFOs and a private /dev/full node."""
    return bad_inputs.copy_inputs(bad_template, tmp_path / "work")


@pytest.fixture(scope="module")
def new_types():
    """Two new node types, registered as any node type is (NODE_TYPES), removed afterwards:
    a float neuron subclassing LIF and a fixed-point one subclassing FxLIF. Every stage
    that interprets neurons must refuse them (tests/core/test_rules.py, tests/lava)."""
    before = dict(NODE_TYPES)

    @dataclass(frozen=True, eq=False, kw_only=True)
    class PLIF(LIF):
        """LIF with a learnable decay (the next issue's PLIF, say)."""

        w_decay: float = 0.0

    @dataclass(frozen=True, eq=False, kw_only=True)
    class FxPLIF(FxLIF):
        """Its fixed-point form, with a field no table has heard of."""

        dw: int = 0

    yield PLIF, FxPLIF
    NODE_TYPES.clear()
    NODE_TYPES.update(before)
