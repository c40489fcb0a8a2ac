"""The deployment check: every rung of the equivalence ladder (docs/architecture.md) for one
artifact, as a report that prints as tables, serialises to JSON and renders to HTML.

Rungs, in order; each passes, fails, or is skipped (with the reason):

1. `trace`: the compiler's own check of the traced IR against torch, read from the
   artifact's metadata (torch is not needed here);
2. `resources`: the graph maps onto the target's cores within `max_chips` chips;
3. `ranges`: range analysis finds no synaptic input or state that can overflow;
4. `accuracy`: float reference vs fixed point on labelled data; fails when fixed point
   loses more than `max_accuracy_drop` points;
5. `equivalence`: the backend against the reference simulator, every layer, step and
   sample. A hardware-timed backend's record is compared with the reference simulator's
   hardware-timed record at every step (pipeline fill included); the reference simulator
   itself (`Backend.is_reference`) compares its hardware timing with its zero-delay timing,
   in each layer's window, and a zero-timed backend is compared with the zero-delay run;
6. the backend's float rung, when it declares one (`Backend.float_rung`): its float models
   against the float reference graph, in the same way;
7. `golden`: the backend against the golden vectors stored at compile time;
8. `estimates`: cycles per step, latency and energy from the cost model (never fails).

Nothing here names a backend: what differs between them comes from their declarations
(snnc.backends.Backend).

The data rungs count per batch (sums, never fractions; first mismatches with the sample's
index in the whole data), so a check run in parts gives the same report as one run:
`run_check(..., start=k)` checks the samples from global index k on, and `merge_reports`
joins two adjacent parts (e.g. two shards) into the report one run would give. The same
holds within a run: the reference simulator and the backend run `batch` samples at a time,
their counts and comparisons added up, so memory does not grow with the samples and every
batch size gives the same report. Without `batch`, the reference simulator runs `BATCH`
and the backend its own `check_batch_size` (Lava, which starts a process per run: 32).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from snnc.analyses.timing import schedule
from snnc.artifact import Artifact
from snnc.backends import Backend, backends
from snnc.backends.refsim import SimResult, hardware_record, simulate
from snnc.backends.refsim.float_ops import readout_value
from snnc.errors import SnncError
from snnc.inputs import CheckData, load_data  # noqa: F401 - re-exported
from snnc.ir import Graph, Neuron
from snnc.tools.evaluate import Counts, count_batch, predictions
from snnc.tools.golden import Comparison, compare, golden_expected, result_values

SCHEMA = "snnc.check/1"
FLOAT_RTOL = 1e-9  # a float rung's readout v against the float reference (see _float_rung)
ESTIMATE_SAMPLES = 32  # the cost model's estimates run on the data's first samples
#: Samples run at a time by default (`snnc check --batch-size`): what the check holds in
#: memory is one batch's records, whatever the number of samples. The hardware-timed record
#: keeps every neuron state at every step (about 0.35 GB a sample for ResNet-19 on 3x32x32),
#: so 16 keep that check near 7.5 GB; small networks run as fast as in larger batches.
BATCH = 16


@dataclass
class Thresholds:
    """What passing means. Defaults: the documented ones of `snnc check --help`."""

    max_mismatches: int = 0          # backend vs reference simulator, all layers
    max_float_mismatches: int = 0    # the backend's float models vs the float reference
    max_accuracy_drop: float = 1.0   # fixed point vs float, percentage points
    max_chips: int = 1
    allow_overflow: bool = False


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
class BackendCounts:
    """Labelled samples run on the backend, and how many it, and the reference simulator's
    fixed-point run on the same samples, classified correctly."""

    samples: int = 0
    correct: int = 0
    fixed_correct: int = 0

    def __add__(self, other: BackendCounts) -> BackendCounts:
        return BackendCounts(self.samples + other.samples, self.correct + other.correct,
                             self.fixed_correct + other.fixed_correct)


@dataclass
class CheckReport:
    """What `run_check` found. The fields up to `raster` are what the report shows; the
    rungs, layer rows, accuracy, agreement, firing rates and estimates are derived from the
    counts below them (`_finish`), so that `merge_reports` can add partial reports up."""

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
    raster: dict[str, np.ndarray] = field(default_factory=dict)  # sample 0, every layer
    # -- what the derived fields come from, and what merging adds up --
    start: int = 0  # the index of this report's first sample in the whole data
    counts: Counts = field(default_factory=Counts)  # reference simulator, every sample
    backend_counts: BackendCounts = field(default_factory=BackendCounts)
    #: the reference simulator's spikes and the inputs of the samples among the data's first
    #: ESTIMATE_SAMPLES that this report holds: what the estimates run on
    head: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    graph: Graph | None = field(default=None, repr=False)
    backend_type: type[Backend] = field(default=Backend, repr=False)
    core_map: object = field(default=None, repr=False)
    static: dict[str, Rung] = field(default_factory=dict, repr=False)  # trace, resources...

    @property
    def passed(self) -> bool:
        return all(r.passed is not False for r in self.rungs)

    def to_json(self) -> dict:
        """The `--json` document (schema `snnc.check/1`, documented in README.md)."""
        def comparison(c: Comparison | None):
            return None if c is None else c.to_json()

        equivalence = comparison(self.equivalence)
        # Every backend's float rung has its key (null unless this backend ran it).
        floats = {_json_key(b.float_rung): None for b in backends().values() if b.float_rung}
        if self.backend_type.float_rung:
            floats[_json_key(self.backend_type.float_rung)] = \
                comparison(self.float_equivalence)
        return {
            "schema": SCHEMA, "artifact": self.artifact, "target": self.target,
            "backend": self.backend, "timesteps": self.timesteps, "passed": self.passed,
            "total_mismatches": equivalence["total_mismatches"] if equivalence else None,
            "data": self.data, "thresholds": vars(self.thresholds),
            "rungs": [vars(r) | {"status": r.status} for r in self.rungs],
            "layers": self.layers, "resources": self.resources, "ranges": self.ranges,
            "accuracy": self.accuracy, "agreement": self.agreement,
            "firing_rates": self.firing_rates, "equivalence": equivalence, **floats,
            "golden": comparison(self.golden), "estimates": self.estimates,
        }


def _json_key(rung: str) -> str:
    return rung.replace(" ", "_")


Progress = Callable[[str, int], None]  # (what, how many units done since the last call)


def backend_samples_of(backend: type[Backend] | Backend, samples: int,
                       backend_samples: int | None) -> int:
    """How many of `samples` samples a check runs on the backend."""
    return min(samples, backend_samples or backend.check_samples or samples)


def progress_total(backend: type[Backend] | Backend, samples: int,
                   backend_samples: int | None) -> int:
    """The units `run_check` reports to `progress` for a check of `samples` samples."""
    runs = 1 + (backend.float_rung is not None)
    return samples + runs * backend_samples_of(backend, samples, backend_samples)


def run_check(artifact: Artifact, path: str, data: CheckData, *, backend: Backend,
              timesteps: int, thresholds: Thresholds, backend_samples: int | None,
              progress: Progress | None = None, batch: int | None = None,
              start: int = 0, samples_only: bool = False) -> CheckReport:
    """Run every rung on `data` (the reference simulator on all of it, the backend on the
    data's first `backend_samples`, default: the backend's `check_samples`, else all; both
    in batches of `batch`, default: `BATCH`, and the backend's `check_batch_size` for the
    backend) and collect the report. `start`: the index of `data`'s first
    sample in the whole data, when `data` is one part of it (see `merge_reports`).
    `samples_only`: leave out the rungs that do not depend on the samples (trace, resources,
    ranges, golden; skipped, saying so), for a part whose report is merged after one that
    ran them (tools/shard.py). Never raises for a failed rung; raises SnncError when the
    check cannot run at all."""
    tick = progress or (lambda what, n: None)
    graph = artifact.graph
    quantized = artifact.target != "float"
    if backend.needs_fixed_point and not quantized:
        raise SnncError(f"{path} targets float; the {backend.name} backend checks fixed-point "
                        "artifacts (compile with --target loihi2)")
    # The backend runs the samples of this part that are among the whole data's first ones.
    limit = backend_samples or backend.check_samples
    n_backend = data.samples if limit is None else max(0, min(data.samples, limit - start))
    report = CheckReport(path, artifact.target, backend.name, timesteps,
                         {"source": data.source, "samples": data.samples,
                          "labelled": data.y is not None, "backend_samples": n_backend},
                         thresholds, start=start, graph=graph, backend_type=type(backend))
    if samples_only:
        report.static = {k: Rung(k, None, "run with the first part of the data")
                         for k in ("trace", "resources", "ranges", "golden")}
    else:
        report.static["trace"] = _trace_rung(artifact)
        report.core_map = _resources(report, artifact, thresholds)
        _ranges(report, artifact, timesteps, thresholds)
    _reference_runs(report, artifact, data, n_backend, timesteps, batch or BATCH, tick)
    if backend.float_rung is not None and artifact.reference is None:
        report.static["float"] = Rung(backend.float_rung, None, "no float reference graph")
    precision = "fixed" if quantized else "float"
    _backend_runs(report, artifact, backend, precision, data, n_backend, timesteps,
                  batch or backend.check_batch_size or BATCH, tick)
    if not samples_only:
        _golden(report, artifact, backend, precision, timesteps, tick)
    return _finish(report)


def merge_reports(a: CheckReport, b: CheckReport) -> CheckReport:
    """One report from two partial ones of the same check, `b`'s samples following `a`'s
    (`run_check(..., start=...)` on adjacent parts of the data, e.g. two shards): counts
    added, first mismatches the earliest, the raster from sample 0, the estimates on the
    data's first samples. Equal to the report of one run on both parts."""
    for key in ("artifact", "target", "backend", "timesteps", "thresholds"):
        if getattr(a, key) != getattr(b, key):
            raise SnncError(f"cannot merge check reports of different {key}: "
                            f"{getattr(a, key)!r} and {getattr(b, key)!r}")
    for key in ("source", "labelled"):
        if a.data[key] != b.data[key]:
            raise SnncError(f"cannot merge check reports of different data {key}: "
                            f"{a.data[key]!r} and {b.data[key]!r}")
    if b.start != a.start + a.data["samples"]:
        raise SnncError(f"cannot merge check reports: the second starts at sample {b.start}, "
                        f"the first covers samples {a.start} to "
                        f"{a.start + a.data['samples'] - 1}; merge adjacent parts in order")
    data = {**a.data, "samples": a.data["samples"] + b.data["samples"],
            "backend_samples": a.data["backend_samples"] + b.data["backend_samples"]}
    out = CheckReport(a.artifact, a.target, a.backend, a.timesteps, data, a.thresholds,
                      resources=a.resources, ranges=a.ranges, golden=a.golden,
                      raster=a.raster or b.raster, start=a.start, counts=a.counts + b.counts,
                      backend_counts=a.backend_counts + b.backend_counts, graph=a.graph,
                      backend_type=a.backend_type, core_map=a.core_map, static=a.static)
    out.equivalence = _merge(a.equivalence, b.equivalence)
    out.float_equivalence = _merge(a.float_equivalence, b.float_equivalence)
    out.head = {k: np.concatenate([a.head[k], b.head[k]], axis=1)[:, :ESTIMATE_SAMPLES]
                for k in a.head} if a.head and b.head else (a.head or b.head)
    return _finish(out)


