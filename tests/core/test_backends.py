"""The backend contract (snnc.backends): the registry, the built-in backends' declarations,
what the command line takes from them, and a backend that is neither built in nor
hardware-timed going through `snnc check` by its declarations alone.

Runs in both environments (no torch, no Lava run)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import snnc.backends as contract
from snnc.artifact import Artifact
from snnc.backends import (
    Backend,
    BackendError,
    BackendOption,
    backends,
    create_backend,
    get_backend,
    register,
)
from snnc.backends.refsim import hardware_record, simulate
from snnc.tools.check import Thresholds, run_check
from snnc.tools.cli import check, cli
from snnc.tools.cli import simulate as simulate_command
from snnc.tools.golden import make_golden

T = 3


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(4).random((12, 3, 5, 5))


@pytest.fixture
def registry(monkeypatch):
    """The registry, restored after the test (registrations made in it are dropped)."""
    backends()  # the built-in ones loaded first
    monkeypatch.setattr(contract, "_REGISTRY", dict(contract._REGISTRY))
    return contract._REGISTRY


def _declared(name="dummy", **attrs) -> type[Backend]:
    body = {"name": name, "description": "a test backend", "timing": "zero",
            "precisions": ("fixed",), "labels": {"fixed": "dummy"},
            "run": lambda self, graph, x, timesteps: {}} | attrs
    return type("Dummy", (Backend,), body)


def test_the_builtin_backends_declare_what_check_needs():
    found = backends()
    assert list(found)[:2] == ["refsim", "lava"]
    refsim, lava = found["refsim"], found["lava"]
    assert (refsim.timing, lava.timing) == ("hardware", "hardware")
    assert refsim.precisions == lava.precisions == ("fixed", "float")
    assert refsim.is_reference and not lava.is_reference
    assert not refsim.needs_fixed_point and lava.needs_fixed_point
    assert refsim.float_rung is None and lava.float_rung == "lava floating_pt"
    assert (refsim.check_samples, lava.check_samples) == (None, 32)
    assert [o.name for o in refsim.options] == ["engine", "device"]
    assert [o.name for o in lava.options] == ["python", "timeout"]


def test_importing_the_contract_or_the_registry_loads_neither_torch_nor_lava():
    """The registry loads the built-in backends (Lava's through its subprocess runner) in
    any environment: nothing imports torch, lava-nc, onnx or onnxruntime."""
    code = ("import sys, snnc.backends as b\n"
            "assert 'snnc.backends.refsim' not in sys.modules, 'refsim at import'\n"
            "assert 'snnc.backends.lava' not in sys.modules, 'lava backend at import'\n"
            "assert sorted(b.backends()) == ['lava', 'onnx', 'refsim']\n"
            "import snnc.tools.cli\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lava', "
            "'onnx', 'onnxruntime'))\n"
            "assert not bad, bad\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_name_registered_twice_is_an_error(registry):
    register(_declared("dummy"))
    with pytest.raises(BackendError, match="backend 'dummy' is already registered"):
        register(_declared("dummy"))
    with pytest.raises(BackendError, match="backend 'refsim' is already registered"):
        register(_declared("refsim"))
    assert registry["refsim"] is not None and registry["refsim"].name == "refsim"


@pytest.mark.parametrize("attrs, message", [
    ({"timing": "fast"}, "timing 'fast'; expected one of hardware, zero"),
    ({"precisions": ("double",)}, "precisions ('double',)"),
    ({"precisions": ("fixed", "float")}, "each with a label"),
    ({"float_rung": "dummy float"}, "does not run precision 'float'"),
    ({"name": "two words"}, "name must be an identifier"),
])
def test_a_backend_that_declares_nonsense_is_refused(registry, attrs, message):
    with pytest.raises(BackendError, match=message.replace("(", r"\(").replace(")", r"\)")):
        register(_declared(**attrs))
    assert "dummy" not in registry


def test_an_unknown_backend_names_the_registered_ones(registry):
    with pytest.raises(BackendError, match=r"unknown backend 'tpu'; registered: refsim, lava, "
                                           r"onnx"):
        get_backend("tpu")
    register(_declared("tpu_like"))
    with pytest.raises(BackendError, match=r"registered: refsim, lava, onnx, tpu_like"):
        get_backend("tpu")
    assert get_backend("tpu_like").name == "tpu_like"


def test_unknown_options_are_refused_and_defaults_apply():
    with pytest.raises(BackendError, match=r"backend 'lava' has no option 'pyhton'; its "
                                           r"options: python, timeout"):
        create_backend("lava", pyhton="/usr/bin/python3")
    with pytest.raises(BackendError, match=r"backend 'refsim' has no option 'timeout'"):
        create_backend("refsim", timeout=5.0)
    lava = create_backend("lava", timeout=None)  # None: the option's default
    assert lava.settings == {"python": None, "timeout": 1800.0}
    assert get_backend("lava").options_from({"lava_timeout": 9.0, "lava_python": None,
                                             "samples": 3}) == {"timeout": 9.0, "python": None}


def test_the_command_line_takes_choices_and_options_from_the_registry():
    for command in (check, simulate_command):
        params = {p.name: p for p in command.params}
        assert list(params["backend"].type.choices) == list(backends())
        for kind in backends().values():
            for option in kind.options:  # each option reaches the backend by its flag
                flag = f"--{kind.name}-{option.name}"
                assert flag in params[f"{kind.name}_{option.name}"].opts, flag


def test_an_unknown_backend_on_the_command_line_lists_the_choices(tmp_path):
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, ["check", str(tmp_path / "m.snnc"), "--backend", "tpu"])
    assert result.exit_code == 2
    assert "'tpu' is not one of 'refsim', 'lava', 'onnx'" in result.output


def test_refsim_runs_the_hardware_record_of_the_precision_asked(compiled, inputs):
    art = Artifact(compiled.graph, reference=compiled.reference, target="loihi2")
    refsim = create_backend("refsim", art)
    for precision, graph in (("fixed", compiled.graph), ("float", compiled.reference)):
        got = refsim.run(precision, inputs[:3], T)
        want = hardware_record(graph, inputs[:3], T)
        assert got.keys() == want.keys()
        for layer in want:
            np.testing.assert_array_equal(got[layer], want[layer], err_msg=layer)
    np.testing.assert_array_equal(refsim.run(compiled.graph, inputs[:2], T)["sn_c"],
                                  hardware_record(compiled.graph, inputs[:2], T)["sn_c"])
    with pytest.raises(BackendError, match="runs precisions fixed, float, not 'double'"):
        refsim.run("double", inputs, T)
    float_only = create_backend("refsim", Artifact(compiled.reference), "f.snnc")
    with pytest.raises(BackendError, match=r"f.snnc holds a float graph .* precision 'float'"):
        float_only.run("fixed", inputs, T)
    with pytest.raises(BackendError, match="bound to no artifact"):
        create_backend("refsim").run("fixed", inputs, T)


def test_lava_refuses_a_precision_before_it_starts(compiled, tmp_path):
    lava = create_backend("lava", Artifact(compiled.reference), tmp_path / "f.snnc",
                          python=tmp_path / "no-python")
    with pytest.raises(BackendError, match="holds a float graph"):
        lava.run("fixed", np.zeros((1, 3, 5, 5)), T)


class ZeroTimed(Backend):
    """A backend in the trained model's timing (as an ONNX one would be): its records are
    `[T, batch, ...]`; not registered. `flip` corrupts one spike of the samples equal to it."""

    name = "zero_timed"
    description = "the reference simulator's zero-delay run, as a stand-in"
    timing = "zero"
    precisions = ("fixed", "float")
    labels = {"fixed": "zero-timed fixed", "float": "zero-timed float"}
    float_rung = "zero_timed float"
    options = (BackendOption("flip", "an input whose spike at sn_b (1, 0, 2, 2) is flipped"),)

    def run(self, graph, x, timesteps):
        graph = self.graph(graph) if isinstance(graph, str) else graph
        res = simulate(graph, x, timesteps, record_states=True)
        records = {**{k: v.copy() for k, v in res.spikes.items()},
                   **{k: s["v"] for k, s in res.states.items() if k not in res.spikes}}
        flip = self.settings["flip"]
        if flip is not None:
            for i in range(x.shape[0]):
                if np.array_equal(x[i], flip):
                    records["sn_b"][1, i, 0, 2, 2] ^= True
        return records


def _zero_artifact(compiled, inputs):
    return Artifact(compiled.graph, reference=compiled.reference, target="loihi2",
                    meta={"timesteps": T}, golden=make_golden(compiled.graph, inputs, T))


def test_a_zero_timed_backend_is_checked_by_its_declarations(compiled, inputs, registry):
    """Not the reference and not hardware-timed: check compares it with the zero-delay run in
    each layer's window, runs its float rung under its declared name, and its JSON key."""
    from snnc.inputs import CheckData

    registry["zero_timed"] = ZeroTimed  # so that its float rung has its JSON key
    art = _zero_artifact(compiled, inputs)
    data = CheckData(inputs, None, "random")
    report = run_check(art, "m.snnc", data, backend=ZeroTimed(art, "m.snnc"), timesteps=T,
                       thresholds=Thresholds(), backend_samples=None)
    rungs = {r.name: r for r in report.rungs}
    assert report.passed, [(r.name, r.detail) for r in report.rungs]
    assert list(rungs)[4:6] == ["equivalence", "zero_timed float"]
    assert rungs["equivalence"].detail.startswith("zero-timed fixed vs reference simulator, "
                                                  "zero-delay timing: 0 mismatches")
    doc = report.to_json()
    assert doc["zero_timed_float"]["total_mismatches"] == 0 and doc["lava_floating_pt"] is None
    assert doc["equivalence"]["samples"] == 12

    # One spike flipped for sample 7: found there, with its step in the trained timing.
    bad = ZeroTimed(art, "m.snnc", flip=inputs[7])
    report = run_check(art, "m.snnc", data, backend=bad, timesteps=T,
                       thresholds=Thresholds(), backend_samples=None)
    first = report.equivalence.first
    assert report.equivalence.total == 1 and not report.passed
    assert (first["layer"], first["sample"], first["step"], first["neuron"]) == \
        ("sn_b", 7, 1, [0, 2, 2])
