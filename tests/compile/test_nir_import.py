"""NIR import: graphs written as snnTorch's exporter writes them (neurons and pooling without
types, 0-d parameters, integer kernel sizes), compiled by snnc and run against snnTorch's own
importer of the same file, spike for spike in float64. Where snnTorch maps no node (LI, I,
Scale, Delay) or maps it unlike NIR (IF: beta 0.9, subtractive reset), the comparison runs
through the same nirtorch executor with hand-written forward-Euler modules
(tests/compile/nir_fixtures.py), and says so."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from click.testing import CliRunner

from snnc.backends.refsim import simulate
from snnc.frontends.nir import load_nir
from snnc.tools.cli import cli


def _fixtures():
    """tests/compile/nir_fixtures.py, loaded by path (importlib mode keeps tests/ off
    sys.path)."""
    if "nir_fixtures" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "nir_fixtures", Path(__file__).with_name("nir_fixtures.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["nir_fixtures"] = module
        spec.loader.exec_module(module)
    return sys.modules["nir_fixtures"]


F = _fixtures()
DT, graph, snntorch_run = F.DT, F.graph, F.snntorch_run
snntorch_lif, snntorch_cubalif = F.snntorch_lif, F.snntorch_cubalif
T = 8
RNG = np.random.default_rng(7)


def _w(*shape, scale=1.0):
    return (RNG.normal(size=shape) * scale).astype(np.float32)


def _compare(g, tmp_path, x, hand=False, timesteps=T, edit=None, reference=None):
    """Compile `g` from its file and compare every neuron layer with snnTorch's import.
    `edit`: HDF5 path -> None (deleted: a field an exporter leaves out) or a new value.
    `reference`: the graph the other side runs instead of the file's (the same network)."""
    path = tmp_path / "g.nir"
    nir.write(path, g)
    if edit:
        import h5py

        with h5py.File(path, "r+") as f:
            for item, value in edit.items():
                del f[item]
                if value is not None:
                    f[item] = value
    loaded = load_nir(path, DT)
    ours = simulate(loaded.graph, x, timesteps, record_states=True)
    # snnTorch reads the file back, unless fields were edited out: nir 1.0.8 cannot read a
    # Conv2d without input_shape, so it gets the graph that was written, the same values
    other = reference or (g if edit else nir.read(path, type_check=False))
    theirs, out = snntorch_run(other, x, timesteps, hand=hand)
    assert theirs, "snnTorch recorded no neuron layer"
    compared = 0
    for name, ref in theirs.items():
        node = loaded.graph[name]
        if node.spiking:
            got = ours.spikes[name]
            assert got.shape == ref.shape, name
            assert np.array_equal(got, ref > 0), f"{name}: {np.sum(got != (ref > 0))} mismatches"
            assert 0 < got.mean() < 1, f"{name}: the test needs some spikes and some silence"
        else:  # a readout: its per-step v
            v = ours.states[name]["v"]
            np.testing.assert_allclose(v, ref, rtol=1e-9, atol=1e-9, err_msg=name)
        compared += 1
    _fixed_point_check(path, tmp_path, timesteps, DT)
    return loaded, compared


