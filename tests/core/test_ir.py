"""The IR: construction, shape inference, validation errors, and the canonical text."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from snnc.errors import GraphError, ShapeError
from snnc.ir import (
    CLIF,
    LIF,
    Add,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dense,
    Flatten,
    Graph,
    Input,
    Readout,
    TensorType,
)
from snnc.ir.types import F32, SPIKE, DType


def conv(name, src, c_out=4, c_in=1, k=3, **kw):
    return Conv2d(name=name, inputs=(src,), weight=np.ones((c_out, c_in, k, k)), **kw)


def test_shapes_are_inferred_through_a_network():
    g = Graph.build([
        Input(name="x", shape=(2, 9, 9)),
        conv("c", "x", c_in=2, stride=(2, 2), padding=(1, 1)),
        LIF(name="s", inputs=("c",), decay=0.5, threshold=1.0),
        AvgPool2d(name="p", inputs=("s",), kernel=(2, 2), stride=(2, 2)),
        Flatten(name="f", inputs=("p",)),
        Dense(name="d", inputs=("f",), weight=np.zeros((3, 16))),
        Readout(name="r", inputs=("d",)),
    ])
    # conv: (9 + 2*1 - 3) // 2 + 1 = 5; pool: (5 - 2) // 2 + 1 = 2; flatten: 4*2*2 = 16
    assert g["c"].type == TensorType((4, 5, 5), F32)
    assert g["s"].type == TensorType((4, 5, 5), SPIKE)
    assert g["p"].type.shape == (4, 2, 2)
    assert g["f"].type.shape == (16,)
    assert g["r"].type.shape == (3,)
    assert g.outputs == ("r",)
    assert g.inputs == ("x",)


def test_nodes_are_frozen_and_arrays_read_only():
    w = np.ones((2, 3))
    d = Dense(name="d", inputs=("x",), weight=w)
    w[0, 0] = 5.0  # the node holds its own copy
    assert d.weight[0, 0] == 1.0
    with pytest.raises(ValueError):
        d.weight[0, 0] = 2.0
    with pytest.raises(AttributeError):
        d.name = "e"  # type: ignore[misc]


def test_build_orders_nodes_topologically_and_keeps_names():
    nodes = [
        Dense(name="d", inputs=("x",), weight=np.ones((2, 3))),
        Input(name="x", shape=(3,)),
    ]
    g = Graph.build(nodes)
    assert list(g.nodes) == ["x", "d"]


@pytest.mark.parametrize(
    "nodes, message",
    [
        ([Input(name="x", shape=(3,)), Input(name="x", shape=(3,))], "duplicate node name 'x'"),
        ([Input(name="x", shape=(3,)), Dense(name="d", inputs=("y",), weight=np.ones((2, 3)))],
         "edge 'y' -> 'd': no node named 'y'"),
        ([Input(name="x", shape=(3,)), Add(name="a", inputs=("x",))],
         "node 'a' (Add) takes two or more inputs"),
        ([Input(name="x", shape=(3,)), Dense(name="d", inputs=("x", "x"), weight=np.ones((2, 3)))],
         "node 'd' (Dense) takes 1 input(s), got 2"),
        ([Dense(name="d", inputs=("x",), weight=np.ones((3, 3))), Input(name="x", shape=(3,)),
          Dense(name="e", inputs=("d", "x"), weight=np.ones((3, 3)))], "takes 1 input(s)"),
        ([Dense(name="d", weight=np.ones((3, 3)))], "takes 1 input(s), got 0"),
    ],
)
def test_structural_errors_name_the_node_or_edge(nodes, message):
    with pytest.raises(GraphError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Graph.build(nodes)


def test_cycles_are_reported_with_their_path():
    nodes = [
        Input(name="x", shape=(3,)),
        Add(name="a", inputs=("x", "b")),
        Dense(name="b", inputs=("a",), weight=np.ones((3, 3))),
    ]
    with pytest.raises(GraphError, match="cycle: .*a.*b"):
        Graph.build(nodes)


def test_graph_without_input_is_rejected():
    with pytest.raises(GraphError, match="no Input node"):
        Graph.build([])


@pytest.mark.parametrize(
    "node, message",
    [
        (conv("c", "x", c_in=3), r"node 'c' \(Conv2d\): input channels: expected 3, got 1 "
                                 r"\(inputs: 'x' f32\[1,8,8\]\)"),
        (conv("c", "x", k=11), r"node 'c' \(Conv2d\): output size"),
        (Conv2d(name="c", inputs=("x",), weight=np.ones((4, 1, 3))), r"weight rank"),
        (conv("c", "x", bias=np.ones(3)),
         r"node 'c' \(Conv2d\): bias shape: expected \(4,\), got \(3,\)"),
        (conv("c", "x", stride=(0, 1)), r"field stride = \(0, 1\) is invalid"),
        (Dense(name="d", inputs=("x",), weight=np.ones((2, 65))),
         r"node 'd' \(Dense\): input size \(shape \(1, 8, 8\)\): expected 65, got 64"),
        (BatchNorm(name="b", inputs=("x",), mean=np.zeros(2), var=np.ones(1),
                   weight=np.ones(1), bias=np.zeros(1)),
         r"node 'b' \(BatchNorm\): mean shape: expected \(1,\), got \(2,\)"),
        (AvgPool2d(name="p", inputs=("x",), kernel=(3, 3), stride=(1, 1), padding=(2, 2)),
         r"node 'p' \(AvgPool2d\): field padding"),
        (LIF(name="s", inputs=("x",), decay=0.5, threshold=1.0, compare="=="),
         r"node 's' \(LIF\): field compare = '==' is invalid; accepted: '>', '>='"),
        (LIF(name="s", inputs=("x",), decay=1.5, threshold=1.0), r"field decay = 1.5"),
        (LIF(name="s", inputs=("x",), decay=0.5, threshold=np.ones(3)),
         r"node 's' \(LIF\): threshold shape: expected \(\) or \(1,\) or \(1, 8, 8\), got \(3,\)"),
        (LIF(name="s", inputs=("x",), decay=0.5, threshold=float("nan")),
         r"field threshold = nan is invalid; expected a finite number"),
        (LIF(name="s", inputs=("x",), decay=0.5, threshold=1.0, reset="soft", v_reset=-0.1),
         r"field v_reset = -0.1"),
        (CLIF(name="s", inputs=("x",), tau=1.0), r"node 's' \(CLIF\): field tau = 1.0 is invalid"),
        (Readout(name="r", inputs=("x",), decay=-0.1), r"node 'r' \(Readout\): field decay"),
    ],
)
def test_node_errors_name_the_node_and_expected_vs_actual(node, message):
    with pytest.raises(GraphError, match=message):
        Graph.build([Input(name="x", shape=(1, 8, 8)), node])


def test_add_names_the_mismatched_edge():
    message = r"shape of input 'b' .* expected \(4, 8, 8\), got \(4, 6, 6\)"
    with pytest.raises(ShapeError, match=message):
        Graph.build([
            Input(name="x", shape=(1, 8, 8)),
            conv("a", "x", padding=(1, 1)),
            conv("b", "x"),
            Add(name="sum", inputs=("a", "b")),
        ])


def test_declared_type_must_match_inference():
    with pytest.raises(ShapeError, match=r"node 'd' \(Dense\): declared output type f32\[3\] "
                                         r"but its inputs imply f32\[2\]"):
        Graph.build([
            Input(name="x", shape=(3,)),
            Dense(name="d", inputs=("x",), weight=np.ones((2, 3)), type=TensorType((3,))),
        ])


def test_validate_catches_a_graph_edited_out_of_order():
    g = Graph.build([Input(name="x", shape=(3,)),
                     Dense(name="d", inputs=("x",), weight=np.ones((2, 3)))])
    broken = Graph({"d": g["d"], "x": g["x"]}, g.outputs)
    with pytest.raises(GraphError, match="edge 'x' -> 'd'.*topological order"):
        broken.validate()


def test_bad_batchnorm_variance():
    with pytest.raises(GraphError, match="node 'b' .*field var"):
        Graph.build([Input(name="x", shape=(2,)),
                     BatchNorm(name="b", inputs=("x",), mean=np.zeros(2),
                               var=np.array([1.0, -1.0]), weight=np.ones(2), bias=np.zeros(2))])


def test_printer_gives_one_canonical_line_per_node():
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    g = Graph.build([
        Input(name="x", shape=(3,), encoding="spikes"),
        Dense(name="fc1", inputs=("x",), weight=w),
        LIF(name="lif1", inputs=("fc1",), decay=1, threshold=0.25, compare=">="),
    ])
    # The digest is recomputed here from its definition: dtype string, shape, raw bytes.
    digest = hashlib.sha256(b"<f4" + b"(2, 3)" + w.tobytes()).hexdigest()[:8]
    assert g.text().splitlines() == [
        '%x : b1[3] = Input() shape=(3,) encoding="spikes"',
        f"%fc1 : f32[2] = Dense(%x) weight=f32[2,3]#{digest} bias=None",
        '%lif1 : b1[2] = LIF(%fc1) decay=1.0 threshold=0.25 compare=">=" reset="hard" '
        "v_reset=0.0 gain=1.0",
        "return %lif1",
    ]


def test_printed_text_changes_with_any_weight():
    def graph(w):
        return Graph.build([Input(name="x", shape=(3,)),
                            Dense(name="d", inputs=("x",), weight=w)])

    w = np.ones((2, 3))
    w2 = w.copy()
    w2[1, 2] = np.nextafter(1.0, 2.0)
    assert graph(w).text() != graph(w2).text()
    assert graph(w).text() == graph(w.copy()).text()


def test_fixed_point_types_print_their_format():
    assert str(DType("i", 24, -6)) == "i24e-6"
    assert str(TensorType((128,), DType("i", 16))) == "i16[128]"
    with pytest.raises(ValueError):
        DType("q", 8)