def _merge(a: Comparison | None, b: Comparison | None) -> Comparison | None:
    if a is None or b is None:
        return a or b
    return a.merge(b)


def _trace_rung(artifact: Artifact) -> Rung:
    trace = artifact.meta.get("trace_check")
    if not trace:
        return Rung("trace", None, "the artifact records no trace check (not compiled from "
                                   "a checkpoint)")
    bad = trace.get("total_mismatches", 0)
    against = trace.get("against", "PyTorch")  # a NIR file: its own equations (compile_nir)
    return Rung("trace", bad == 0, f"IR vs {against} at compile time: {bad} mismatches on "
                                   f"{trace.get('samples')} {trace.get('data')} inputs")


def _resources(report: CheckReport, artifact: Artifact, th: Thresholds):
    """The resource rung; returns the core map (None when there is none) for the estimates."""
    if artifact.target == "float":
        report.static["resources"] = Rung("resources", None, "float target: no chip to map "
                                                             "onto")
        return None
    from snnc.analyses.mapping import map_to_cores
    from snnc.targets import get_target

    try:
        core_map = map_to_cores(artifact.graph, get_target(artifact.target))
    except SnncError as err:
        report.resources = {"fits": False, "error": str(err)}
        report.static["resources"] = Rung("resources", False, str(err))
        return None
    fits = core_map.n_chips <= th.max_chips
    report.resources = {"cores": core_map.n_cores, "chips": core_map.n_chips, "fits": fits,
                        "max_chips": th.max_chips,
                        "layers": {k: len(v.cores) for k, v in core_map.layers.items()},
                        "layer_chips": {k: v.chips for k, v in core_map.layers.items()}}
    report.static["resources"] = Rung("resources", fits, f"{core_map.n_cores} cores on "
                                      f"{core_map.n_chips} chip(s) of {artifact.target}; at "
                                      f"most {th.max_chips} allowed")
    return core_map


