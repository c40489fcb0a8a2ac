"""Golden node cases as data (tests/cases/*.json), in the manner of onnx's backend test cases,
and what every backend's runner shares: loading a case, which of its expected values each
backend exposes, and the comparison.

Loaded by path from tests/conftest.py (pytest's importlib mode keeps tests/ off sys.path);
it imports neither torch nor lava, so both environments use it.

A case file holds:

    name        optional: the file's stem, which names the case
    why         the hand derivation of the expected values, one string per line
    graph       the nodes in order: {"op": IR type name, "name": ..., "inputs": [...], fields};
                a numpy field is {"array": nested list, "dtype": "int64" | "float64" | "bool"}
                (float64 if no dtype);
                decoded by the IR's own serializer (snnc.ir.serialize.graph_from_doc)
    inputs      the graph input's values: [batch, *shape] (the same frame every step) or
                [T, batch, *shape] (one frame per step)
    timesteps   T
    timing      the timing the expected values are for: "zero" (the trained model's: no delay
                per synaptic hop), the only one the runners implement
    expected    "spikes": {layer: [T, batch, *shape] of 0/1}, one entry per spiking layer;
                "states": {layer: {variable: [T, batch, *shape]}};
                "readout": {layer: [batch, *shape]}, the readout's final value
    atol        optional absolute tolerance for states and readouts (default 0: exact)
    types       optional {layer: printed output type}, e.g. "i16[1,2,2]"
    backends    the backends that run the case (BACKENDS); a backend not listed must refuse
                the graph, and its runner asserts that
    unchecked   optional {backend: [expected key, ...]}: the expected values a listed backend
                runs but does not expose (Lava records no hidden layer's state); the runners
                assert this list is exactly what the backend cannot see

An expected value is named by a key: "spikes/LAYER", "states/LAYER/VAR" or "readout/LAYER".
What each backend checks (`exposed`):

    refsim, refsim-torch   every spike, state and readout (the reference simulator records
                           all of them; zero-delay timing, as the cases are written)
    lava-fixed, lava-float every spiking layer's spikes, each readout's final value and its v
                           at every step: Lava's records, read in each layer's window of the
                           pipeline schedule (analyses/timing.py); no hidden layer's state
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snnc.analyses.timing import schedule
from snnc.ir import FxConv2d, FxDense, FxInput, FxNeuron, Graph, Neuron
from snnc.ir.serialize import graph_from_doc

CASES_DIR = Path(__file__).resolve().parent / "cases"
BACKENDS = ("refsim", "refsim-torch", "lava-fixed", "lava-float")
#: The test argument that receives a backend's cases (conftest's pytest_generate_tests).
CASE_ARGS = {"refsim_case": "refsim", "refsim_torch_case": "refsim-torch",
             "lava_fixed_case": "lava-fixed", "lava_float_case": "lava-float"}
TIMINGS = ("zero",)
_REQUIRED = ("why", "graph", "inputs", "timesteps", "timing", "expected", "backends")
_OPTIONAL = ("name", "atol", "types", "unchecked")
_KINDS = ("spikes", "states", "readout")


class CaseError(ValueError):
    """A case file that does not follow the format above; the message names file and key."""


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    why: str
    graph: Graph
    inputs: np.ndarray
    timesteps: int
    timing: str
    expected: dict[str, np.ndarray]
    backends: tuple[str, ...]
    atol: float = 0.0
    types: dict[str, str] = field(default_factory=dict)
    unchecked: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def precision(self) -> str:
        """"fixed" when the graph is quantized (Fx* nodes), else "float"."""
        fixed = (FxInput, FxConv2d, FxDense, FxNeuron)
        return "fixed" if any(isinstance(n, fixed) for n in self.graph) else "float"

    def __str__(self) -> str:
        return self.name


# -- loading ----------------------------------------------------------------------------------

def _fail(path: Path, where: str, value: Any, accepted: str) -> CaseError:
    return CaseError(f"{path.name}: {where} = {value!r} is invalid; {accepted}")


def _node_doc(path: Path, i: int, spec: Any, arrays: dict[str, np.ndarray]) -> dict:
    """One node of the case's compact spec as a node of graph_to_doc's document."""
    if not isinstance(spec, dict) or not isinstance(spec.get("op"), str):
        raise _fail(path, f"graph[{i}]", spec, 'expected {"op": TYPE, "name": ..., fields}')
    fields = {}
    for key, value in spec.items():
        if key == "op":
            continue
        if isinstance(value, dict) and "array" in value:
            dtype = value.get("dtype", "float64")
            if set(value) - {"array", "dtype"} or dtype not in ("int64", "float64", "bool"):
                raise _fail(path, f"graph[{i}].{key}", value,
                            'expected {"array": [...], "dtype": "int64"|"float64"|"bool"}')
            ref = f"a{len(arrays)}"
            arrays[ref] = np.array(value["array"], dtype=dtype)
            value = {"$array": ref}
        fields[key] = value
    return {"op": spec["op"], "fields": fields}


def _expected(path: Path, doc: Any, graph: Graph) -> dict[str, np.ndarray]:
    if not isinstance(doc, dict) or set(doc) - set(_KINDS):
        raise _fail(path, "expected", doc, f"expected an object with keys among {_KINDS}")
    out: dict[str, np.ndarray] = {}
    for layer, values in doc.get("spikes", {}).items():
        out[f"spikes/{layer}"] = np.array(values, dtype=bool)
    for layer, states in doc.get("states", {}).items():
        if not isinstance(states, dict):
            raise _fail(path, f"expected.states.{layer}", states, "expected {variable: [...]}")
        for var, values in states.items():
            out[f"states/{layer}/{var}"] = np.array(values, dtype=np.float64)
    for layer, values in doc.get("readout", {}).items():
        out[f"readout/{layer}"] = np.array(values, dtype=np.float64)
    for key in out:
        kind, layer, *var = key.split("/")
        node = graph.nodes.get(layer)
        if not isinstance(node, Neuron):
            raise _fail(path, f"expected.{kind}", layer, "expected the name of a neuron layer "
                        f"of the graph: {[n.name for n in graph if isinstance(n, Neuron)]}")
        if kind != "states" and node.spiking != (kind == "spikes"):
            raise _fail(path, f"expected.{kind}", layer, f"{layer!r} ({node.op}) gives "
                        f"{'spikes' if node.spiking else 'a readout'}")
    spiking = {n.name for n in graph if isinstance(n, Neuron) and n.spiking}
    listed = {k.split("/")[1] for k in out if k.startswith("spikes/")}
    if listed != spiking:
        raise _fail(path, "expected.spikes", sorted(listed),
                    f"expected one entry per spiking layer: {sorted(spiking)}")
    return out


def load_case(path: Path) -> Case:
    """Read and check one case file; raises CaseError naming the file and the key."""
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CaseError(f"{path.name}: not valid JSON: {err}") from None
    unknown = sorted(set(doc) - set(_REQUIRED) - set(_OPTIONAL))
    missing = [k for k in _REQUIRED if k not in doc]
    if unknown or missing:
        raise _fail(path, "keys", unknown or missing, f"required {list(_REQUIRED)}, optional "
                    f"{list(_OPTIONAL)}")
    if doc.get("name", path.stem) != path.stem:
        raise _fail(path, "name", doc["name"], f"expected the file's stem {path.stem!r}")
    arrays: dict[str, np.ndarray] = {}
    nodes = [_node_doc(path, i, spec, arrays) for i, spec in enumerate(doc["graph"])]
    graph = graph_from_doc({"nodes": nodes, "outputs": None}, arrays)  # outputs: the leaves
    if doc["timing"] not in TIMINGS:
        raise _fail(path, "timing", doc["timing"], f"accepted: {list(TIMINGS)}")
    backends = doc["backends"]
    if not isinstance(backends, list) or not set(backends) <= set(BACKENDS) or not backends:
        raise _fail(path, "backends", backends, f"expected a list drawn from {list(BACKENDS)}")
    unchecked = {b: frozenset(keys) for b, keys in doc.get("unchecked", {}).items()}
    if not set(unchecked) <= set(backends):
        raise _fail(path, "unchecked", sorted(unchecked), f"expected backends among {backends}")
    why = doc["why"]
    if not isinstance(why, list) or not why or not all(isinstance(s, str) for s in why):
        raise _fail(path, "why", why, "expected the derivation as a list of lines")
    t = doc["timesteps"]
    if not isinstance(t, int) or t < 1:
        raise _fail(path, "timesteps", t, "expected a positive integer")
    return Case(name=path.stem, path=path, why="\n".join(why), graph=graph,
                inputs=np.array(doc["inputs"], dtype=np.float64), timesteps=t,
                timing=doc["timing"], expected=_expected(path, doc["expected"], graph),
                backends=tuple(backends), atol=float(doc.get("atol", 0.0)),
                types=dict(doc.get("types", {})), unchecked=unchecked)


def load_cases(folder: Path = CASES_DIR) -> list[Case]:
    return [load_case(p) for p in sorted(folder.glob("*.json"))]


def cases_for(backend: str) -> list[Case]:
    """The cases that declare `backend`."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r} is not one of {list(BACKENDS)}")
    return [c for c in load_cases() if backend in c.backends]


