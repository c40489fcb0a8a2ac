"""The quantize pass: scales, the tie rule, integer fields, tables, and refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from snnc.backends.refsim import simulate
from snnc.ir import (
    CLIF,
    LIF,
    BatchNorm,
    Conv2d,
    Dense,
    FxCLIF,
    FxConv2d,
    FxInput,
    FxLIF,
    Graph,
    Input,
    Readout,
)
from snnc.passes.quantize import QuantizationError, QuantizeOptions, quantize
from snnc.tools.evaluate import evaluate


def net(neuron_kw=None, w1=None, clif=False, encoding="analog"):
    rng = np.random.default_rng(0)
    kw = {"decay": 0.5, "threshold": 0.75, "compare": ">="} | (neuron_kw or {})
    first = CLIF(name="sn1", inputs=("conv",), tau=2.0, threshold=0.75) if clif else \
        LIF(name="sn1", inputs=("conv",), **kw)
    return Graph.build([
        Input(name="x", shape=(1, 6, 6), encoding=encoding),
        Conv2d(name="conv", inputs=("x",), weight=rng.normal(0, 0.8, (4, 1, 3, 3))
               if w1 is None else w1, bias=rng.normal(0.1, 0.05, 4), padding=(1, 1)),
        first,
        Dense(name="fc", inputs=("sn1",), weight=rng.normal(0, 0.3, (5, 144))),
        LIF(name="sn2", inputs=("fc",), decay=1.0, threshold=1.0, reset="soft"),
        Dense(name="head", inputs=("sn2",), weight=rng.normal(0, 0.5, (3, 5))),
        Readout(name="out", inputs=("head",)),
    ])


@pytest.mark.parametrize("compare, tie", [(">=", 1), (">", 0)])
def test_threshold_lands_on_the_chip_grid_with_the_tie_rule(compare, tie):
    fixed = quantize(net({"compare": compare})).graph
    sn1 = fixed["sn1"]
    assert isinstance(sn1, FxLIF)
    # S * threshold = 64 * vth + tie: the chip's v > 64*vth is the model's v >= S*th (tie 1)
    # or v > S*th (tie 0), exactly on the integers.
    assert sn1.reset_sub == 64 * sn1.vth + tie
    assert sn1.scale * 0.75 == pytest.approx(sn1.reset_sub, abs=1e-6)


def test_hard_reset_to_a_nonzero_value_shifts_the_threshold():
    fixed = quantize(net({"v_reset": -0.25, "compare": ">"})).graph
    # th - v_reset = 1.0 -> S = 64 * vth / 1.0
    assert fixed["sn1"].scale == pytest.approx(64 * fixed["sn1"].vth)


def test_decays_and_weights_use_their_ranges():
    fixed = quantize(net()).graph
    assert fixed["sn1"].dv == 2048 and fixed["sn2"].dv == 0 and fixed["sn1"].du == 4095
    for name in ("conv", "fc", "head"):
        w = fixed[name].weight
        assert np.abs(w).max() >= 128  # mixed sign: even values, at least 7 of 8 bits used
        assert np.all(w % 2 == 0) and w.min() >= -256 and w.max() <= 254


def test_weight_error_is_within_half_a_step():
    graph = net()
    result = quantize(graph)
    layers = result.report
    fixed = result.graph
    for name, src_scale in (("conv", 255.0), ("fc", 1.0)):
        consumer = {"conv": "sn1", "fc": "sn2"}[name]
        scale = fixed[consumer].scale
        step = 2 * 64 * 2.0 ** fixed[name].weight_exp / scale * src_scale  # even steps
        back = fixed[name].weight * 64 * 2.0 ** fixed[name].weight_exp / scale * src_scale
        assert np.abs(back - graph[name].weight).max() <= step / 2 + 1e-12
        assert layers[name].max_weight_error == pytest.approx(
            np.abs(back - graph[name].weight).max())


def test_analog_input_becomes_8_bit_graded_spikes_and_spikes_stay_1_bit():
    fixed = quantize(net()).graph
    assert isinstance(fixed["x"], FxInput) and fixed["x"].scale == 255.0
    assert fixed["x"].bits == 8 and not fixed["x"].signed
    spiking = quantize(net(encoding="spikes")).graph["x"]
    assert spiking.bits == 1 and spiking.scale == 1.0
    calibrated = quantize(net(), QuantizeOptions(input_max=2.0, input_signed=True)).graph
    assert calibrated["x"].scale == 127 / 2.0 and calibrated["x"].signed


def test_clif_tables():
    fixed = quantize(net(clif=True)).graph
    n = fixed["sn1"]
    assert isinstance(n, FxCLIF)
    assert len(n.sig_lut) == 1025 and n.sig_lut[512] == 2048
    assert n.sig_lut[0] == round(4096 / (1 + math.exp(8)))
    assert n.sig_lut[-1] == round(4096 / (1 + math.exp(-8)))
    assert np.all(np.diff(n.sig_lut) >= 0)
    # reset_lut[j] = round(S * sigmoid(j / 64)); index 64 is M = 1
    assert n.reset_lut[64] == round(n.scale / (1 + math.exp(-1)))
    # H = S * tau * 3 lands on table index 3 * 64 + 512 = sigmoid(3)
    h = int(n.scale * 2.0 * 3)
    index = ((h * n.sig_mult + (1 << (n.sig_shift - 1))) >> n.sig_shift) + 512
    assert index == 3 * 64 + 512


def test_fixed_point_follows_float_closely():
    graph = net()
    fixed = quantize(graph).graph
    x = np.random.default_rng(1).random((32, 1, 6, 6))
    y = np.argmax(simulate(graph, x, 4).readout["out"], axis=1)  # float's own answers
    ev = evaluate(fixed, graph, x, y, 4)
    assert ev.float_accuracy == 1.0
    assert ev.fixed_accuracy >= 0.9
    assert min(ev.agreement.values()) > 0.95


@pytest.mark.parametrize("w1, message", [
    (np.full((4, 1, 3, 3), np.nan), "synapse 'conv': weights are not finite"),
    (np.zeros((4, 1, 3, 3)), "synapse 'conv': all weights are zero"),
    (np.full((4, 1, 3, 3), 1e9), r"synapse 'conv': weights up to .* need weight exponent"),
])
def test_unrepresentable_weights_name_the_layer(w1, message):
    with pytest.raises(QuantizationError, match=message):
        quantize(net(w1=w1))


def test_dynamic_range_beyond_8_bits_is_reported(caplog):
    w = np.full((4, 1, 3, 3), 1e-4)
    w[0, 0, 0, 0] = 10.0
    layers = quantize(net(w1=w)).report
    assert layers["conv"].zeroed_weights > 0.9  # the small weights all round to zero
    assert "synapse 'conv': 97% of its nonzero weights round to zero" in caplog.text


def test_batch_norm_must_be_folded_first():
    g = Graph.build([
        Input(name="x", shape=(2,)),
        Dense(name="fc", inputs=("x",), weight=np.eye(2)),
        BatchNorm(name="bn", inputs=("fc",), mean=np.zeros(2), var=np.ones(2),
                  weight=np.ones(2), bias=np.zeros(2)),
        LIF(name="sn", inputs=("bn",), decay=1.0, threshold=1.0),
    ])
    with pytest.raises(QuantizationError, match=r"neuron 'sn' reads 'bn' \(BatchNorm\)"):
        quantize(g)


def test_per_channel_thresholds_become_per_channel_scales():
    g = net({"threshold": np.array([0.5, 1.0, 2.0, 4.0]), "compare": ">"})
    fixed = quantize(g).graph
    assert isinstance(fixed["sn1"].vth, int)  # one integer threshold: the stock LIF fits
    assert isinstance(fixed["conv"], FxConv2d)
    x = np.random.default_rng(2).random((16, 1, 6, 6))
    ev = evaluate(fixed, g, x, np.zeros(16, int), 4)
    assert ev.agreement["sn1"] > 0.97
