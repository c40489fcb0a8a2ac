"""NIR test helpers: graphs written as snnTorch's exporter writes them, and two independent
runners of a NIR file, neither using snnc's frontend:

- `snntorch_run`: snnTorch's own importer (`snntorch.import_nir`: its node map through
  nirtorch), in float64, one sample at a time (snnTorch maps NIR's Flatten(start_dim=0) to
  torch's Flatten(0), which would flatten a batch dimension too);
- the same with hand-written torch modules for the nodes snnTorch does not map (IF, whose
  mapping is not NIR's IF: beta 0.9 and a subtractive reset; LI; I; Scale; Delay), each
  written from NIR's equations under forward Euler (nir/ir/neuron.py's docstrings).
"""

from __future__ import annotations

import contextlib
import io

import nir
import numpy as np
import torch

DT = 1e-4  # snnTorch's exporter and importer


def snntorch_lif(n, beta, thr, *, r_scale=1.0):
    """NIR LIF parameters as snnTorch's exporter writes a Leaky (export_nir.py): one value
    (n = 0: shape (1,), so the node's type says [1], not its layer's shape; nir.write cannot
    store the 0-d arrays snnTorch makes of a scalar beta) or one per neuron, tau = dt /
    (1 - beta), r = tau / dt (times `r_scale`), v_leak = 0."""
    tau = np.full(max(n, 1), DT / (1 - beta))
    shape = tau.shape
    return nir.LIF(tau=tau, r=tau / DT * r_scale, v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, thr), v_reset=np.zeros(shape))


def snntorch_cubalif(n, alpha, beta, thr):
    tau_syn, tau_mem = np.full(n, DT / (1 - alpha)), np.full(n, DT / (1 - beta))
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / DT, v_leak=np.zeros(n),
                       v_threshold=np.full(n, thr), v_reset=np.zeros(n), w_in=tau_syn / DT)


def graph(nodes: dict, edges: list) -> nir.NIRGraph:
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


# -- hand-written NIR nodes (forward Euler) ------------------------------------------------


class _Stateful(torch.nn.Module):
    def reset_mem(self):
        self.v = None


class EulerIF(_Stateful):
    def __init__(self, node):
        super().__init__()
        self.r, self.thr = _t(node.r), _t(node.v_threshold)
        self.v_reset = _t(node.v_reset)
        self.v = None

    def forward(self, x):
        v = (0 * x if self.v is None else self.v) + DT * self.r * x
        z = v > self.thr
        self.v = torch.where(z, self.v_reset.to(x.dtype), v)
        return z.to(x.dtype)


class EulerLI(_Stateful):
    def __init__(self, node):
        super().__init__()
        self.tau = None if isinstance(node, nir.I) else _t(node.tau)
        self.r = _t(node.r)
        self.v_leak = 0.0 if self.tau is None else _t(node.v_leak)
        self.v = None

    def forward(self, x):
        v = 0 * x if self.v is None else self.v
        self.v = v + DT * self.r * x if self.tau is None else \
            v + DT / self.tau * (self.v_leak - v + self.r * x)
        return self.v


class EulerScale(torch.nn.Module):
    def __init__(self, node):
        super().__init__()
        self.s = _t(node.scale)

    def forward(self, x):
        return x * self.s


class ZeroDelay(torch.nn.Module):
    def __init__(self, node):
        super().__init__()
        assert np.all(node.delay == 0)

    def forward(self, x):
        return x


HAND = {nir.IF: EulerIF, nir.LI: EulerLI, nir.I: EulerLI, nir.Scale: EulerScale,
        nir.Delay: ZeroDelay}


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def snntorch_model(g: nir.NIRGraph, hand: bool = False) -> torch.nn.Module:
    """snnTorch's import_from_nir; with `hand`, its node map plus the HAND modules (the same
    call import_from_nir makes, nirtorch.nir_to_torch, with more entries)."""
    import nirtorch
    from snntorch import import_nir

    with contextlib.redirect_stdout(io.StringIO()):  # snnTorch prints its progress
        if not hand:
            net = import_nir.import_from_nir(g)
        else:
            g = import_nir._replace_rnn_subgraph_with_nirgraph(g)
            node_map = {t: (lambda n: import_nir._nir_to_snntorch_module(n, init_hidden=True))
                        for t in (nir.Affine, nir.Linear, nir.Conv2d, nir.Flatten,
                                  nir.AvgPool2d, nir.LIF, nir.CubaLIF)}
            node_map.update(HAND)
            net = nirtorch.nir_to_torch(g, node_map)
    return net.double()


def snntorch_run(g: nir.NIRGraph, x: np.ndarray, timesteps: int, hand: bool = False
                 ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({neuron node key: [T, N, ...] outputs}, graph output [T, N, ...]) for x [N, ...]
    (the same frame every step), each sample from rest."""
    net = snntorch_model(g, hand)
    names = _module_names(g)
    record: dict[str, list] = {}
    hooks = []
    for name, mod in net.named_modules():
        if name in names and _is_neuron(mod):
            hooks.append(mod.register_forward_hook(
                lambda m, i, o, key=names[name]: _keep(record[key], o)))
    per_sample, outs = {k: [] for k in names.values()}, []
    with torch.no_grad():
        for sample in x:
            for mod in net.modules():
                if hasattr(mod, "reset_mem"):
                    mod.reset_mem()
            record.clear()
            record.update({names[n]: [] for n, m in net.named_modules()
                           if n in names and _is_neuron(m)})
            steps = [net(torch.as_tensor(sample, dtype=torch.float64))[0].numpy().copy()
                     for _ in range(timesteps)]
            outs.append(np.stack(steps))
            for k, v in record.items():
                per_sample[k].append(np.stack(v))
    for h in hooks:
        h.remove()
    return ({k: np.stack(v, axis=1) for k, v in per_sample.items() if v},
            np.stack(outs, axis=1))


def _keep(into: list, out):
    """Record a neuron's output; return it as float64 (snnTorch's spike function returns
    float32 whatever the input's dtype, and the next layer is float64)."""
    o = out[0] if isinstance(out, tuple) else out
    into.append(o.detach().numpy().copy())
    return o.to(torch.float64) if not isinstance(out, tuple) else out


def _module_names(g: nir.NIRGraph, prefix: str = "", path: str = "") -> dict[str, str]:
    """nirtorch's module name (keys sanitised, nested graphs as submodules) -> NIR path."""
    out = {}
    for key, node in g.nodes.items():
        mod, p = f"{prefix}{key.replace('.', '_')}", f"{path}{key}"
        out[mod] = p
        if isinstance(node, nir.NIRGraph):
            out.update(_module_names(node, f"{mod}.", f"{p}."))
    return out


def _is_neuron(mod) -> bool:
    import snntorch

    return isinstance(mod, snntorch.SpikingNeuron | _Stateful)
