"""What the fixed-point nodes accept (Lava 0.10's widths: docs/semantics.md section 4;
snnc/ir/fixed.py).

The golden integer traces worked by hand (LIF hard and soft reset, decay rounding, bias
exponent, u wrap, v clip, CLIF, weight exponent, graded input, conv and add) are data in
tests/cases/fx_*.json, run on every backend (tests/core/test_golden_cases.py and its
siblings in tests/compile and tests/lava).
"""

from __future__ import annotations

import numpy as np
import pytest

from snnc.backends.refsim import simulate
from snnc.errors import GraphError
from snnc.ir import FxDense, FxInput, FxLIF, Graph


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