def _ranges(report: CheckReport, artifact: Artifact, timesteps: int, th: Thresholds) -> None:
    if artifact.target == "float":
        report.static["ranges"] = Rung("ranges", None, "float target: no fixed-point ranges")
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
    report.static["ranges"] = Rung("ranges", ok, detail)


def _reference_runs(report: CheckReport, artifact: Artifact, data: CheckData, n_backend: int,
                    timesteps: int, batch: int, tick: Progress) -> None:
    """The reference simulator on every sample, in batches: the artifact's graph, and its
    float reference (for a fixed-point artifact), counted (tools/evaluate.count_batch); the
    spikes the estimates and the raster need kept."""
    graphs = {"fixed": artifact.graph}
    if artifact.reference is not None:
        graphs["float"] = artifact.reference
    heads: list[dict[str, np.ndarray]] = []
    for first in range(0, data.samples, batch):
        chunk = data.part(first, first + batch)
        counts, runs = count_batch(graphs, chunk.x, chunk.y, timesteps)
        report.counts = report.counts + counts
        fixed = runs["fixed"]
        if report.start + first == 0:  # the whole data's sample 0
            report.raster = {k: v[:, 0].reshape(v.shape[0], -1) for k, v in fixed.spikes.items()}
        on_backend = min(chunk.samples, max(0, n_backend - first))
        if chunk.y is not None and on_backend:
            right = predictions(artifact.graph, fixed)[:on_backend] == chunk.y[:on_backend]
            report.backend_counts.fixed_correct += int(right.sum())
        keep = min(chunk.samples, max(0, ESTIMATE_SAMPLES - report.start - first))
        if keep:
            x = chunk.x[:, :keep] if data.sequence else chunk.x[None, :keep]
            heads.append({**{k: v[:, :keep] for k, v in fixed.sent.items()}, "": x})
        tick("reference simulator", chunk.samples)
    if heads:
        report.head = {k: np.concatenate([h[k] for h in heads], axis=1) for k in heads[0]}