# -- what a backend exposes, and the comparison ------------------------------------------------

def _lava_exposes(case: Case, key: str) -> bool:
    kind, layer, *var = key.split("/")
    node = case.graph[layer]
    return (kind == "spikes" or kind == "readout"
            or (kind == "states" and not node.spiking and var == ["v"]))


EXPOSES: dict[str, Callable[[Case, str], bool]] = {
    "refsim": lambda case, key: True,
    "refsim-torch": lambda case, key: True,
    "lava-fixed": _lava_exposes,
    "lava-float": _lava_exposes,
}


def checked_keys(case: Case, backend: str) -> list[str]:
    """The expected values `backend` exposes for this case, in file order."""
    return [k for k in case.expected if EXPOSES[backend](case, k)]


def check(case: Case, backend: str, got: dict[str, np.ndarray]) -> int:
    """Compare a backend's values (by key) with the case's; returns how many values it checked.

    The expected keys the backend does not expose must be exactly those the case declares
    unchecked for it, and it must check at least one value."""
    keys = checked_keys(case, backend)
    hidden = set(case.expected) - set(keys)
    declared = case.unchecked.get(backend, frozenset())
    assert hidden == declared, (
        f"{case.name} on {backend}: not exposed {sorted(hidden)}, declared unchecked "
        f"{sorted(declared)}")
    assert keys, f"{case.name} on {backend}: no expected value is exposed"
    spiking = {k for k in got if k.startswith("spikes/")}
    assert spiking == {k for k in case.expected if k.startswith("spikes/")}, (
        f"{case.name} on {backend}: spiking layers {sorted(spiking)}")
    count = 0
    for key in keys:
        where = f"{case.name} on {backend}: {key}"
        assert key in got, f"{where}: the backend recorded only {sorted(got)}"
        want, have = case.expected[key], np.asarray(got[key])
        assert have.shape == want.shape, f"{where}: shape {have.shape}, expected {want.shape}"
        if key.startswith("spikes/"):
            np.testing.assert_array_equal(have.astype(bool), want, err_msg=where)
        else:
            np.testing.assert_allclose(have, want, rtol=0, atol=case.atol, err_msg=where)
        count += want.size
    return count


