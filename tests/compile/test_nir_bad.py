"""Bad .nir files and graphs with no exact IR form: `snnc compile` fails with one line naming
the node or field, exit status 1, and writes nothing."""

from __future__ import annotations

import h5py
import nir
import numpy as np
import pytest
from click.testing import CliRunner

from snnc.tools.cli import cli

DT = 1e-4


def _lif(n, **changes):
    tau = np.full(n, 2e-4)
    fields = dict(tau=tau, r=tau / DT, v_leak=np.zeros(n), v_threshold=np.full(n, 0.5),
                  v_reset=np.zeros(n))
    fields.update(changes)
    return nir.LIF(**fields)


def _good(**replace):
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(input_type=np.array([4])),
             "fc": nir.Affine(weight=rng.normal(size=(5, 4)), bias=np.zeros(5)),
             "lif": _lif(5),
             "output": nir.Output(output_type=np.array([5]))}
    nodes.update(replace)
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
                        type_check=False)


def _compile(path, tmp_path):
    out = tmp_path / "out.snnc"
    res = CliRunner().invoke(cli, ["compile", str(path), "-T", "4", "--dt", str(DT), "-o",
                                   str(out)])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 1, res.output
    assert len(lines) == 1 and lines[0].startswith("snnc: error: "), res.output
    assert not out.exists()
    return lines[0]


def _write(tmp_path, g=None, edit=None):
    path = tmp_path / "g.nir"
    nir.write(path, g or _good())
    if edit:
        with h5py.File(path, "r+") as f:
            edit(f)
    return path


def test_good_file_compiles(tmp_path):
    res = CliRunner().invoke(cli, ["compile", str(_write(tmp_path)), "-T", "4", "--dt",
                                   str(DT), "-o", str(tmp_path / "ok.snnc")])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated(tmp_path, cut):
    path = _write(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * cut)])
    assert "not a readable NIR file" in _compile(path, tmp_path)


def test_not_hdf5(tmp_path):
    path = tmp_path / "g.nir"
    path.write_bytes(b"PK\x03\x04 not a nir file" * 20)
    assert "not a readable NIR file" in _compile(path, tmp_path)


def test_damaged_chunk_names_node_and_field(tmp_path):
    path = _write(tmp_path)
    with h5py.File(path, "r") as f:
        info = f["node/nodes/fc/weight"].id.get_chunk_info(0)
    data = bytearray(path.read_bytes())
    for i in range(info.byte_offset, info.byte_offset + info.size):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    line = _compile(path, tmp_path)
    assert "'fc' (Affine), field weight" in line and "cannot be read" in line


def test_unknown_node_type(tmp_path):
    def edit(f):
        del f["node/nodes/lif/type"]
        f["node/nodes/lif/type"] = "Izhikevich"
    line = _compile(_write(tmp_path, edit=edit), tmp_path)
    assert "'lif' has unknown type 'Izhikevich'" in line


def test_missing_field(tmp_path):
    line = _compile(_write(tmp_path, edit=lambda f: f["node/nodes/lif"].__delitem__("tau")),
                    tmp_path)
    assert "'lif' (LIF) lacks its field 'tau'" in line


def test_no_node_group(tmp_path):
    path = tmp_path / "g.nir"
    with h5py.File(path, "w") as f:
        f["version"] = "1.0"
    assert "no 'node' group" in _compile(path, tmp_path)


