"""NIR export: every shipped example NIR can express is exported (nir.read type-checks it),
imported back by snnc with the same spikes (float and loihi2 fixed point), and imported by
snnTorch with the same spikes; every other example is refused with the layer and the reason,
and nothing is written. snnTorch maps no I/LI readout: those run as the hand-written Euler
module of tests/compile/nir_fixtures.py in snnTorch's own nirtorch executor."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from snnc.artifact import Artifact, write_artifact
from snnc.backends.nir.export import NirExportError, write_nir
from snnc.backends.refsim import simulate
from snnc.discretise import EXPORT_DT
from snnc.frontends.nir import load_nir
from snnc.ir import CLIF, LIF, CubaLIF, Dense, Graph, Input, Readout
from snnc.targets import LOIHI2, get_target
from snnc.tools.cli import cli
from snnc.tools.pass_runner import compile_graph

ROOT = Path(__file__).resolve().parents[2]
T = 4


def _fixtures():
    if "nir_fixtures" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "nir_fixtures", Path(__file__).with_name("nir_fixtures.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["nir_fixtures"] = module
        spec.loader.exec_module(module)
    return sys.modules["nir_fixtures"]


EXPRESSIBLE = {"stbp_custom": "examples/stbp_custom.py:stbp_custom_net",
               "stbp_timelast": "examples/stbp_timelast.py:stbp_timelast_net"}
REFUSED = {  # example -> (input shape, what the refusal names)
    "stbp_resnet": ((1, 8, 8), "layer 'sn1' (LIF): fires on v >= threshold"),
    "clif_vgg": ((1, 8, 8), "layer 'sn1' (CLIF): CLIF's reset depends on a second state"),
    "clif_preact_resnet": ((1, 8, 8), "(CLIF): CLIF's reset depends on a second state"),
    "stbp_resnet19": ((3, 32, 32), "layer 'sn1' (LIF): fires on v >= threshold"),
    "clif_resnet18": ((3, 32, 32), "(CLIF): CLIF's reset depends on a second state"),
}


@pytest.fixture(scope="module")
def compiled():
    """The two expressible examples compiled for loihi2 from their checkpoints."""
    from snnc.tools.pipeline import compile_checkpoint

    return {name: compile_checkpoint(spec, ROOT / "examples" / "checkpoints" / f"{name}.pt",
                                     T, (1, 8, 8), check_data="digits", check_samples=2
                                     ).artifact
            for name, spec in EXPRESSIBLE.items()}


@pytest.mark.parametrize("name", sorted(EXPRESSIBLE))
def test_example_round_trips(name, compiled, digits, tmp_path):
    art = compiled[name]
    path = tmp_path / f"{name}.nir"
    write_nir(art, path)
    g = nir.read(path)  # type_check=True: infer_types and check_types pass
    assert all(n.input_type and n.output_type and all(v is not None for v in
               (*n.input_type.values(), *n.output_type.values())) for n in g.nodes.values())
    back = load_nir(path, EXPORT_DT).graph
    x = digits[2][:48]
    ours, theirs = simulate(art.reference, x, T), simulate(back, x, T)
    assert set(ours.spikes) == set(theirs.spikes) and ours.spikes
    for layer, s in ours.spikes.items():
        assert np.array_equal(s, theirs.spikes[layer]), layer
        assert 0 < s.mean() < 1, layer
    for layer, v in ours.readout.items():  # the artifact's readout averages over T
        np.testing.assert_allclose(theirs.readout[layer] / T, v, rtol=1e-9, atol=1e-12)
    fixed = compile_graph(back, LOIHI2, timesteps=T).graph
    a, b = simulate(art.graph, x, T), simulate(fixed, x, T)
    for layer, s in a.spikes.items():
        assert np.array_equal(s, b.spikes[layer]), f"fixed point: {layer}"


@pytest.mark.parametrize("name", sorted(EXPRESSIBLE))
def test_example_in_snntorch(name, compiled, digits, tmp_path):
    art = compiled[name]
    path = tmp_path / f"{name}.nir"
    write_nir(art, path)
    x = digits[2][:12]
    theirs, _ = _fixtures().snntorch_run(nir.read(path), x, T, hand=True)
    ours = simulate(art.reference, x, T).spikes
    spiking = [k for k in theirs if k in ours]
    assert len(spiking) == len(ours), (sorted(theirs), sorted(ours))
    for layer in spiking:
        assert np.array_equal(ours[layer], theirs[layer] > 0), layer


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_other_examples_refused(name, load_example, tmp_path):
    from snnc.frontends.torch import trace

    shape, words = REFUSED[name]
    model = load_example("models").MODELS[name](timesteps=T).eval()
    graph = trace(model, torch.zeros(2, *shape), T, input_shape=shape)
    art = Artifact(compile_graph(graph, get_target("float"), timesteps=T).graph)
    path = tmp_path / "x.nir"
    with pytest.raises(NirExportError) as err:
        write_nir(art, path)
    assert words in str(err.value) and not path.exists()


def _ir(neuron, n=6):
    """x -> fc -> neuron, float32-valued weights as an artifact's reference holds them
    (nirtorch loads a file's weights in float32)."""
    rng = np.random.default_rng(1)
    w, b = (rng.normal(size=s).astype(np.float32).astype(np.float64) for s in ((n, 4), (n,)))
    return Graph.build([Input(name="x", shape=(4,)),
                        Dense(name="fc", inputs=("x",), weight=w, bias=b),
                        neuron.replace(inputs=("fc",))])


@pytest.mark.parametrize("neuron, words", [
    (LIF(name="n", decay=0.5, threshold=1.0, reset="soft"), "layer 'n' (LIF): soft reset"),
    (LIF(name="n", decay=0.5, threshold=1.0, compare=">="), "fires on v >= threshold"),
    (LIF(name="n", decay=0.5, threshold=1.0, v_reset=-0.5), "v_reset = -0.5"),
    (CubaLIF(name="n", decay=0.5, threshold=1.0), "reset 'subtract' with reset_delay=True"),
    (CubaLIF(name="n", decay=0.5, threshold=1.0, reset="zero"), "reset_delay=True"),
    (CLIF(name="n"), "layer 'n' (CLIF)"),
])
def test_refusals_name_layer_and_reason(neuron, words, tmp_path):
    art = Artifact(_ir(neuron))
    out = tmp_path / "m.nir"
    with pytest.raises(NirExportError) as err:
        write_nir(art, out)
    assert words in str(err.value) and not out.exists()
    src = tmp_path / "m.snnc"
    write_artifact(art, src)
    res = CliRunner().invoke(cli, ["export", str(src), "--format", "nir", "-o", str(out)])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 1 and len(lines) == 1 and words in lines[0], res.output
    assert not out.exists()


@pytest.mark.parametrize("neuron", [
    CubaLIF(name="n", decay=0.75, current_decay=0.5, threshold=0.6, reset="zero",
            reset_delay=False),
    LIF(name="n", decay=0.8, threshold=np.linspace(0.4, 0.9, 6), gain=2.0),
    LIF(name="n", decay=1.0, threshold=0.7),
])
def test_expressible_neurons_round_trip_and_snntorch(neuron, tmp_path):
    """CubaLIF (snnTorch's Synaptic), per-neuron thresholds with a gain (snnTorch refuses
    thresholds that differ, so only the round trip there), and an IF (decay 1)."""
    graph = _ir(neuron)
    path = tmp_path / "m.nir"
    write_nir(Artifact(graph), path)
    x = np.random.default_rng(2).random((10, 4)) * 2
    ours = simulate(graph, x, 8).spikes["n"]
    assert 0 < ours.mean() < 1
    back = simulate(load_nir(path, EXPORT_DT).graph, x, 8).spikes["n"]
    assert np.array_equal(ours, back)
    if isinstance(neuron, CubaLIF) or (isinstance(neuron, LIF) and neuron.decay < 1
                                       and np.ndim(neuron.threshold) == 0):
        theirs, _ = _fixtures().snntorch_run(nir.read(path), x, 8)
        assert np.array_equal(ours, theirs["n"] > 0)
    elif neuron.decay == 1.0:
        theirs, _ = _fixtures().snntorch_run(nir.read(path), x, 8, hand=True)
        assert np.array_equal(ours, theirs["n"] > 0)


def test_readout_exports_as_li(tmp_path):
    graph = _ir(Readout(name="n", decay=0.5, mean=False), n=3)
    path = tmp_path / "m.nir"
    write_nir(Artifact(graph), path)
    assert isinstance(nir.read(path).nodes["n"], nir.LI)
    x = np.random.default_rng(4).random((5, 4))
    ours = simulate(graph, x, 6, record_states=True).states["n"]["v"]
    theirs, _ = _fixtures().snntorch_run(nir.read(path), x, 6, hand=True)
    np.testing.assert_allclose(theirs["n"], ours, rtol=1e-9, atol=1e-12)


def test_a_value_added_to_itself_is_refused(tmp_path):
    from snnc.ir import Add

    g = _ir(LIF(name="n", decay=0.5, threshold=1.0))
    nodes = [n for n in g if n.name != "n"] + [
        Add(name="twice", inputs=("fc", "fc")),
        LIF(name="n", inputs=("twice",), decay=0.5, threshold=1.0)]
    with pytest.raises(NirExportError, match="layer 'n' .* adds a value to itself"):
        write_nir(Artifact(Graph.build(nodes)), tmp_path / "m.nir")
    assert not (tmp_path / "m.nir").exists()
