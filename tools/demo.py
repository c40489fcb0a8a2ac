"""A tiny built-in network, so the pipeline can be run end to end without any checkpoint."""

from __future__ import annotations

import numpy as np

from snnc.ir import (
    LIF,
    AvgPool2d,
    BatchNorm,
    Conv2d,
    Dense,
    Flatten,
    Graph,
    Input,
    Readout,
)


def tiny_network(seed: int = 0) -> Graph:
    """Conv-BN-LIF, pool, dense-LIF, dense readout on 1x8x8 analog input; seeded weights."""
    rng = np.random.default_rng(seed)
    c = 4
    return Graph.build([
        Input(name="x", shape=(1, 8, 8)),
        Conv2d(name="conv1", inputs=("x",), weight=rng.normal(0, 0.6, (c, 1, 3, 3)),
               bias=np.zeros(c), padding=(1, 1)),
        BatchNorm(name="bn1", inputs=("conv1",), mean=rng.normal(0, 0.1, c),
                  var=rng.uniform(0.5, 1.5, c), weight=rng.uniform(0.5, 1.0, c),
                  bias=rng.normal(0.1, 0.1, c)),
        LIF(name="sn1", inputs=("bn1",), decay=0.5, threshold=0.5, compare=">"),
        AvgPool2d(name="pool1", inputs=("sn1",), kernel=(2, 2), stride=(2, 2)),
        Flatten(name="flat", inputs=("pool1",)),
        Dense(name="fc1", inputs=("flat",), weight=rng.normal(0, 0.5, (32, c * 16)),
              bias=np.zeros(32)),
        LIF(name="sn2", inputs=("fc1",), decay=0.5, threshold=0.5, reset="soft"),
        Dense(name="fc2", inputs=("sn2",), weight=rng.normal(0, 0.5, (10, 32))),
        Readout(name="out", inputs=("fc2",)),
    ])


def sample_inputs(batch: int, seed: int = 0) -> np.ndarray:
    """Random 8x8 images with values in [0, 1], shaped like sklearn's scaled digits."""
    return np.random.default_rng(seed).integers(0, 17, (batch, 1, 8, 8)) / 16.0
