"""The ONNX exporter's integer words (backends/onnx/ops.py) against numpy in onnxruntime.

ONNX's BitShift is unsigned only; the exporter builds numpy's arithmetic right shift
(`floor_shift`) and Loihi's decay rounding toward zero (`trunc_shift`) from it. Each is
checked here on negative values, every remainder of small shifts, and the extremes of int64
(floor_shift) or of the products the format forms (trunc_shift, below 2^62), against numpy's
`>>` and the reference simulator's own `decay`, `wrap24` and `clip24`.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from snnc.backends.onnx.ops import Builder
from snnc.backends.refsim import fixed_ops
from snnc.ir.widths import FORMAT

I64 = np.iinfo(np.int64)


def run_word(build, x: np.ndarray) -> np.ndarray:
    """Build `build(builder, 'x')` over an int64 input and run it in onnxruntime."""
    b = Builder()
    out = build(b, "x")
    b.op("Identity", out, out="y")
    h = onnx.helper
    graph = h.make_graph(b.nodes, "word", [h.make_tensor_value_info("x", onnx.TensorProto.INT64,
                                                                    [None])],
                         [h.make_tensor_value_info("y", onnx.TensorProto.INT64, [None])],
                         initializer=b.initializers)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def values(limit: int, seed: int = 0) -> np.ndarray:
    """Every integer in [-300, 300], random ones up to `limit` in magnitude, and the edges
    around powers of two (both signs)."""
    rng = np.random.default_rng(seed)
    edges = [s * ((1 << p) + d) for p in range(0, 62) for d in (-1, 0, 1) for s in (1, -1)]
    edges = [e for e in edges if -limit <= e <= limit]
    return np.concatenate([np.arange(-300, 301), rng.integers(-limit, limit, 4000),
                           np.array(edges), np.array([-limit, limit])]).astype(np.int64)


@pytest.mark.parametrize("k", [1, 2, 6, 12, 24, 40, 62])
def test_floor_shift_is_numpys_arithmetic_shift_on_every_int64(k):
    x = np.concatenate([values(I64.max), np.array([I64.min, I64.min + 1, I64.max])])
    got = run_word(lambda b, v: b.floor_shift(v, k), x)
    np.testing.assert_array_equal(got, x >> k)
    assert (got[x < 0] < 0).all()  # a negative value never becomes a large positive one


@pytest.mark.parametrize("k", [1, 5, 12])
def test_trunc_shift_rounds_toward_zero(k):
    x = values(1 << 62)
    got = run_word(lambda b, v: b.trunc_shift(v, k), x)
    want = np.sign(x) * (np.abs(x) >> k)
    np.testing.assert_array_equal(got, want)
    # the same as Python's int division toward zero, computed independently
    np.testing.assert_array_equal(got[:601], [int(v / (1 << k)) for v in range(-300, 301)])


@pytest.mark.parametrize("exp", [-8, -3, -1, 0, 1, 7])
def test_shift_by_a_weight_exponent(exp):
    x = values(1 << 40)
    got = run_word(lambda b, v: b.shift(v, exp), x)
    np.testing.assert_array_equal(got, fixed_ops.shift(x, exp))


@pytest.mark.parametrize("d", [0, 1, 1024, 2048, 4095, 4096])
def test_decay_is_the_reference_simulators(d):
    x = values(FORMAT.state_max)

    def build(b, v):
        out = b.decay(v, d)
        return out if out is not None else b.op("Mul", v, b.const(0))

    np.testing.assert_array_equal(run_word(build, x), fixed_ops.decay(x, d))


def test_wrap_and_clip_at_24_bits():
    x = values(1 << 26)
    np.testing.assert_array_equal(run_word(lambda b, v: b.wrap24(v), x), fixed_ops.wrap24(x))
    np.testing.assert_array_equal(run_word(lambda b, v: b.clip24(v), x), fixed_ops.clip24(x))
