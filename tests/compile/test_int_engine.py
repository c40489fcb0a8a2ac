"""The int engine (`simulate(..., engine="int")`) gives the numpy definition's integers: every
spike, state (values and int64 type), readout and relay message, on random fixed-point graphs
with every neuron type and reset, both timings; its integer helpers agree with fixed_ops'
on every decay factor; and its exactness rules pick the kernels they claim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from snnc.backends import get_backend
from snnc.backends.refsim import fixed_ops, int_engine, simulate
from snnc.errors import SimulationInputError
from snnc.ir import (
    Add,
    FxChannelSlice,
    FxCLIF,
    FxConv2d,
    FxCubaLIF,
    FxDense,
    FxInput,
    FxLIF,
    FxMerge,
    FxPartialSum,
    FxReadout,
    Graph,
)
from snnc.ir.widths import FORMAT

T = 5


def _weights(rng, shape, kind):
    """Weights the format accepts: mixed-sign even, or one sign up to 255."""
    if kind == "mixed":
        return 2 * rng.integers(-128, 128, shape)
    w = rng.integers(0, 256, shape)
    return w if kind == "excitatory" else -w


def _neuron(rng, kind, name, src, c, big=False):
    common = dict(name=name, inputs=(src,), dv=int(rng.choice([0, 2048, 1365, 4095])),
                  bias_mant=rng.integers(-4096, 4096, c), bias_exp=int(rng.integers(0, 8)),
                  scale=100.0)
    vth = int(rng.integers(40000, 131000) if big else rng.integers(50, 3000))
    if kind in ("hard", "soft"):
        return FxLIF(**common, du=int(rng.choice([FORMAT.decay_max, 2047, 100])), vth=vth,
                     reset=kind, reset_sub=(vth << 6) + 1)
    if kind == "clif":
        return FxCLIF(**common, vth=vth, reset_sub=vth << 6, sig_lut=np.arange(1025) * 4,
                      sig_mult=123456789, sig_shift=32, reset_lut=np.arange(1024) + 30000,
                      m_shift=6)
    reset, delayed = kind.split("/")
    return FxCubaLIF(**common, du=int(rng.choice([FORMAT.decay_max, 2047, 410])), vth=vth,
                     reset=reset, reset_delay=delayed == "delay", reset_sub=vth << 6)


def random_graph(seed: int, kinds: tuple[str, ...], *, bits: int = 8, big: bool = False,
                 c: int = 6) -> Graph:
    """input -> conv (stride/padding) -> n0 -> conv 3x3 + conv 1x1 shortcut (Add) -> n1 ->
    conv stride 2 -> n2 -> dense split in two partial sums (merge) -> n3 -> dense -> readout.
    `big`: a large weight exponent, so the neurons take inputs above 2^18 (int64 path)."""
    rng = np.random.default_rng(seed)
    signs = ["mixed", "excitatory", "inhibitory"]
    exp = (7, 4) if big else (-3, 0)
    return Graph.build([
        FxInput(name="x", shape=(3, 9, 9), scale=float(2 ** bits - 1), bits=bits),
        FxConv2d(name="c0", inputs=("x",), weight=_weights(rng, (c, 3, 3, 3), signs[seed % 3]),
                 padding=(1, 1), weight_exp=-5 if bits == 8 else -8),
        _neuron(rng, kinds[0], "n0", "c0", (c,), big),
        FxConv2d(name="c1", inputs=("n0",), weight=_weights(rng, (c, c, 3, 3), "mixed"),
                 padding=(1, 1), weight_exp=exp[0]),
        FxConv2d(name="s1", inputs=("n0",), weight=_weights(rng, (c, c, 1, 1), "excitatory"),
                 weight_exp=exp[1]),
        Add(name="sum", inputs=("c1", "s1")),
        _neuron(rng, kinds[1], "n1", "sum", (c, 9, 9), big),  # a bias per neuron
        FxConv2d(name="c2", inputs=("n1",), weight=_weights(rng, (c, c, 3, 3), "inhibitory"),
                 stride=(2, 2), padding=(1, 1), weight_exp=exp[1]),
        _neuron(rng, kinds[2], "n2", "c2", (c,), big),
        FxChannelSlice(name="in0", inputs=("n2",), start=0, stop=2),
        FxChannelSlice(name="in1", inputs=("n2",), start=2, stop=c),
        FxDense(name="d0", inputs=("in0",), weight=_weights(rng, (8, 2 * 25), "mixed")),
        FxDense(name="d1", inputs=("in1",), weight=_weights(rng, (8, (c - 2) * 25), "mixed")),
        FxPartialSum(name="p0", inputs=("d0",)),
        FxPartialSum(name="p1", inputs=("d1",)),
        FxMerge(name="m", inputs=("p0", "p1"), weight_exp=exp[1]),
        _neuron(rng, kinds[3], "n3", "m", (8,), big),
        FxDense(name="fc", inputs=("n3",), weight=_weights(rng, (4, 8), "mixed")),
        FxReadout(name="out", inputs=("fc",), dv=int(rng.integers(0, 4096)),
                  bias_mant=rng.integers(-4096, 4096, 4), bias_exp=3, scale=10.0),
    ])


def assert_same(a, b):
    """Every record of two SimResults identical, states with the same (int64) type."""
    assert a.spikes.keys() == b.spikes.keys() and a.states.keys() == b.states.keys()
    for k in a.spikes:
        np.testing.assert_array_equal(a.spikes[k], b.spikes[k], err_msg=k)
        assert b.spikes[k].dtype == bool
    for k in a.raw_spikes:
        np.testing.assert_array_equal(a.raw_spikes[k], b.raw_spikes[k], err_msg=k)
    for layer, states in a.states.items():
        for var, value in states.items():
            got = b.states[layer][var]
            assert got.dtype == value.dtype, (layer, var)
            np.testing.assert_array_equal(value, got, err_msg=f"{layer}.{var}")
    for k in a.readout:
        np.testing.assert_array_equal(a.readout[k], b.readout[k], err_msg=k)
    for k in a.messages:
        np.testing.assert_array_equal(a.messages[k], b.messages[k], err_msg=k)


KINDS = [
    ("hard", "soft", "clif", "subtract/delay"),
    ("soft", "zero/now", "hard", "zero_all/now"),
    ("clif", "subtract/now", "none/now", "zero/delay"),
    ("zero_all/delay", "hard", "soft", "clif"),
]


@pytest.mark.parametrize("timing", ["zero", "hardware"])
@pytest.mark.parametrize("seed", range(len(KINDS)))
def test_random_graphs_match_the_definition(seed, timing):
    graph = random_graph(seed, KINDS[seed])
    rng = np.random.default_rng(100 + seed)
    x = rng.random((T, 4, 3, 9, 9)) if seed % 2 else rng.random((4, 3, 9, 9))
    a = simulate(graph, x, T, timing=timing, record_states=True)
    b = simulate(graph, x, T, timing=timing, record_states=True, engine="int")
    assert_same(a, b)
    assert sum(s.sum() for s in a.spikes.values()) > 0  # the run is not trivially silent


@pytest.mark.parametrize("timing", ["zero", "hardware"])
def test_wide_inputs_take_the_int64_path(timing, monkeypatch):
    """A weight exponent of 7 makes synaptic inputs beyond 2^18 (states in int64, u wraps)
    and a 16-bit graded input makes a first-layer bound beyond 2^24 (a float64 product)."""
    kinds = []
    original = int_engine._Product.__init__

    def spy(self, *args):
        original(self, *args)
        kinds.append(self.kind)

    monkeypatch.setattr(int_engine._Product, "__init__", spy)
    types = []
    state_dtype = int_engine._state_dtype
    monkeypatch.setattr(int_engine, "_state_dtype",
                        lambda bound: types.append(state_dtype(bound)) or types[-1])
    graph = random_graph(7, ("soft", "subtract/now", "clif", "hard"), bits=16, big=True)
    x = np.random.default_rng(7).random((3, 3, 9, 9))
    a = simulate(graph, x, T, timing=timing, record_states=True)
    b = simulate(graph, x, T, timing=timing, record_states=True, engine="int")
    assert_same(a, b)
    assert kinds[0] == "float64" and "int8" in kinds
    assert torch.int64 in types and sum(s.sum() for s in a.spikes.values()) > 0
    assert max(np.abs(s["u"]).max() for s in a.states.values() if "u" in s) > 2 ** 22


def test_products_use_int8_for_spikes(monkeypatch):
    """Spike inputs reach torch._int_mm (including offset weights: single-sign up to 255);
    the graded 8-bit input, beyond int8, a float32 product."""
    kinds = []
    original = int_engine._Product.__init__

    def spy(self, node, *args):
        original(self, node, *args)
        kinds.append((node.name, self.kind, self.offset))

    monkeypatch.setattr(int_engine._Product, "__init__", spy)
    graph = random_graph(1, KINDS[1])
    simulate(graph, np.random.default_rng(0).random((2, 3, 9, 9)), T, engine="int")
    by_name = {name: (kind, offset) for name, kind, offset in kinds}
    assert by_name["c0"][0] == "float32"
    assert all(by_name[n][0] == "int8" for n in ("c1", "s1", "c2", "d0", "d1", "fc"))
    assert by_name["s1"][1] != 0 or by_name["c2"][1] != 0  # an offset was needed


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_decay_and_wrap_match_fixed_ops(dtype):
    """_decay_ against fixed_ops.decay for every d in [0, 4096] (powers of two included) on
    values across the state range; _wrap24_ against wrap24 on its whole small domain."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.integers(-(1 << 24), 1 << 24, 4000), np.arange(-5000, 5000),
                        [-(1 << 24), (1 << 24) - 1, -(1 << 23), (1 << 23) - 1, 4096, -4096]])
    sc = int_engine._Scratch(torch.from_numpy(x).to(dtype))
    for d in range(0, 4097):
        got = int_engine._decay_(torch.tensor(x, dtype=dtype), d, sc)  # a copy: in place
        np.testing.assert_array_equal(got.numpy(), fixed_ops.decay(x, d), err_msg=f"d={d}")
    w = np.arange(-3 * (1 << 23) + 1, 3 * (1 << 23) + 1, 997)
    w = np.concatenate([w, [-3 * (1 << 23) + 1, 3 << 23, 1 << 23, (1 << 23) + 1, -(1 << 23)]])
    for small in (True, False):
        got = int_engine._wrap24_(torch.tensor(w, dtype=dtype), small)
        np.testing.assert_array_equal(got.numpy(), fixed_ops.wrap24(w))