def _fixed_point_check(path, tmp_path, timesteps, dt):
    """`snnc compile` the file for loihi2, then `snnc check` the artifact: every rung passes
    (trace against the file's equations, ranges, refsim timing, golden)."""
    out = tmp_path / "fixed.snnc"
    runner = CliRunner()
    res = runner.invoke(cli, ["compile", str(path), "-T", str(timesteps), "--dt", str(dt),
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["check", str(out), "--data", "random", "--samples", "16"])
    assert res.exit_code == 0, res.output


def test_affine_linear_lif_as_snntorch_exports(tmp_path):
    g = graph({"input": nir.Input(input_type=np.array([6])),
               "fc1": nir.Affine(weight=_w(12, 6), bias=_w(12)),
               "lif1": snntorch_lif(0, 0.8, 0.6),         # 0-d parameters: untyped
               "fc2": nir.Linear(weight=_w(5, 12)),
               "lif2": snntorch_lif(5, 0.5, 0.4),
               "output": nir.Output(output_type=np.array([5]))},
              [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
               ("lif2", "output")])
    loaded, n = _compare(g, tmp_path, RNG.random((6, 6)) * 2)
    assert n == 2 and loaded.graph["lif1"].decay == pytest.approx(0.8)


def test_lif_input_scale_r_not_tau_over_dt(tmp_path):
    """r = 3 tau / dt: snnTorch divides the threshold by dt r / tau; snnc keeps it as gain."""
    g = graph({"input": nir.Input(input_type=np.array([4])),
               "fc": nir.Affine(weight=_w(7, 4), bias=_w(7)),
               "lif": snntorch_lif(7, 0.9, 1.5, r_scale=3.0),
               "output": nir.Output(output_type=np.array([7]))},
              [("input", "fc"), ("fc", "lif"), ("lif", "output")])
    loaded, _ = _compare(g, tmp_path, RNG.random((8, 4)))
    assert loaded.graph["lif"].gain == pytest.approx(3.0)


def test_conv_pools_flatten_cubalif(tmp_path):
    """Conv2d without input_shape (int padding; nir.write cannot store None, so the field is
    deleted from the file), AvgPool2d and SumPool2d with integer kernel sizes, untyped
    Flatten(start_dim=0), Affine, CubaLIF (snnTorch's Synaptic)."""
    g = graph({"input": nir.Input(input_type=np.array([2, 8, 8])),
               "conv1": nir.Conv2d(input_shape=(8, 8), weight=_w(4, 2, 3, 3), stride=1,
                                   padding=1, dilation=1, groups=1, bias=_w(4)),
               "lif1": snntorch_lif(0, 0.7, 0.5),
               "pool1": nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                      padding=np.array([0, 0])),
               "conv2": nir.Conv2d(input_shape=(4, 4), weight=_w(6, 4, 3, 3), stride=1,
                                   padding=1, dilation=1, groups=1, bias=_w(6)),
               "lif2": snntorch_lif(0, 0.6, 0.5),
               "pool2": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                      padding=np.array([0, 0])),
               "flat": nir.Flatten(input_type=np.array([6, 2, 2]), start_dim=0, end_dim=-1),
               "fc": nir.Affine(weight=_w(5, 24, scale=0.1), bias=_w(5, scale=0.1)),
               "cuba": snntorch_cubalif(5, 0.5, 0.5, 0.3),
               "output": nir.Output(output_type=np.array([5]))},
              [("input", "conv1"), ("conv1", "lif1"), ("lif1", "pool1"), ("pool1", "conv2"),
               ("conv2", "lif2"), ("lif2", "pool2"), ("pool2", "flat"), ("flat", "fc"),
               ("fc", "cuba"), ("cuba", "output")])
    edit = {f"node/nodes/{k}/{f}": None for k, f in (("conv1", "input_shape"), ("conv2",
            "input_shape"), ("flat", "input_type"))}
    edit.update({f"node/nodes/{k}/{f}": v for k in ("pool1", "pool2")  # integer sizes
                 for f, v in (("kernel_size", 2), ("stride", 2), ("padding", 0))})
    loaded, n = _compare(g, tmp_path, RNG.random((4, 2, 8, 8)) * 1.5, edit=edit)
    assert n == 3 and loaded.graph["cuba"].op == "CubaLIF"


