"""Fold a BatchNorm's scale into the next LIF's thresholds (docs/semantics.md, section 3).

For BN(u) with u = W s + b a synapse, a_k = weight_k / sqrt(var_k + eps) != 0, feeding a LIF
whose membrane rests and resets at 0 (hard reset to v_reset = 0, or soft reset):

    h[t] = decay * v[t-1] + gain * (a_k * (u_k - mean_k) + beta_k),   spike iff h[t] > th_k

Dividing by |a_k| > 0 keeps the comparison's direction and gives the same spikes with

    W''_k = sign(a_k) * W_k
    b''_k = sign(a_k) * (b_k - mean_k) + beta_k / |a_k|        (b = 0 when bias is None)
    th''_k = th_k / |a_k|

and the state v'' = v / |a_k|: a hard reset to 0 stays 0, a soft reset subtracts th''_k. The
sign must stay in the weights: a negative threshold would flip the comparison. `gain` and
`decay` are unchanged.

Only that exact pattern is folded; everything else is left for `fold_batchnorm`:
- CLIF: its reset adds sigmoid(M) and M decays by sigmoid(H / tau), both scale-dependent;
- a LIF with v_reset != 0 (the reset value would need scaling per channel);
- a channel with a_k = 0 (its output is the constant beta_k, which no threshold expresses);
- a synapse or BN output that something else reads.
"""

from __future__ import annotations

import logging

import numpy as np

from snnc.ir import LIF, BatchNorm, Graph, Node
from snnc.ir.node import channel_view
from snnc.passes import PassResult
from snnc.passes.fold_batchnorm import SYNAPSES

log = logging.getLogger(__name__)


def fold_thresholds(graph: Graph) -> PassResult:
    """Replace each BN between a synapse and a zero-reset LIF by per-channel LIF thresholds."""
    readers = graph.consumers()
    for out in graph.outputs:
        readers[out] = readers[out] + ["<output>"]
    updated: dict[str, Node] = {}
    removed: set[str] = set()
    notes: list[str] = []
    for bn in graph:
        if not isinstance(bn, BatchNorm) or not _matches(graph, bn, readers):
            continue
        syn, lif = graph[bn.inputs[0]], graph[readers[bn.name][0]]
        a = np.asarray(bn.scale(), np.float64)
        zero = np.flatnonzero(a == 0)
        if zero.size:
            notes.append(f"kept {bn.name} for fold_batchnorm: channels {zero.tolist()} have "
                         f"scale 0 (constant output), which a threshold cannot express")
            continue
        updated[syn.name] = _signed_synapse(syn, bn, a)
        updated[lif.name] = lif.replace(inputs=(syn.name,),
                                        threshold=_scaled_threshold(lif, np.abs(a)))
        removed.add(bn.name)
        notes.append(f"folded {bn.name} into {syn.name} and the thresholds of {lif.name}")
    for note in notes:
        log.debug("%s", note)
    if not removed:
        return PassResult(graph, False, notes)
    nodes = [updated.get(n.name, n) for n in graph if n.name not in removed]
    return PassResult(Graph.build(nodes, graph.outputs), True, notes)


def _matches(graph: Graph, bn: BatchNorm, readers: dict[str, list[str]]) -> bool:
    """BN reads a synapse only it reads, and is read only by a LIF that rests at 0."""
    src, out = bn.inputs[0], readers[bn.name]
    if type(graph[src]) not in SYNAPSES or readers[src] != [bn.name] or len(out) != 1:
        return False
    lif = graph.nodes.get(out[0])
    return type(lif) is LIF and lif.v_reset == 0.0


def _signed_synapse(syn: Node, bn: BatchNorm, a: np.ndarray) -> Node:
    """W'' = sign(a) W, b'' = sign(a) (b - mean) + beta / |a|."""
    sign = np.sign(a)
    w = np.asarray(syn.weight, np.float64)  # type: ignore[attr-defined]
    w = w * sign.reshape((-1,) + (1,) * (w.ndim - 1))
    bias = syn.bias  # type: ignore[attr-defined]
    b = np.zeros_like(a) if bias is None else np.asarray(bias, np.float64)
    b = sign * (b - np.asarray(bn.mean, np.float64)) + np.asarray(bn.bias, np.float64) / np.abs(a)
    return syn.replace(weight=w, bias=b)


def _scaled_threshold(lif: LIF, magnitude: np.ndarray) -> np.ndarray:
    """th'' = th / |a| per channel, for a scalar, per-channel or per-neuron threshold."""
    th = np.asarray(lif.threshold, np.float64)
    if th.ndim <= 1:
        return th / magnitude
    return th / channel_view(magnitude, th.shape)
