"""The deployment check: every rung of the equivalence ladder (architecture.md) for one
artifact, as a report that prints as tables, serialises to JSON and renders to HTML.

Rungs, in order; each passes, fails, or is skipped (with the reason):

1. `trace`: the compiler's own check of the traced IR against torch, read from the
   artifact's metadata (torch is not needed here);
2. `resources`: the graph maps onto the target's cores within `max_chips` chips;
3. `ranges`: range analysis finds no synaptic input or state that can overflow;
4. `accuracy`: float reference vs fixed point on labelled data; fails when fixed point
   loses more than `max_accuracy_drop` points;
5. `equivalence`: the backend against the reference simulator, every layer, step and
   sample. For Lava: its fixed_pt record against the reference simulator's
   hardware-timed record (pipeline fill included). For refsim: the hardware-timed run
   against the zero-delay run, in each layer's window;
6. `lava floating_pt` (Lava only): Lava's float models against the float reference graph,
   both with hardware timing;
7. `golden`: the backend against the golden vectors stored at compile time;
8. `estimates`: cycles per step, latency and energy from the cost model (never fails).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnc.analyses.timing import schedule
from snnc.artifact import Artifact
from snnc.backends.refsim import SimResult, hardware_record, simulate
from snnc.errors import SnncError
from snnc.ir import Graph, Neuron
from snnc.tools.evaluate import predictions
from snnc.tools.golden import Comparison, compare, golden_expected, result_values

SCHEMA = "snnc.check/1"
FLOAT_RTOL = 1e-9  # Lava floating_pt readout v against the float reference (see _lava_float)


class CheckDataError(SnncError):
    """The data given to `snnc check` does not fit the artifact."""


@dataclass
class Thresholds:
    """What passing means. Defaults: the documented ones of `snnc check --help`."""

    max_mismatches: int = 0          # backend vs reference simulator, all layers
    max_float_mismatches: int = 0    # Lava floating_pt vs the float reference
    max_accuracy_drop: float = 1.0   # fixed point vs float, percentage points
    max_chips: int = 1
    allow_overflow: bool = False


@dataclass
class CheckData:
    x: np.ndarray                    # [N, *shape], or [T, N, *shape] when `sequence`
    y: np.ndarray | None             # [N] integer labels, or None
    source: str
    sequence: bool = False

    @property
    def samples(self) -> int:
        return self.x.shape[1 if self.sequence else 0]

    def part(self, start: int, stop: int) -> CheckData:
        x = self.x[:, start:stop] if self.sequence else self.x[start:stop]
        y = None if self.y is None else self.y[start:stop]
        return CheckData(x, y, self.source, self.sequence)

    def head(self, n: int) -> CheckData:
        return self.part(0, n)


def load_data(source: str, artifact: Artifact, samples: int | None, timesteps: int,
              seed: int = 0) -> CheckData:
    """golden | digits | random | FILE.npz (`x` [N, *input_shape] or [N, T, *input_shape],
    `y` integer [N])."""
    shape = tuple(artifact.graph[artifact.graph.inputs[0]].type.shape)
    if source == "golden":
        x, _ = golden_expected(artifact.golden)
        data = CheckData(x, None, "golden", x.ndim == len(shape) + 2)
    elif source == "digits":
        from snnc.datasets import digits_split

        try:
            _, _, x, y = digits_split()
        except ImportError:
            raise CheckDataError("--data digits needs scikit-learn (the `data` extra); it is "
                                 "installed in the compile environment .venv") from None
        if x.shape[1:] != shape:
            raise CheckDataError(f"--data digits gives inputs shaped {list(x.shape[1:])}, but "
                                 f"the artifact's input is {list(shape)}")
        data = CheckData(x.astype(np.float64), y.astype(np.int64), "digits")
    elif source == "random":
        n = samples or 32
        data = CheckData(np.random.default_rng(seed).random((n, *shape)), None, "random")
    else:
        data = _load_npz(Path(source), shape, timesteps)
    return data.head(samples) if samples else data


def _load_npz(path: Path, shape: tuple[int, ...], timesteps: int) -> CheckData:
    if path.suffix != ".npz" or not path.is_file():
        raise CheckDataError(f"--data {str(path)!r}: expected golden, digits, random or an "
                             "existing .npz file with arrays x and y")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError) as err:
        raise CheckDataError(f"{path}: not a readable .npz of plain arrays ({err})") from None
    if "x" not in arrays:
        raise CheckDataError(f"{path}: no array 'x' (found {sorted(arrays)})")
    x, y = arrays["x"], arrays.get("y")
    if x.shape[1:] == shape:
        sequence = False
    elif x.ndim == len(shape) + 2 and x.shape[2:] == shape:
        if x.shape[1] != timesteps:
            raise CheckDataError(f"{path}: x is event data with {x.shape[1]} steps; the "
                                 f"artifact runs {timesteps}")
        x, sequence = np.swapaxes(x, 0, 1), True  # [T, N, ...], as the simulators take it
    else:
        raise CheckDataError(f"{path}: x is shaped {list(x.shape)}; expected [N, "
                             f"{', '.join(map(str, shape))}] or [N, T, "
                             f"{', '.join(map(str, shape))}]")
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise CheckDataError(f"{path}: x must be finite numbers")
    n = x.shape[1] if sequence else x.shape[0]
    if y is not None:
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
            raise CheckDataError(f"{path}: y must be integer labels shaped [{n}], got "
                                 f"{y.dtype}{list(y.shape)}")
        y = y.astype(np.int64)
    return CheckData(x.astype(np.float64), y, str(path), sequence)


@dataclass
class Rung:
    name: str
    passed: bool | None  # None: skipped, or informative only (`info`)
    detail: str
    info: bool = False

    @property
    def status(self) -> str:
        if self.info:
            return "info"
        return {True: "pass", False: "FAIL", None: "skipped"}[self.passed]


@dataclass
class CheckReport:
    artifact: str
    target: str
    backend: str
    timesteps: int
    data: dict
    thresholds: Thresholds
    rungs: list[Rung] = field(default_factory=list)
    layers: list[dict] = field(default_factory=list)  # per neuron layer, for the table
    resources: dict | None = None
    ranges: dict | None = None
    accuracy: dict | None = None
    agreement: dict | None = None
    firing_rates: dict | None = None
    equivalence: Comparison | None = None
    float_equivalence: Comparison | None = None
    golden: Comparison | None = None
    estimates: dict | None = None
    raster: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed is not False for r in self.rungs)

    def to_json(self) -> dict:
        """The `--json` document (schema `snnc.check/1`, documented in README.md)."""
        def comparison(c: Comparison | None):
            return None if c is None else c.to_json()

        equivalence = comparison(self.equivalence)
        return {
            "schema": SCHEMA, "artifact": self.artifact, "target": self.target,
            "backend": self.backend, "timesteps": self.timesteps, "passed": self.passed,
            "total_mismatches": equivalence["total_mismatches"] if equivalence else None,
            "data": self.data, "thresholds": vars(self.thresholds),
            "rungs": [vars(r) | {"status": r.status} for r in self.rungs],
            "layers": self.layers, "resources": self.resources, "ranges": self.ranges,
            "accuracy": self.accuracy, "agreement": self.agreement,
            "firing_rates": self.firing_rates, "equivalence": equivalence,
            "lava_floating_pt": comparison(self.float_equivalence),
            "golden": comparison(self.golden), "estimates": self.estimates,
        }


Progress = Callable[[str, int], None]  # (what, how many units done since the last call)


@dataclass
class Backend:
    """How to run the chosen backend: `run(graph_kind, x, timesteps)` returns raw per-step
    records `{layer: [T + latency, batch, ...]}` (spikes, or the readout's v)."""

    name: str
    run: Callable[[str, np.ndarray, int], dict[str, np.ndarray]] | None = None


def run_check(artifact: Artifact, path: str, data: CheckData, *, backend: Backend,
              timesteps: int, thresholds: Thresholds, backend_samples: int | None,
              progress: Progress | None = None, batch: int = 128) -> CheckReport:
    """Run every rung on `data` (the reference simulator in batches of `batch`; the backend
    on the first `backend_samples`) and collect the report. Never raises for a failed rung;
    raises SnncError when the check cannot run at all."""
    tick = progress or (lambda what, n: None)
    graph = artifact.graph
    quantized = artifact.target != "float"
    if backend.name == "lava" and not quantized:
        raise SnncError(f"{path} targets float; the Lava backend checks fixed-point artifacts "
                        "(compile with --target loihi2)")
    n_backend = min(data.samples, backend_samples or data.samples)
    report = CheckReport(path, artifact.target, backend.name, timesteps,
                         {"source": data.source, "samples": data.samples,
                          "labelled": data.y is not None, "backend_samples": n_backend},
                         thresholds)
    report.rungs.append(_trace_rung(artifact))
    core_map = _resources(report, artifact, thresholds)
    _ranges(report, artifact, timesteps, thresholds)
    fixed, reference = _runs(artifact, data, timesteps, batch, tick)
    _accuracy(report, graph, artifact.reference, data, fixed, reference, thresholds)
    sub = data.head(n_backend)
    records = _equivalence(report, artifact, sub, timesteps, backend, tick)
    if data.y is not None and report.accuracy is not None:
        report.accuracy["backend"] = _accuracy_of(graph, windows(graph, records, timesteps),
                                                   sub.y)
        report.accuracy["backend_samples"] = n_backend
        # The same samples on the reference simulator: what the backend's figure compares to.
        report.accuracy["fixed_on_backend_samples"] = float(
            (predictions(graph, fixed)[:n_backend] == sub.y).mean())
    if backend.name == "lava":
        _lava_float(report, artifact, sub, timesteps, backend, tick)
    _golden(report, artifact, timesteps, backend, tick)
    _estimates(report, artifact, core_map, fixed, data.head(min(data.samples, 32)), timesteps)
    report.layers = _layer_rows(report, graph)
    return report


def _trace_rung(artifact: Artifact) -> Rung:
    trace = artifact.meta.get("trace_check")
    if not trace:
        return Rung("trace", None, "the artifact records no trace check (not compiled from "
                                   "a checkpoint)")
    bad = trace.get("total_mismatches", 0)
    return Rung("trace", bad == 0, f"IR vs PyTorch at compile time: {bad} mismatches on "
                                   f"{trace.get('samples')} {trace.get('data')} inputs")


def _resources(report: CheckReport, artifact: Artifact, th: Thresholds):
    """The resource rung; returns the core map (None when there is none) for the estimates."""
    if artifact.target == "float":
        report.rungs.append(Rung("resources", None, "float target: no chip to map onto"))
        return None
    from snnc.analyses.mapping import map_to_cores
    from snnc.targets import get_target

    try:
        core_map = map_to_cores(artifact.graph, get_target(artifact.target))
    except SnncError as err:
        report.resources = {"fits": False, "error": str(err)}
        report.rungs.append(Rung("resources", False, str(err)))
        return None
    fits = core_map.n_chips <= th.max_chips
    report.resources = {"cores": core_map.n_cores, "chips": core_map.n_chips, "fits": fits,
                        "max_chips": th.max_chips,
                        "layers": {k: len(v.cores) for k, v in core_map.layers.items()}}
    report.rungs.append(Rung("resources", fits, f"{core_map.n_cores} cores on "
                             f"{core_map.n_chips} chip(s) of {artifact.target}; at most "
                             f"{th.max_chips} allowed"))
    return core_map


def _ranges(report: CheckReport, artifact: Artifact, timesteps: int, th: Thresholds) -> None:
    if artifact.target == "float":
        report.rungs.append(Rung("ranges", None, "float target: no fixed-point ranges"))
        return
    from snnc.analyses.range_analysis import analyze_ranges
    from snnc.targets import get_target

    rows = analyze_ranges(artifact.graph, timesteps, get_target(artifact.target))
    overflows = [{"layer": r.name, "where": where, "what": what}
                 for r in rows for where, items in (("chip", r.chip_overflow),
                                                    ("lava", r.lava_overflow))
                 for what in items]
    report.ranges = {"overflows": overflows}
    ok = not overflows or th.allow_overflow
    detail = (f"no overflow possible in {len(rows)} layers" if not overflows else
              f"{len(overflows)} possible overflows, first: {overflows[0]['layer']} "
              f"({overflows[0]['where']}): {overflows[0]['what']}")
    report.rungs.append(Rung("ranges", ok, detail))


def _runs(artifact: Artifact, data: CheckData, timesteps: int, batch: int, tick: Progress
          ) -> tuple[SimResult, SimResult | None]:
    """The reference simulator on all data: the artifact's graph, and its float reference
    (for a fixed-point artifact), joined over batches."""
    graphs = {"fixed": artifact.graph}
    if artifact.reference is not None:
        graphs["float"] = artifact.reference
    parts: dict[str, list[SimResult]] = {k: [] for k in graphs}
    for start in range(0, data.samples, batch):
        chunk = data.part(start, start + batch)
        for key, graph in graphs.items():
            parts[key].append(simulate(graph, chunk.x, timesteps))
        tick("reference simulator", chunk.samples)
    joined = {k: _join(v, timesteps) for k, v in parts.items()}
    return joined["fixed"], joined.get("float")


def _join(parts: list[SimResult], timesteps: int) -> SimResult:
    out = SimResult(timesteps)
    for name in parts[0].spikes:
        out.spikes[name] = np.concatenate([p.spikes[name] for p in parts], axis=1)
    for name in parts[0].readout:
        out.readout[name] = np.concatenate([p.readout[name] for p in parts], axis=0)
    return out


def _accuracy_of(graph: Graph, result: SimResult, y: np.ndarray) -> float:
    return float((predictions(graph, result) == y).mean())


def _accuracy(report: CheckReport, graph: Graph, reference: Graph | None, data: CheckData,
              fixed: SimResult, ref: SimResult | None, th: Thresholds) -> None:
    rates = {"fixed": {k: float(v.mean()) for k, v in fixed.spikes.items()}}
    first = {k: v[:, 0].reshape(v.shape[0], -1) for k, v in fixed.spikes.items()}
    report.raster = first
    if ref is not None:
        rates["float"] = {k: float(v.mean()) for k, v in ref.spikes.items()}
        report.agreement = {k: float((ref.spikes[k] == v).mean())
                            for k, v in fixed.spikes.items() if k in ref.spikes}
    report.firing_rates = rates
    if data.y is None:
        report.rungs.append(Rung("accuracy", None, f"--data {data.source} has no labels"))
        return
    if ref is None:  # a float artifact: its graph is the float model
        acc = _accuracy_of(graph, fixed, data.y)
        report.accuracy = {"float": acc, "fixed": None, "samples": data.samples}
        report.rungs.append(Rung("accuracy", None, f"float {100 * acc:.2f}% on "
                                 f"{data.samples} samples; no fixed point to compare"))
        return
    acc_float = _accuracy_of(reference, ref, data.y)
    acc_fixed = _accuracy_of(graph, fixed, data.y)
    drop = 100 * (acc_float - acc_fixed)
    report.accuracy = {"float": acc_float, "fixed": acc_fixed, "samples": data.samples}
    report.rungs.append(Rung("accuracy", drop <= th.max_accuracy_drop,
                             f"float {100 * acc_float:.2f}% -> fixed {100 * acc_fixed:.2f}% "
                             f"on {data.samples} {data.source} samples ({drop:+.2f} points "
                             f"lost; at most {th.max_accuracy_drop:g} allowed)"))


def windows(graph: Graph, records: dict[str, np.ndarray], timesteps: int) -> SimResult:
    """Raw hardware-timed records to a SimResult: spikes in each layer's T-step window, the
    readout's final value as the reference simulator reports it."""
    depth = schedule(graph).depth
    result = SimResult(timesteps)
    for name, rec in records.items():
        node, window = graph[name], rec[depth[name]:depth[name] + timesteps]
        if isinstance(node, Neuron) and node.spiking:
            result.spikes[name] = window.astype(bool)
        else:
            final = window[-1] / getattr(node, "scale", 1.0)
            result.readout[name] = final / timesteps if node.mean else final
    return result


def _equivalence(report: CheckReport, artifact: Artifact, data: CheckData, timesteps: int,
                 backend: Backend, tick: Progress) -> dict[str, np.ndarray]:
    graph = artifact.graph
    order = list(graph.nodes)
    expected, depth = hardware_record(graph, data.x, timesteps), schedule(graph).depth
    if backend.name == "lava":
        got = backend.run("fixed", data.x, timesteps)
        tick("Lava fixed_pt", data.samples)
        cmp = compare(got, expected, reference="reference simulator, hardware timing "
                      "(every step, pipeline fill included)", order=order, step_offset=depth)
        records = got
    else:  # refsim: hardware timing against the zero-delay run, in each layer's window
        records = expected
        zero = result_values(simulate(graph, data.x, timesteps))
        hw = result_values(windows(graph, expected, timesteps))
        cmp = compare(hw, zero, reference="reference simulator, zero-delay timing",
                      order=order)
        tick("reference simulator, hardware timing", data.samples)
    report.equivalence = cmp
    label = "Lava fixed_pt" if backend.name == "lava" else "refsim hardware timing"
    report.rungs.append(Rung("equivalence", cmp.total <= report.thresholds.max_mismatches,
                             f"{label} vs {cmp.reference}: {cmp.total} mismatches in "
                             f"{sum(cmp.compared.values())} values on {data.samples} samples "
                             f"(at most {report.thresholds.max_mismatches} allowed)"
                             + _first(cmp)))
    return records


def _first(cmp: Comparison) -> str:
    f = cmp.first
    if f is None:
        return ""
    if "sample" not in f:
        return f"; {f['layer']}: {f['detail']}"
    return (f"; first: {f['layer']} sample {f['sample']} step {f['step']} neuron "
            f"{tuple(f['neuron'])}: backend {f['backend']:g}, reference {f['reference']:g}")


def _lava_float(report: CheckReport, artifact: Artifact, data: CheckData, timesteps: int,
                backend: Backend, tick: Progress) -> None:
    ref_graph = artifact.reference
    if ref_graph is None:
        report.rungs.append(Rung("lava floating_pt", None, "no float reference graph"))
        return
    expected = hardware_record(ref_graph, data.x, timesteps)
    depth = schedule(ref_graph).depth
    got = backend.run("float", data.x, timesteps)
    tick("Lava floating_pt", data.samples)
    # Spikes must be identical; a readout's float v may differ in its last bits, since Lava
    # sums a dense matrix product where the reference simulator sums convolution taps.
    cmp = compare(got, expected, reference="float reference graph, hardware timing (readout "
                  f"v to a relative {FLOAT_RTOL:g})", order=list(ref_graph.nodes),
                  step_offset=depth, rtol=FLOAT_RTOL)
    report.float_equivalence = cmp
    limit = report.thresholds.max_float_mismatches
    report.rungs.append(Rung("lava floating_pt", cmp.total <= limit,
                             f"Lava floating_pt vs {cmp.reference}: {cmp.total} mismatches on "
                             f"{data.samples} samples (at most {limit} allowed)" + _first(cmp)))


def _golden(report: CheckReport, artifact: Artifact, timesteps: int, backend: Backend,
            tick: Progress) -> None:
    if "inputs" not in artifact.golden:
        report.rungs.append(Rung("golden", None, "the artifact holds no golden vectors"))
        return
    x, expected = golden_expected(artifact.golden)
    graph = artifact.graph
    if backend.name == "lava":
        got = result_values(windows(graph, backend.run("fixed", x, timesteps), timesteps))
    else:
        got = result_values(simulate(graph, x, timesteps))
    tick("golden vectors", 0)
    cmp = compare(got, expected, reference="golden vectors stored at compile time",
                  order=list(graph.nodes))
    report.golden = cmp
    report.rungs.append(Rung("golden", cmp.total == 0,
                             f"{backend.name} vs the {cmp.samples} golden inputs stored by "
                             f"snnc compile: {cmp.total} mismatches" + _first(cmp)))


def _estimates(report: CheckReport, artifact: Artifact, core_map, fixed: SimResult,
               data: CheckData, timesteps: int) -> None:
    """Cost-model estimates from the reference simulator's spikes (`fixed`, all data) on the
    first `data.samples` samples."""
    if core_map is None:
        report.rungs.append(Rung("estimates", None, "no chip mapping"))
        return
    from snnc.targets import get_target
    from snnc.tools.cost import estimate_cost

    n = data.samples
    spikes = {k: v[:, :n] for k, v in fixed.spikes.items()}
    spikes[artifact.graph.inputs[0]] = data.x
    cost = estimate_cost(artifact.graph, core_map, spikes, timesteps,
                         get_target(artifact.target))
    report.estimates = {"cycles_per_step": float(cost.step_s.mean() / cost.cycle_s),
                        "latency_us": cost.latency_s * 1e6,
                        "energy_uj": cost.total_energy_j * 1e6, "samples": data.samples}
    report.rungs.append(Rung("estimates", None, f"{report.estimates['cycles_per_step']:,.0f} "
                             f"cycles per step, {report.estimates['latency_us']:.1f} us and "
                             f"{report.estimates['energy_uj']:.2f} uJ per inference "
                             f"(cost model, {data.samples} samples)", info=True))


def _layer_rows(report: CheckReport, graph: Graph) -> list[dict]:
    rows = []
    for node in graph:
        if not isinstance(node, Neuron):
            continue
        name = node.name
        rates = report.firing_rates or {}
        rows.append({
            "layer": name, "op": node.op, "shape": list(node.type.shape),
            "neurons": int(np.prod(node.type.shape)),
            "cores": (report.resources or {}).get("layers", {}).get(name),
            "rate_float": rates.get("float", {}).get(name),
            "rate_fixed": rates.get("fixed", {}).get(name),
            "agreement": (report.agreement or {}).get(name),
            "mismatches": report.equivalence.layers.get(name) if report.equivalence else None,
        })
    return rows
