"""Fold average pooling and flatten into the synapses that read them.

On the chip only synapses compute weighted sums, so these stateless linear maps must vanish
into synapse weights. Per channel, on an input x of size (H, W) zero-extended to x~, a pool
with kernel k, stride s and padding p (zeros counted, torch's count_include_pad=True) is

    y[a, b] = 1/(k0*k1) * sum_{u<k0, v<k1} x~[s0*a + u - p0, s1*b + v - p1],   a < Hp, b < Wp

a linear map y = P x. Each fold below is exact in real arithmetic:

    Flatten -> Dense:  Dense reads its input row-major itself, so the Flatten goes.
    Pool -> Dense:     W @ flatten(P x) = (W @ P) @ flatten(x), with P block-diagonal over
                       channels; any k, s, p.
    Pool -> Conv2d (kernel K, stride S, padding Pc), along each axis:
        z[i] = sum_{q<K} W[q] y~[S*i + q - Pc]
             = sum_{m < s*(K-1)+k} W'[m] x~[s*S*i + m - (p + s*Pc)],
        W'[m] = 1/k * sum_{q, u<k : s*q + u = m} W[q]
      i.e. a conv with kernel s*(K-1)+k, stride s*S and padding p + s*Pc (same bias), and the
      same output size. The substitution of y~ by the pooled x~ is exact where the conv reads
      its zero padding only if every padded pooled position covers zeros of x~ alone:
        Pc = 0 (no padding read), or both
        near side (a = -1):                      k - p <= s
        far side (a = Hp), when the conv reads it:  s*Hp - p >= H
      For s = k, p = 0 this is kernel k*K, stride k*S, padding k*Pc and W'[m] = W[m // k] / k,
      exact when Pc = 0 or H is a multiple of k (or the conv never reads the far padding).

A pool or flatten is removed only when every reader is a synapse it folds into exactly and it
is not a graph output; otherwise it is left as it is, with a note saying why.
"""

from __future__ import annotations

import logging

import numpy as np

from snnc.ir import AvgPool2d, Conv2d, Dense, Flatten, Graph, Node
from snnc.passes import PassResult

log = logging.getLogger(__name__)


def fold_pooling(graph: Graph) -> PassResult:
    """Remove every AvgPool2d and Flatten that folds exactly into the synapses reading it."""
    nodes: dict[str, Node] = dict(graph.nodes)
    notes: list[str] = []
    changed = False
    # Readers first, so pool -> flatten -> dense and pool -> pool -> synapse chains fold whole.
    for name in reversed(list(graph.nodes)):
        node = nodes[name]
        if not isinstance(node, Flatten | AvgPool2d):
            continue
        readers = [n for n in nodes.values() if name in n.inputs]
        reason = _blocker(node, readers, nodes, graph.outputs)
        if reason:
            notes.append(f"left {node.op} {name!r}: {reason}")
            continue
        folded = [_fold_into(node, r, nodes) for r in readers]
        for new in folded:
            nodes[new.name] = new
        del nodes[name]
        changed = True
        notes.append(_describe(node, readers, folded))
    for note in notes:
        log.debug(note)
    new_graph = Graph.build(nodes.values(), graph.outputs) if changed else graph
    return PassResult(new_graph, changed, notes)


def pool_matrix(pool: AvgPool2d, height: int, width: int) -> np.ndarray:
    """P [Hp*Wp, H*W] with pool(x)[c].ravel() == P @ x[c].ravel() for every channel c."""
    (kh, kw), (sh, sw), (ph, pw) = pool.kernel, pool.stride, pool.padding
    hp = (height + 2 * ph - kh) // sh + 1
    wp = (width + 2 * pw - kw) // sw + 1
    p = np.zeros((hp, wp, height, width))
    for a in range(hp):
        r0 = a * sh - ph
        for b in range(wp):
            c0 = b * sw - pw
            p[a, b, max(r0, 0):r0 + kh, max(c0, 0):c0 + kw] = 1.0 / (kh * kw)
    return p.reshape(hp * wp, height * width)