def test_time_constant_and_per_step_spike_input():
    """A spike-encoded input, one frame per step, through the same rules."""
    rng = np.random.default_rng(3)
    graph = Graph.build([
        FxInput(name="x", shape=(4, 6, 6), scale=1.0, bits=1, encoding="spikes"),
        FxConv2d(name="c", inputs=("x",), weight=_weights(rng, (5, 4, 3, 3), "excitatory"),
                 padding=(1, 1), weight_exp=2),
        FxLIF(name="n", inputs=("c",), dv=100, du=3000, vth=800, scale=1.0),
        FxDense(name="fc", inputs=("n",), weight=_weights(rng, (3, 180), "mixed")),
        FxReadout(name="out", inputs=("fc",), dv=0, scale=1.0),
    ])
    x = (rng.random((T, 3, 4, 6, 6)) < 0.4).astype(np.float64)
    for timing in ("zero", "hardware"):
        assert_same(simulate(graph, x, T, timing=timing, record_states=True),
                    simulate(graph, x, T, timing=timing, record_states=True, engine="int"))


def test_refusals():
    from snnc.tools.demo import sample_inputs, tiny_network

    graph, x = tiny_network(), sample_inputs(1)  # a float graph
    with pytest.raises(SimulationInputError, match="engine 'int' runs fixed-point graphs"):
        simulate(graph, x, 2, engine="int")
    with pytest.raises(SimulationInputError, match="needs engine 'int'"):
        simulate(graph, x, 2, device="cuda")
    with pytest.raises(SimulationInputError, match="device must be"):
        simulate(random_graph(0, KINDS[0]), np.zeros((1, 3, 9, 9)), 2, engine="int",
                 device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_absent_is_a_clear_error():
    graph = random_graph(0, KINDS[0])
    with pytest.raises(SimulationInputError, match="no CUDA device is available"):
        simulate(graph, np.zeros((1, 3, 9, 9)), 2, engine="int", device="cuda")
    from snnc.backends.refsim.backend import _device

    with pytest.raises(SimulationInputError, match="no CUDA device"):
        _device("cuda")


def test_backend_options():
    """`--refsim-engine int`: the backend's hardware record equals the numpy engine's."""
    kind = get_backend("refsim")
    graph = random_graph(2, KINDS[2])
    x = np.random.default_rng(2).random((3, 3, 9, 9))
    numpy_run = kind().run(graph, x, T)
    int_run = kind(engine="int", device="cpu").run(graph, x, T)
    assert numpy_run.keys() == int_run.keys()
    for k in numpy_run:
        np.testing.assert_array_equal(numpy_run[k], int_run[k], err_msg=k)
    from snnc.backends import BackendError
    from snnc.backends.refsim.backend import _device, _engine

    with pytest.raises(BackendError, match="expected one of numpy, torch, int"):
        _engine("jax")
    with pytest.raises(BackendError, match="expected cpu, cuda or cuda:N"):
        _device("gpu")


def test_cli_simulate_and_check_take_the_int_engine(tmp_path):
    """`snnc simulate --engine int` prints what `--engine numpy` prints; `snnc check
    --refsim-engine int` passes; `--refsim-device cuda` without CUDA is one clear line."""
    from click.testing import CliRunner

    from snnc.tools.cli import cli

    examples = Path(__file__).resolve().parents[2] / "examples"
    out = tmp_path / "m.snnc"
    made = CliRunner().invoke(cli, ["compile", f"{examples / 'stbp_custom.py'}:stbp_custom_net",
                                    "--weights", str(examples / "checkpoints" /
                                                     "stbp_custom.pt"),
                                    "-T", "4", "--input-shape", "1,8,8", "-o", str(out)])
    assert made.exit_code == 0, made.output
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((3, 1, 8, 8)))
    sim = ["simulate", str(out), "--input", str(tmp_path / "x.npy"), "--timing", "hardware"]
    shown = {e: CliRunner().invoke(cli, [*sim, "--engine", e]) for e in ("numpy", "int")}
    assert all(r.exit_code == 0 for r in shown.values()), shown["int"].output
    assert shown["numpy"].output == shown["int"].output
    checked = CliRunner().invoke(cli, ["check", str(out), "--data", "random", "--samples", "8",
                                       "--backend", "refsim", "--refsim-engine", "int"])
    assert checked.exit_code == 0, checked.output
    if not torch.cuda.is_available():
        refused = CliRunner().invoke(cli, [*sim, "--engine", "int", "--refsim-device", "cuda"])
        assert refused.exit_code != 0 and "no CUDA device" in refused.output


