"""NIR's equations run directly, forward Euler with step dt, in numpy: the check `snnc compile`
makes of a .nir file's IR (the IR folds scales into weights, gains and thresholds; this runs
the file's own parameters, one node at a time, as docs/semantics.md §7 writes them).

Per step t, x the sum of a node's incoming values at step t:
    LIF      v += dt/tau (v_leak - v + r x);  z = v > v_threshold;  v = v_reset where z
    IF       v += dt r x;                      z, reset as LIF
    LI       v += dt/tau (v_leak - v + r x);   output v
    I        v += dt r x;                      output v
    CubaLIF  i += dt/tau_syn (w_in x - i);  v += dt/tau_mem (v_leak - v + r i);  z, reset
States start at 0 (v_leak = v_reset = 0 are the only values the converter accepts).
"""

from __future__ import annotations

import numpy as np

from snnc.backends.refsim.kernels import avg_pool2d, conv2d
from snnc.compare import CompileCheck, LayerAgreement, compare_spikes
from snnc.frontends.nir.graph import Flat


def run(flat: Flat, x: np.ndarray, timesteps: int, dt: float, shape: tuple[int, ...]
        ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(spikes [T, N, ...] per spiking node, last-step v [N, ...] per LI/I node) for inputs
    x [N, *shape] (the same frame every step) or [T, N, *shape]."""
    seq = x if x.ndim == len(shape) + 2 else np.broadcast_to(x, (timesteps, *x.shape))
    state: dict[str, dict[str, np.ndarray]] = {}
    spikes: dict[str, list[np.ndarray]] = {}
    final: dict[str, np.ndarray] = {}
    for t in range(timesteps):
        out: dict[str, np.ndarray] = {}
        for path, node in flat.nodes.items():
            if node.type == "Input":
                out[path] = np.asarray(seq[t], dtype=np.float64)
                continue
            xin = sum(out[p] for p in flat.reads[path])
            f = {k: (np.asarray(v, dtype=np.float64) if not isinstance(v, str | dict) else v)
                 for k, v in node.fields.items()}
            s = state.setdefault(path, {})
            y = _step(node.type, f, xin, s, dt)
            out[path] = y
            if node.type in ("LIF", "IF", "CubaLIF"):
                spikes.setdefault(path, []).append(y > 0)
            elif node.type in ("LI", "I"):
                final[path] = y
    return {k: np.stack(v) for k, v in spikes.items()}, final


def _step(kind: str, f: dict, x: np.ndarray, s: dict, dt: float) -> np.ndarray:
    if kind in ("Output", "_pass", "Delay"):
        return x
    if kind == "Affine":
        return x @ f["weight"].T + f["bias"]
    if kind == "Linear":
        return x @ f["weight"].T
    if kind == "Scale":
        return x * f["scale"]
    if kind == "Flatten":
        nd = x.ndim - 1
        a, b = (int(np.asarray(f[k]).ravel()[0]) % nd for k in ("start_dim", "end_dim"))
        return x.reshape(x.shape[:a + 1] + (-1,) + x.shape[b + 2:])
    if kind == "Conv2d":
        pad = f["padding"]
        k = f["weight"].shape[2:]
        if isinstance(pad, str):
            pad = (0, 0) if pad == "valid" else (k[0] // 2, k[1] // 2)
        return conv2d(x, f["weight"], _pair(f["stride"]), _pair(pad)) + \
            f["bias"].reshape(1, -1, 1, 1)
    if kind in ("AvgPool2d", "SumPool2d"):
        k = _pair(f["kernel_size"])
        y = avg_pool2d(x, k, _pair(f["stride"]), _pair(f["padding"]))
        return y * (k[0] * k[1]) if kind == "SumPool2d" else y
    v = s.get("v", np.zeros_like(x))
    if kind == "CubaLIF":
        i = s.get("i", np.zeros_like(x))
        i = i + dt / f["tau_syn"] * (f.get("w_in", 1.0) * x - i)
        v = v + dt / f["tau_mem"] * (f["v_leak"] - v + f["r"] * i)
        s["i"] = i
    elif kind in ("LIF", "LI"):
        v = v + dt / f["tau"] * (f["v_leak"] - v + f["r"] * x)
    else:  # IF, I
        v = v + dt * f["r"] * x
    if kind in ("LI", "I"):
        s["v"] = v
        return v
    z = v > f["v_threshold"]
    s["v"] = np.where(z, f.get("v_reset", 0.0), v)
    return z.astype(np.float64)


def _pair(value) -> tuple[int, int]:
    a = np.asarray(value).ravel()
    return int(a[0]), int(a[-1])


def check(graph, flat: Flat, inputs: np.ndarray, timesteps: int, dt: float) -> CompileCheck:
    """The IR's float simulation against `run` on the same inputs: spikes per layer, equal
    or not; a readout's last value within 1e-9 relative (folding a readout's input scale
    into weights changes the rounding)."""
    from snnc.backends.refsim import simulate

    shape = tuple(graph[graph.inputs[0]].shape)
    spikes, final = run(flat, inputs, timesteps, dt, shape)
    sim = simulate(graph, inputs, timesteps)
    report = CompileCheck(samples=inputs.shape[-len(shape) - 1], timesteps=timesteps,
                          against="file")
    for name, ref in spikes.items():
        report.layers.append(compare_spikes(name, ref, sim.spikes[name], against="file"))
    for name, ref in final.items():
        got = sim.readout[name]
        report.output_max_abs_diff[name] = float(np.max(np.abs(got - ref))) if ref.size else 0.0
        scale = max(1.0, float(np.max(np.abs(ref)))) if ref.size else 1.0
        report.layers.append(LayerAgreement(f"{name} (readout)", int(ref.size),
                                            int(np.sum(np.abs(got - ref) > 1e-9 * scale))))
    return report