def _blocker(node: Node, readers: list[Node], nodes: dict[str, Node],
             outputs: tuple[str, ...]) -> str | None:
    """Why `node` cannot be folded away, or None when it can."""
    if node.name in outputs:
        return "it is a graph output"
    if not readers:
        return "nothing reads it"
    for r in readers:
        if isinstance(r, Dense):
            continue
        if isinstance(node, AvgPool2d) and isinstance(r, Conv2d):
            reason = _conv_blocker(node, r, nodes[node.inputs[0]].type.shape)
            if reason:
                return f"read by Conv2d {r.name!r}, but {reason}"
            continue
        accepted = "Dense or Conv2d" if isinstance(node, AvgPool2d) else "Dense"
        return f"read by {r.op} {r.name!r}; it folds only into {accepted} readers"
    return None


def _conv_blocker(pool: AvgPool2d, conv: Conv2d, in_shape: tuple[int, ...]) -> str | None:
    """Why folding `pool` into `conv` would not be exact (module docstring), or None."""
    for axis, label in ((0, "rows"), (1, "columns")):
        k, s, p = pool.kernel[axis], pool.stride[axis], pool.padding[axis]
        kc, sc, pc = conv.weight.shape[2 + axis], conv.stride[axis], conv.padding[axis]
        size, pooled = in_shape[1 + axis], pool.type.shape[1 + axis]
        if pc == 0:
            continue
        if k - p > s:
            return (f"its padding covers pooled {label} whose windows (kernel {k}, stride {s}, "
                    f"padding {p}) overlap the input")
        last_read = sc * (conv.type.shape[1 + axis] - 1) + kc - 1 - pc
        if last_read >= pooled and s * pooled - p < size:
            return (f"its padding covers the pooled {label} past the last window, where the "
                    f"input ({size} {label}, kernel {k}, stride {s}) still has values")
    return None


def _fold_into(node: Node, reader: Node, nodes: dict[str, Node]) -> Node:
    """`reader` rewritten to read `node`'s input directly, computing the same value."""
    source = node.inputs[0]
    if isinstance(node, Flatten):
        return reader.replace(inputs=(source,))
    in_shape = nodes[source].type.shape
    if isinstance(reader, Dense):
        c, h, w = in_shape
        p = pool_matrix(node, h, w)
        weight = np.asarray(reader.weight, np.float64)
        folded = (weight.reshape(len(weight), c, p.shape[0]) @ p).reshape(len(weight), c * h * w)
        return reader.replace(inputs=(source,), weight=folded)
    return _fold_conv(node, reader)


def _fold_conv(pool: AvgPool2d, conv: Conv2d) -> Conv2d:
    (kh, kw), (sh, sw), (ph, pw) = pool.kernel, pool.stride, pool.padding
    c_out, c_in, kc_h, kc_w = conv.weight.shape
    weight = np.asarray(conv.weight, np.float64) / (kh * kw)
    folded = np.zeros((c_out, c_in, sh * (kc_h - 1) + kh, sw * (kc_w - 1) + kw))
    for u in range(kh):
        for v in range(kw):
            folded[:, :, u:u + sh * (kc_h - 1) + 1:sh, v:v + sw * (kc_w - 1) + 1:sw] += weight
    return conv.replace(
        inputs=pool.inputs,
        weight=folded,
        stride=(sh * conv.stride[0], sw * conv.stride[1]),
        padding=(ph + sh * conv.padding[0], pw + sw * conv.padding[1]),
    )


def _describe(node: Node, readers: list[Node], folded: list[Node]) -> str:
    if isinstance(node, Flatten):
        names = ", ".join(repr(r.name) for r in readers)
        return f"removed Flatten {node.name!r}: Dense {names} now read {node.inputs[0]!r}"
    parts = []
    for old, new in zip(readers, folded, strict=True):
        shape = f"weight {list(old.weight.shape)} -> {list(new.weight.shape)}"
        if isinstance(new, Conv2d):
            shape += f", stride {new.stride}, padding {new.padding}"
        parts.append(f"{old.op} {old.name!r} ({shape})")
    return (f"folded AvgPool2d {node.name!r} (kernel {node.kernel}, stride {node.stride}, "
            f"padding {node.padding}) into {'; '.join(parts)}")