@pytest.mark.parametrize("graph, words", [
    (lambda: _good(fc=nir.Affine(weight=np.ones((5, 7)), bias=np.zeros(5))),
     "'fc' (Affine): weight reads 7 features"),
    (lambda: _good(lif=_lif(3)), "'lif' (LIF), field tau: shaped [3], but the node receives [5]"),
    (lambda: nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([4])),
                                 "fc": nir.Affine(weight=np.ones((4, 4)), bias=np.zeros(4)),
                                 "lif": _lif(4), "output": nir.Output(output_type=np.array([4]))},
                          edges=[("input", "fc"), ("fc", "lif"), ("lif", "fc"),
                                 ("lif", "output")], type_check=False),
     "cycle: fc -> lif -> fc"),
    (lambda: _good(lif=_lif(5, v_leak=np.full(5, 0.1))), "'lif' (LIF), field v_leak: must be 0"),
    (lambda: _good(lif=_lif(5, tau=np.linspace(2e-4, 3e-4, 5), r=np.full(5, 2.0))),
     "'lif' (LIF), field tau: varies across neurons"),
    (lambda: _good(lif=_lif(5, tau=np.full(5, 5e-5), r=np.full(5, 0.5))),
     "tau 5e-05 is below dt = 0.0001"),
    (lambda: _good(lif=nir.Delay(delay=np.full(5, 2e-4))),
     "'lif' (Delay), field delay: 2 steps of dt; the IR has no delay node"),
    (lambda: _good(lif=nir.Threshold(threshold=np.zeros(5))), "'lif' (Threshold): a stateless"),
    (lambda: _good(lif=nir.CubaLI(tau_syn=np.ones(5), tau_mem=np.ones(5), r=np.ones(5),
                                  v_leak=np.zeros(5))), "'lif' (CubaLI): the IR's readout"),
    (lambda: _good(lif=nir.Scale(scale=np.arange(5.0))), "'lif' (Scale), field scale: only"),
])
def test_refused_graphs(tmp_path, graph, words):
    assert words in _compile(_write(tmp_path, graph()), tmp_path)


def test_conv_refusals(tmp_path):
    def conv(**kw):
        fields = dict(input_shape=(4, 4), weight=np.ones((2, 1, 3, 3)), stride=1, padding=0,
                      dilation=1, groups=1, bias=np.zeros(2))
        fields.update(kw)
        return nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([1, 4, 4])),
                                   "conv": nir.Conv2d(**fields),
                                   "output": nir.Output(output_type=np.array([2, 2, 2]))},
                            edges=[("input", "conv"), ("conv", "output")], type_check=False)
    assert "field dilation: only dilation 1" in _compile(_write(tmp_path, conv(dilation=2)),
                                                          tmp_path)
    assert "field input_shape: declares [5, 5] but receives [4, 4]" in \
        _compile(_write(tmp_path, conv(input_shape=(5, 5))), tmp_path)
    conv1d = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([1, 6])),
                                 "c": nir.Conv1d(input_shape=6, weight=np.ones((2, 1, 3)),
                                                 stride=1, padding=0, dilation=1, groups=1,
                                                 bias=np.zeros(2)),
                                 "output": nir.Output(output_type=np.array([2, 4]))},
                          edges=[("input", "c"), ("c", "output")], type_check=False)
    assert "'c' (Conv1d): the IR has no 1-D convolution" in _compile(
        _write(tmp_path, conv1d), tmp_path)


def test_input_shape_only_where_the_graph_has_none(tmp_path):
    path = _write(tmp_path)
    res = CliRunner().invoke(cli, ["compile", str(path), "-T", "4", "--dt", str(DT),
                                   "--input-shape", "3", "-o", str(tmp_path / "o.snnc")])
    assert res.exit_code == 1 and "--input-shape [3] disagrees with node 'input'" in res.output


def test_graph_without_input_node_takes_input_shape(tmp_path):
    rng = np.random.default_rng(0)
    g = nir.NIRGraph(nodes={"fc": nir.Affine(weight=rng.normal(size=(5, 4)), bias=np.zeros(5)),
                            "lif": _lif(5), "output": nir.Output(output_type=np.array([5]))},
                     edges=[("fc", "lif"), ("lif", "output")], type_check=False)
    path = _write(tmp_path, g)
    assert "node 'input' (Input), field shape is missing or empty; give --input-shape" in \
        _compile(path, tmp_path)
    res = CliRunner().invoke(cli, ["compile", str(path), "-T", "4", "--dt", str(DT),
                                   "--input-shape", "4", "-o", str(tmp_path / "o.snnc")])
    assert res.exit_code == 0, res.output