def _hand_graph(nested=True):
    """IF, Scale, Delay(0), a nested subgraph, a residual sum of two edges, and an LI
    readout fed by two synapses. `nested=False`: the subgraph's LIF inlined as the top-level
    node 'block.lif' (nirtorch 2.6 cannot run a nested graph: its state builder calls
    .items() on the subgraph's GraphModule)."""
    rng = np.random.default_rng(3)
    w = [(rng.normal(size=s)).astype(np.float32) for s in
         ((8, 5), (8,), (8, 8), (8, 5), (3, 8), (3,), (3, 8))]
    sub = graph({"in": nir.Input(input_type=np.array([8])),
                 "lif": snntorch_lif(8, 0.75, 0.5),
                 "out": nir.Output(output_type=np.array([8]))},
                [("in", "lif"), ("lif", "out")])
    block = {"block": sub} if nested else {"block.lif": snntorch_lif(8, 0.75, 0.5)}
    end = "block" if nested else "block.lif"
    return graph({"input": nir.Input(input_type=np.array([5])),
                  "fc1": nir.Affine(weight=w[0], bias=w[1]),
                  "scale": nir.Scale(scale=np.full(8, 2.0)),
                  "if1": nir.IF(r=np.full(8, 1 / DT), v_threshold=np.full(8, 1.0),
                                v_reset=np.zeros(8)),
                  "delay": nir.Delay(delay=np.zeros(8)),
                  "fc2": nir.Linear(weight=w[2]),
                  "skip": nir.Linear(weight=w[3]),
                  **block,
                  "ro_a": nir.Affine(weight=w[4], bias=w[5]),
                  "ro_b": nir.Linear(weight=w[6]),
                  "li": nir.LI(tau=np.full(3, 4e-4), r=np.full(3, 2.5), v_leak=np.zeros(3)),
                  "output": nir.Output(output_type=np.array([3]))},
                 [("input", "fc1"), ("fc1", "scale"), ("scale", "if1"), ("if1", "delay"),
                  ("delay", "fc2"), ("fc2", end), ("input", "skip"), ("skip", end),
                  (end, "ro_a"), ("if1", "ro_b"), ("ro_a", "li"), ("ro_b", "li"),
                  ("li", "output")])


def test_if_li_scale_delay_subgraph_against_hand_euler(tmp_path):
    """snnTorch's IF mapping is not NIR's (beta 0.9, subtractive reset) and it maps no LI,
    Scale or Delay: those run as hand-written Euler modules in the same executor."""
    loaded, n = _compare(_hand_graph(), tmp_path, RNG.random((6, 5)), hand=True,
                         reference=_hand_graph(nested=False))
    assert n == 3  # if1, block.lif, li
    assert loaded.graph["li"].op == "Readout" and loaded.graph["if1"].decay == 1.0


def test_integrator_readout(tmp_path):
    g = graph({"input": nir.Input(input_type=np.array([4])),
               "fc": nir.Linear(weight=_w(3, 4)),
               "i": nir.I(r=np.full(3, 0.5 / DT)),
               "output": nir.Output(output_type=np.array([3]))},
              [("input", "fc"), ("fc", "i"), ("i", "output")])
    loaded, n = _compare(g, tmp_path, RNG.random((3, 4)), hand=True)
    assert n == 1 and loaded.graph["i"].decay == 1.0