def windows(graph: Graph, records: dict[str, np.ndarray], timesteps: int,
            timing: str = "hardware") -> SimResult:
    """A backend's per-step records to a SimResult: spikes in each layer's T-step window (the
    pipeline schedule's, for hardware timing), the readout's final value as the reference
    simulator reports it."""
    depth = schedule(graph).depth if timing == "hardware" else {}
    result = SimResult(timesteps)
    for name, rec in records.items():
        node, first = graph[name], depth.get(name, 0)
        window = rec[first:first + timesteps]
        if isinstance(node, Neuron) and node.spiking:
            result.spikes[name] = window.astype(bool)
        else:
            result.readout[name] = readout_value(node, window[-1], timesteps)
    return result


def _against_reference(backend: Backend, graph: Graph, precision: str, x: np.ndarray,
                       timesteps: int, start: int, what: str, note: str,
                       rtol: float = 0.0) -> tuple[Comparison, dict[str, np.ndarray]]:
    """Run the backend on a batch and compare its records with the reference simulator's
    run of `graph` (`what` names it in the report). A hardware-timed backend: at every step
    against the hardware-timed record (the step reported relative to each layer's window).
    The reference simulator itself, or a zero-timed backend: in each layer's window against
    the zero-delay run."""
    got = backend.run(precision, x, timesteps)
    order = list(graph.nodes)
    if backend.timing == "hardware" and not backend.is_reference:
        cmp = compare(got, hardware_record(graph, x, timesteps),
                      reference=f"{what}, hardware timing ({note})", order=order,
                      step_offset=schedule(graph).depth, rtol=rtol, sample_offset=start)
    else:
        zero = result_values(simulate(graph, x, timesteps))
        label = f"{what}, zero-delay timing" + (f" ({note})" if rtol else "")
        cmp = compare(result_values(windows(graph, got, timesteps, backend.timing)), zero,
                      reference=label, order=order, rtol=rtol, sample_offset=start)
    return cmp, got