def refsim_values(case: Case, engine: str = "numpy") -> dict[str, np.ndarray]:
    """Every value the reference simulator records for the case, by key."""
    from snnc.backends.refsim import simulate

    res = simulate(case.graph, case.inputs, case.timesteps, record_states=True,
                   timing=case.timing, engine=engine)
    got = {f"spikes/{n}": s for n, s in res.spikes.items()}
    got.update({f"states/{n}/{v}": a for n, st in res.states.items() for v, a in st.items()})
    got.update({f"readout/{n}": r for n, r in res.readout.items()})
    return got


def hardware_values(case: Case, records: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A hardware-timed record `{layer: [T + latency, batch, ...]}` (spikes, or a readout's v:
    what the Lava backend returns) as the case's keys: spikes and readouts as `snnc check`
    reads them (tools/check.windows: each layer in its window [depth, depth + T) of the
    pipeline schedule), and each readout's v over the same window."""
    from snnc.tools.check import windows

    res = windows(case.graph, records, case.timesteps)
    depth = schedule(case.graph).depth
    got = {f"spikes/{n}": s for n, s in res.spikes.items()}
    got.update({f"readout/{n}": r for n, r in res.readout.items()})
    got.update({f"states/{n}/v": records[n][depth[n]:depth[n] + case.timesteps]
                for n in res.readout})
    return got
