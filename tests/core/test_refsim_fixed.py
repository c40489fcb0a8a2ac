"""Golden integer traces for the fixed-point nodes, worked by hand in the comments.

The equations are Lava 0.10's bit-accurate ones (semantics.md section 4; snnc/ir/fixed.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from snnc.backends.refsim import simulate
from snnc.errors import GraphError
from snnc.ir import Add, FxCLIF, FxConv2d, FxDense, FxInput, FxLIF, FxReadout, Graph


def one_neuron(neuron, a_seq, n=1):
    """Drive a neuron with a per-step synaptic input sequence through an identity synapse:
    FxInput(scale 1, 24-bit signed) -> FxDense(weight 1) -> neuron."""
    g = Graph.build([
        FxInput(name="x", shape=(n,), scale=1.0, bits=24, signed=True),
        FxDense(name="syn", inputs=("x",), weight=np.eye(n, dtype=np.int64)),
        neuron,
    ])
    a = np.asarray(a_seq, dtype=float).reshape(len(a_seq), 1, n)
    return simulate(g, a, len(a_seq), record_states=True)


def lif(**kw):
    fields = {"name": "n", "inputs": ("syn",), "dv": 2048, "vth": 1}
    fields.update(kw)
    return FxLIF(**fields)


def test_lif_hard_reset_by_hand():
    # dv 2048 (decay 1/2), vth 1 -> fires when v > 64; du 4095: u = a << 6 each step.
    # t0 a=1: u=64, v=64 (not > 64) | t1 a=1: v = 64*2048>>12 = 32, +64 = 96 > 64: spike, v=0
    # t2 a=0: v=0 | t3 a=2: u=128, v=128: spike, v=0
    res = one_neuron(lif(), [1, 1, 0, 2])
    assert res.spikes["n"][:, 0, 0].astype(int).tolist() == [0, 1, 0, 1]
    assert res.states["n"]["v"][:, 0, 0].tolist() == [64, 0, 0, 0]
    assert res.states["n"]["u"][:, 0, 0].tolist() == [64, 64, 0, 128]


def test_decay_rounds_toward_zero_for_negative_values():
    # bias -3 per step, no input, dv 2048: v = -3; then -(3*2048 >> 12) = -1, -1-3 = -4;
    # then -(4*2048 >> 12) = -2, -2-3 = -5. (A floor would give -2 and -6 instead.)
    res = one_neuron(lif(bias_mant=-3), [0, 0, 0])
    assert res.states["n"]["v"][:, 0, 0].tolist() == [-3, -4, -5]


def test_bias_exponent_shifts_the_mantissa():
    # bias 3 << 2 = 12 per step, no leak (dv 0), threshold 64: v = 12, 24, 36
    res = one_neuron(lif(dv=0, bias_mant=3, bias_exp=2), [0, 0, 0])
    assert res.states["n"]["v"][:, 0, 0].tolist() == [12, 24, 36]


def test_u_wraps_at_24_bits_with_lavas_asymmetric_bound():
    # du 0: u keeps u*4095 >> 12 = u - u/4096. a = 2^17, a << 6 = 2^23.
    # t0: u = 2^23 exactly: Lava wraps only values > 2^23, so u stays 8388608.
    #     v = 0 + 8388608 -> clipped to 8388607 > vth<<6 = 8388544: spike, v = 0.
    # t1: u = 8388608*4095 >> 12 = 8386560, + 8388608 = 16775168 > 2^23 -> -2048.
    #     v = 0*(4096-4095) >> 12 + (-2048) = -2048: no spike.
    res = one_neuron(lif(du=0, dv=4095, vth=131071), [2**17, 2**17])
    assert res.states["n"]["u"][:, 0, 0].tolist() == [8388608, -2048]
    assert res.spikes["n"][:, 0, 0].astype(int).tolist() == [1, 0]
    assert res.states["n"]["v"][:, 0, 0].tolist() == [0, -2048]


def test_v_clips_at_24_bits():
    # no leak, a = -2^16 -> u = -2^22 each step: v = -4194304, then -8388608 -> -8388607.
    res = one_neuron(lif(dv=0, vth=131071), [-(2**16), -(2**16)])
    assert res.states["n"]["v"][:, 0, 0].tolist() == [-4194304, -8388607]


def test_soft_reset_subtracts_reset_sub():
    # no leak, threshold 64, reset_sub 65 (a model firing on >=): a = 1 each step (u = 64)
    # t0: v = 64 (not > 64) | t1: 128 spike -> 63 | t2: 63+64 = 127 spike -> 62
    res = one_neuron(lif(dv=0, reset="soft", reset_sub=65), [1, 1, 1])
    assert res.spikes["n"][:, 0, 0].astype(int).tolist() == [0, 1, 1]
    assert res.states["n"]["v"][:, 0, 0].tolist() == [64, 63, 62]


def test_clif_by_hand():
    # Tiny tables: sig_lut [0, 2048, 4096] (centre 1), index ((h + 1) >> 1) + 1 clipped;
    # reset_lut [10, 20] indexed by m >> 12. dv 2048, threshold 64, reset_sub 65.
    # t0 a=2: h = 128 > 64 fires; index 65 -> 2, g 4096; m = 0 + 4096; reset_lut[1] = 20;
    #         v = 128 - (65 + 20) = 43
    # t1 a=0: h = 43*2048 >> 12 = 21; index 12 -> 2, g 4096; m = 4096*4096 >> 12 = 4096;
    #         v = 21
    # t2 a=-2: h = (21*2048 >> 12) - 128 = 10 - 128 = -118; index (-117 >> 1) + 1 = -58 -> 0,
    #         g 0; m = 0; v = -118
    n = FxCLIF(name="n", inputs=("syn",), dv=2048, vth=1, reset_sub=65,
               sig_lut=np.array([0, 2048, 4096]), sig_mult=1, sig_shift=1,
               reset_lut=np.array([10, 20]), m_shift=12)
    res = one_neuron(n, [2, 0, -2])
    assert res.spikes["n"][:, 0, 0].astype(int).tolist() == [1, 0, 0]
    assert res.states["n"]["v"][:, 0, 0].tolist() == [43, 21, -118]
    assert res.states["n"]["m"][:, 0, 0].tolist() == [4096, 4096, 0]


def test_negative_weight_exponent_is_a_floor_shift():
    # weights [6, -10] (even: mixed sign), exponent -3: spikes [1,1] -> -4 >> 3 = -1;
    # spikes [1,0] -> 6 >> 3 = 0. The readout (scale 64, no leak) returns a: v = a << 6.
    g = Graph.build([
        FxInput(name="x", shape=(2,), scale=1.0, bits=1),
        FxDense(name="syn", inputs=("x",), weight=np.array([[6, -10]]), weight_exp=-3),
        FxReadout(name="r", inputs=("syn",), dv=0, scale=64.0, mean=False),
    ])
    res = simulate(g, np.array([[1.0, 1.0], [1.0, 0.0]]), 1)
    assert res.readout["r"][:, 0].tolist() == [-1.0, 0.0]


def test_graded_input_rounds_half_to_even_and_clips():
    # scale 255: 0.3 -> 76.5 -> 76 (half to even), 0.5 -> 127.5 -> 128, 1.2 -> 306 -> 255
    g = Graph.build([
        FxInput(name="x", shape=(4,), scale=255.0),
        FxDense(name="syn", inputs=("x",), weight=np.eye(4, dtype=np.int64)),
        FxReadout(name="r", inputs=("syn",), dv=0, scale=64.0, mean=False),
    ])
    res = simulate(g, np.array([[0.0, 0.3, 0.5, 1.2]]), 1)
    assert res.readout["r"][0].tolist() == [0.0, 76.0, 128.0, 255.0]


def test_conv_and_add_sum_integer_inputs():
    # 1x1 convs on a 1x2x2 frame: 2*x and 4*x with exponent -1 -> 2x; sum 4x; readout a=4x
    g = Graph.build([
        FxInput(name="x", shape=(1, 2, 2), scale=1.0, bits=4),
        FxConv2d(name="c1", inputs=("x",), weight=np.full((1, 1, 1, 1), 2)),
        FxConv2d(name="c2", inputs=("x",), weight=np.full((1, 1, 1, 1), 4), weight_exp=-1),
        Add(name="sum", inputs=("c1", "c2")),
        FxReadout(name="r", inputs=("sum",), dv=0, scale=64.0, mean=False),
    ])
    res = simulate(g, np.array([[[[1.0, 2.0], [3.0, 0.0]]]]), 1)
    assert res.readout["r"][0, 0].tolist() == [[4.0, 8.0], [12.0, 0.0]]
    assert str(g["sum"].type) == "i16[1,2,2]"


@pytest.mark.parametrize("weight, message", [
    (np.array([[3, -5]]), "even values"),       # mixed sign must be even
    (np.array([[300]]), r"\[0, 255\]"),
    (np.array([[0.5]]), "integer numpy array"),
])
def test_weights_must_be_what_lava_keeps(weight, message):
    with pytest.raises(GraphError, match=message):
        Graph.build([FxInput(name="x", shape=(weight.shape[1],), scale=1.0),
                     FxDense(name="syn", inputs=("x",), weight=weight)])


@pytest.mark.parametrize("field, value", [("dv", 4096), ("vth", 1 << 17), ("bias_mant", 4096),
                                          ("bias_exp", 8), ("du", -1)])
def test_neuron_fields_must_fit_their_widths(field, value):
    with pytest.raises(GraphError, match=f"field {field}"):
        one_neuron(lif(**{field: value}), [0])
