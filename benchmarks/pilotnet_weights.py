"""Convert lava-dl's trained PilotNet LIF (`network.net`, HDF5) to the npz that
`benchmarks/pilotnet.py` reads, so the benchmark needs neither h5py nor the network.

    pip install h5py   # in any Python with numpy
    python benchmarks/pilotnet_weights.py network.net benchmarks/data/pilotnet_lif.npz

Source: lava-nc/lava-dl, tutorials/lava/lib/dl/netx/pilotnet_snn/network.net (commit
56099b9c238e383f15a2bd52390c2d8d5cd30b6f), Copyright (c) 2021 Intel Corporation, BSD
3-Clause License (benchmarks/data/README.md). Every weight and bias there is an integer (the
chip's mantissas, weight exponent 0); they are stored as such, with each layer's neuron
parameters, and nothing else.
"""

from __future__ import annotations

import sys

import numpy as np


def convert(src: str, dst: str) -> None:
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(src, "r") as f:
        layers = f["layer"]
        for key in sorted(layers, key=int):
            g = layers[key]
            kind = g["type"][0].decode()
            out[f"{key}/type"] = np.array(kind)
            out[f"{key}/shape"] = g["shape"][()].astype(np.int64)
            for name in ("stride", "padding", "kernelSize"):
                if name in g:
                    out[f"{key}/{name}"] = g[name][()].astype(np.int64)
            for name in ("weight", "bias"):
                if name in g and np.ndim(g[name][()]) > 0:
                    value = g[name][()]
                    if not np.array_equal(value, np.round(value)):
                        raise ValueError(f"layer {key} {name} is not integer-valued")
                    out[f"{key}/{name}"] = value.astype(np.int16)
            if "neuron" in g:
                for name in ("vThMant", "vDecay", "iDecay", "wgtExp"):
                    out[f"{key}/{name}"] = np.array(int(g["neuron"][name][()]))
    np.savez_compressed(dst, **out)


if __name__ == "__main__":
    convert(*sys.argv[1:3])