@pytest.mark.parametrize("timing", ["zero", "hardware"])
def test_small_chunks_give_the_same_integers(timing, monkeypatch):
    """Chunks smaller than a sample: im2col one image at a time, neuron state in slices of
    image rows with a shorter last slice (the paths ResNet-19 takes at full size)."""
    monkeypatch.setattr(int_engine, "_CHUNKS", {"cpu": (300, 120)})
    graph = random_graph(5, KINDS[1])
    x = np.random.default_rng(5).random((3, 3, 9, 9))
    assert_same(simulate(graph, x, T, timing=timing, record_states=True),
                simulate(graph, x, T, timing=timing, record_states=True, engine="int"))


@pytest.mark.parametrize("batch", [0, 1])
def test_empty_and_single_sample_batches(batch):
    """An empty batch runs and gives empty records (the tools refuse it earlier), on both
    engines; so does a batch of one."""
    graph = random_graph(0, KINDS[0])
    x = np.random.default_rng(0).random((batch, 3, 9, 9))
    for timing in ("zero", "hardware"):
        a = simulate(graph, x, 3, timing=timing, record_states=["n1", "out"])
        b = simulate(graph, x, 3, timing=timing, record_states=["n1", "out"], engine="int")
        assert_same(a, b)
        assert sorted(b.states) == ["n1", "out"] and b.spikes["n0"].shape[1] == batch