def _backend_runs(report: CheckReport, artifact: Artifact, backend: Backend, precision: str,
                  data: CheckData, n_backend: int, timesteps: int, batch: int,
                  tick: Progress) -> None:
    """The backend on `data`'s first `n_backend` samples, `batch` at a time (one run per
    batch and rung): the equivalence rung, and the backend's float rung when it has one, each
    batch's comparison merged into the report's (`Comparison.merge`; first mismatches by
    their index in the whole data)."""
    graph, reference = artifact.graph, artifact.reference
    for first in range(0, n_backend, batch):
        chunk = data.part(first, min(first + batch, n_backend))
        offset = report.start + first
        cmp, records = _against_reference(backend, graph, precision, chunk.x, timesteps,
                                          offset, "reference simulator",
                                          "every step, pipeline fill included")
        report.equivalence = _merge(report.equivalence, cmp)
        if chunk.y is not None:
            got = predictions(graph, windows(graph, records, timesteps, backend.timing))
            report.backend_counts.samples += chunk.samples
            report.backend_counts.correct += int((got == chunk.y).sum())
        del records  # one run's records at a time
        tick(backend.labels[precision], chunk.samples)
        if backend.float_rung is not None and reference is not None:
            # Spikes must be identical; a readout's float v may differ in its last bits, since
            # a backend may sum a dense matrix product where the reference sums convolution
            # taps.
            cmp = _against_reference(backend, reference, "float", chunk.x, timesteps, offset,
                                     "float reference graph",
                                     f"readout v to a relative {FLOAT_RTOL:g}", FLOAT_RTOL)[0]
            report.float_equivalence = _merge(report.float_equivalence, cmp)
            tick(backend.labels["float"], chunk.samples)


def _golden(report: CheckReport, artifact: Artifact, backend: Backend, precision: str,
            timesteps: int, tick: Progress) -> None:
    if "inputs" not in artifact.golden:
        report.static["golden"] = Rung("golden", None, "the artifact holds no golden vectors")
        return
    x, expected = golden_expected(artifact.golden)
    graph = artifact.graph
    got = result_values(windows(graph, backend.run(precision, x, timesteps), timesteps,
                                backend.timing))
    tick("golden vectors", 0)
    report.golden = compare(got, expected, reference="golden vectors stored at compile time",
                            order=list(graph.nodes))


def _finish(report: CheckReport) -> CheckReport:
    """Derive the rungs, figures and layer rows from the counts and comparisons."""
    th, kind = report.thresholds, report.backend_type
    precision = "float" if report.target == "float" else "fixed"
    report.rungs = [report.static["trace"], report.static["resources"],
                    report.static["ranges"], _accuracy(report),
                    _compared_rung("equivalence", report.equivalence, kind.labels[precision],
                                   th.max_mismatches, values=True)]
    if kind.float_rung is not None:
        report.rungs.append(report.static.get("float") or _compared_rung(
            kind.float_rung, report.float_equivalence, kind.labels["float"],
            th.max_float_mismatches))
    report.rungs.append(report.static.get("golden") or _golden_rung(report))
    report.rungs.append(_estimates(report))
    report.layers = _layer_rows(report)
    return report


def _compared_rung(name: str, cmp: Comparison | None, label: str, limit: int,
                   values: bool = False) -> Rung:
    if cmp is None:
        return Rung(name, None, "no samples on the backend in this part of the data")
    where = f" in {sum(cmp.compared.values())} values" if values else ""
    return Rung(name, cmp.total <= limit,
                f"{label} vs {cmp.reference}: {cmp.total} mismatches{where} on {cmp.samples} "
                f"samples (at most {limit} allowed)" + _first(cmp))


def _golden_rung(report: CheckReport) -> Rung:
    cmp = report.golden
    return Rung("golden", cmp.total == 0,
                f"{report.backend} vs the {cmp.samples} golden inputs stored by snnc "
                f"compile: {cmp.total} mismatches" + _first(cmp))


