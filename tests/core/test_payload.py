"""The graded input's payload (snnc.ir.payload.input_payload), the one function the
reference simulator, the Lava backend and the cost model use. Values worked out by hand:
round half to even, then clip to the input's width."""

from __future__ import annotations

import numpy as np

from snnc.backends.refsim import simulate
from snnc.ir import FxDense, FxInput, FxReadout, Graph
from snnc.ir.payload import input_payload


def test_the_payload_rounds_half_to_even_and_clips_to_the_width():
    u8 = FxInput(name="x", shape=(6,), scale=2.0)  # unsigned 8 bits: [0, 255]
    x = np.array([0.25, 0.75, 1.25, -3.0, 200.0, 10.3])  # x2: .5, 1.5, 2.5, -6, 400, 20.6
    payload = input_payload(u8, x)
    assert payload.tolist() == [0, 2, 2, 0, 255, 21] and payload.dtype == np.int64
    s4 = FxInput(name="x", shape=(2, 2), scale=1.0, bits=4, signed=True)  # [-7, 7]
    assert input_payload(s4, [[-9.0, 9.0], [-2.5, 3.5]]).tolist() == [[-7, 7], [-2, 4]]


def test_the_reference_simulator_feeds_the_payload_to_the_first_synapse():
    # A 1 x 3 dense synapse of weight 2 into a readout that keeps v (no decay): after one
    # step v = (2 * (0 + 2 + 255)) << 6 = 32,896, in v units; the readout divides by its
    # scale (1.0) and by T = 1.
    graph = Graph.build([FxInput(name="x", shape=(3,), scale=2.0),
                         FxDense(name="fc", inputs=("x",), weight=np.full((1, 3), 2)),
                         FxReadout(name="out", inputs=("fc",), dv=0)])
    result = simulate(graph, np.array([[0.25, 0.75, 300.0]]), 1)
    assert result.readout["out"].tolist() == [[2 * (0 + 2 + 255) * 64]]