def test_compile_cli_and_fixed_point_check(tmp_path):
    """snnc compile FILE.nir --dt, then snnc check on the loihi2 artifact: every rung passes."""
    path, out = tmp_path / "g.nir", tmp_path / "g.snnc"
    nir.write(path, _hand_graph())
    runner = CliRunner()
    res = runner.invoke(cli, ["compile", str(path), "-T", "4", "--dt", str(DT), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "file's equations" in res.output and out.exists()
    res = runner.invoke(cli, ["check", str(out), "--data", "random", "--samples", "8"])
    assert res.exit_code == 0, res.output
    assert "IR vs the NIR file's equations (forward Euler) at compile time: 0" in \
        " ".join(res.output.replace("│", " ").split())
    from snnc.artifact import read_artifact

    meta = read_artifact(out).meta
    assert meta["dt"] == DT and meta["source"] == "nir" and meta["trace_check"][
        "total_mismatches"] == 0
    import hashlib

    assert read_artifact(out).source_hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_compile_cli_options(tmp_path):
    path = tmp_path / "g.nir"
    nir.write(path, _hand_graph())
    runner = CliRunner()
    out = tmp_path / "x.snnc"
    res = runner.invoke(cli, ["compile", str(path), "-T", "4", "-o", str(out)])
    assert res.exit_code == 2 and "Missing option '--dt'" in res.output
    res = runner.invoke(cli, ["compile", str(path), "-T", "4", "--dt", "1e-4", "--weights",
                              "w.pt", "-o", str(out)])
    assert res.exit_code == 2 and "--weights does not apply" in res.output
    res = runner.invoke(cli, ["compile", "examples/models.py:clif_vgg", "-T", "4",
                              "--input-shape", "1,8,8", "-o", str(out)])
    assert res.exit_code == 2 and "Missing option '--weights'" in res.output
    res = runner.invoke(cli, ["compile", "examples/models.py:clif_vgg", "-T", "4",
                              "--weights", "w.pt", "-o", str(out)])
    assert res.exit_code == 2 and "Missing option '--input-shape'" in res.output
    res = runner.invoke(cli, ["compile", "examples/models.py:clif_vgg", "-T", "4", "--weights",
                              "w.pt", "--input-shape", "1,8,8", "--dt", "1e-3", "-o", str(out)])
    assert res.exit_code == 2 and "--dt applies to a NIR graph" in res.output
    assert not out.exists()


def test_norse_import_spikes_alike(tmp_path):
    """Norse's own importer (norse.torch.from_nir; `make envs` installs norse for this test
    alone, it is no dependency of snnc) on a graph in Norse's convention (r = 1 for LIF and
    CubaLIF, dt its argument): Conv2d, LIF, SumPool2d, Flatten, Affine, CubaLIF, Linear, IF
    (Norse ignores an IF's r: r = 1/dt makes NIR's dt r x the plain sum Norse adds). Norse
    runs in float32, one sample at a time (its Flatten, like snnTorch's, is torch's over a
    batch)."""
    import logging

    import torch
    from norse.torch.utils.import_nir import from_nir

    dt = 1e-3
    ones = np.ones
    g = graph({"input": nir.Input(input_type=np.array([2, 6, 6])),
               "conv": nir.Conv2d(input_shape=(6, 6), weight=_w(3, 2, 3, 3), stride=1,
                                  padding=1, dilation=1, groups=1, bias=_w(3)),
               "lif": nir.LIF(tau=np.full((3, 6, 6), 4e-3), r=ones((3, 6, 6)),
                              v_leak=np.zeros((3, 6, 6)), v_threshold=np.full((3, 6, 6), 0.1),
                              v_reset=np.zeros((3, 6, 6))),
               "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                     padding=np.array([0, 0])),
               "flat": nir.Flatten(input_type=np.array([3, 3, 3]), start_dim=0, end_dim=-1),
               "fc": nir.Affine(weight=_w(6, 27, scale=0.1), bias=_w(6, scale=0.1)),
               "cuba": nir.CubaLIF(tau_syn=np.full(6, 2e-3), tau_mem=np.full(6, 2e-3),
                                   r=ones(6), v_leak=np.zeros(6), v_threshold=np.full(6, 0.02),
                                   v_reset=np.zeros(6), w_in=ones(6)),
               "fc2": nir.Linear(weight=_w(4, 6)),
               "if": nir.IF(r=np.full(4, 1 / dt), v_threshold=np.full(4, 0.5),
                            v_reset=np.zeros(4)),
               "output": nir.Output(output_type=np.array([4]))},
              [("input", "conv"), ("conv", "lif"), ("lif", "pool"), ("pool", "flat"),
               ("flat", "fc"), ("fc", "cuba"), ("cuba", "fc2"), ("fc2", "if"),
               ("if", "output")])
    path = tmp_path / "n.nir"
    nir.write(path, g)
    loaded = load_nir(path, dt)
    x = RNG.random((6, 2, 6, 6))
    ours = simulate(loaded.graph, x, T).spikes
    logging.disable(logging.WARNING)  # Norse warns that r differs from 1 for the IF
    try:
        net = from_nir(nir.read(path), dt=dt)
    finally:
        logging.disable(logging.NOTSET)
    record = {k: [] for k in ours}
    for name, mod in net.named_modules():
        if name in record:
            mod.register_forward_hook(lambda m, i, o, k=name: record[k].append(
                o[0].detach().numpy().copy()))
    with torch.no_grad():
        for sample in x:
            state = None
            for _ in range(T):
                _, state = net(torch.as_tensor(sample, dtype=torch.float32), state)
    _fixed_point_check(path, tmp_path, T, dt)
    for name, spikes in ours.items():
        theirs = np.stack(record[name]).reshape(len(x), T, *spikes.shape[2:]).swapaxes(0, 1)
        assert np.array_equal(spikes, theirs > 0), f"{name}: {np.sum(spikes != (theirs > 0))}"
        assert 0 < spikes.mean() < 1, name