def _first(cmp: Comparison) -> str:
    f = cmp.first
    if f is None:
        return ""
    if "sample" not in f:
        return f"; {f['layer']}: {f['detail']}"
    return (f"; first: {f['layer']} sample {f['sample']} step {f['step']} neuron "
            f"{tuple(f['neuron'])}: backend {f['backend']:g}, reference {f['reference']:g}")


def _accuracy(report: CheckReport) -> Rung:
    """Accuracy, agreement and firing rates from the counts; the accuracy rung."""
    counts, th, data = report.counts, report.thresholds, report.data
    has_float = "float" in counts.values
    report.firing_rates = {"fixed": counts.rates("fixed")}
    if has_float:
        report.firing_rates["float"] = counts.rates("float")
        report.agreement = counts.agreement()
    report.accuracy = None
    if not data["labelled"]:
        return Rung("accuracy", None, f"--data {data['source']} has no labels")
    n = counts.samples
    if not has_float:  # a float artifact: its graph is the float model
        acc = counts.accuracy("fixed")
        report.accuracy = {"float": acc, "fixed": None, "samples": n}
        rung = Rung("accuracy", None, f"float {100 * acc:.2f}% on {n} samples; no fixed "
                                      "point to compare")
    else:
        acc_float, acc_fixed = counts.accuracy("float"), counts.accuracy("fixed")
        drop = 100 * (acc_float - acc_fixed)
        report.accuracy = {"float": acc_float, "fixed": acc_fixed, "samples": n}
        rung = Rung("accuracy", drop <= th.max_accuracy_drop,
                    f"float {100 * acc_float:.2f}% -> fixed {100 * acc_fixed:.2f}% on {n} "
                    f"{data['source']} samples ({drop:+.2f} points lost; at most "
                    f"{th.max_accuracy_drop:g} allowed)")
    on = report.backend_counts
    report.accuracy["backend"] = on.correct / on.samples if on.samples else None
    report.accuracy["backend_samples"] = on.samples
    # The same samples on the reference simulator: what the backend's figure compares to.
    report.accuracy["fixed_on_backend_samples"] = \
        on.fixed_correct / on.samples if on.samples else None
    return rung


def _estimates(report: CheckReport) -> Rung:
    """Cost-model estimates from the reference simulator's spikes on the data's first
    ESTIMATE_SAMPLES samples (those of them this report holds)."""
    report.estimates = None
    if report.core_map is None:
        return Rung("estimates", None, "no chip mapping")
    if not report.head:
        return Rung("estimates", None, f"none of the data's first {ESTIMATE_SAMPLES} samples "
                                       "is in this part")
    from snnc.targets import get_target
    from snnc.tools.cost import estimate_cost

    graph = report.graph
    spikes = {k: v for k, v in report.head.items() if k}
    x = report.head[""]
    spikes[graph.inputs[0]] = x if x.shape[0] > 1 else x[0]
    n = x.shape[1]
    cost = estimate_cost(graph, report.core_map, spikes, report.timesteps,
                         get_target(report.target))
    report.estimates = {"cycles_per_step": float(cost.step_s.mean() / cost.cycle_s),
                        "latency_us": cost.latency_s * 1e6,
                        "inferences_per_s": cost.inferences_per_s,
                        "synops_per_inference": cost.synops_per_inference,
                        "energy_uj": cost.dynamic_energy_j * 1e6,  # dynamic, as before
                        "energy_dynamic_uj": cost.dynamic_energy_j * 1e6,
                        "energy_static_uj": cost.static_energy_j * 1e6,
                        "energy_total_uj": cost.total_energy_j * 1e6, "samples": n}
    e = report.estimates
    return Rung("estimates", None, f"{e['cycles_per_step']:,.0f} cycles per step, "
                f"{e['latency_us']:.1f} us ({e['inferences_per_s']:,.0f} inferences/s), "
                f"{e['energy_dynamic_uj']:.2f} uJ dynamic + {e['energy_static_uj']:.2f} uJ "
                f"static per inference (cost model, {n} samples)", info=True)


def _layer_rows(report: CheckReport) -> list[dict]:
    rows = []
    for node in report.graph or ():
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
