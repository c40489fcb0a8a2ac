"""`snnc check --ray`: one check sharded over a Ray cluster, merged into the report (and the
JSON) one process gives.

- The cluster: the one at `RAY_ADDRESS`, else a local one started for the check (`workers`
  CPUs, no dashboard, its logs kept off the terminal) and stopped after it; a Ray already
  started in this process (a test's) is used as it is.
- The plan (`plan`): contiguous ranges of samples, in order, each checked once by one Ray
  task (`run_check(..., start=k)` on its part). The samples that also run on the backend
  (the data's first `backend_samples`: Lava's 32) are split apart from the rest, so that the
  costly ones spread over the workers too.
- What is not per sample runs once: the first shard runs trace, resources, ranges and the
  golden vectors, the others leave them out (`run_check(samples_only=True)`); the driver
  merges the reports in order (`merge_reports`), the estimates computed once, at the end, on
  the data's first samples.
- What travels: the artifact's bytes and each shard's inputs go through Ray's object store,
  so no node needs the driver's files (the artifact, a --data file). A task writes the bytes
  to a file of its own for a backend that reads one (Lava's subprocess runs on the task's
  node, with that node's Lava environment). Every node runs the same snnc installation.
- Progress: tasks report their units (those of `run_check`'s `progress`) to an actor, which
  the driver reads into the one progress bar of the whole check.
- Retries: a task whose process dies (killed, out of memory, its node lost) is run again, up
  to `MAX_RETRIES` times; an exception in the check itself is not retried. Each task counts
  its attempts with the actor when it starts, so the driver knows which shards ran again
  (`ShardRun.retried`: the check's text output says so); a retried shard's progress is taken
  back and counted again. A shard that fails for good fails the check, naming it. Retries
  are not in the JSON, which stays exactly that of one process.

`SNNC_RAY_KILL_SHARD=k` (a test hook) makes shard k's worker kill itself (SIGKILL) after its
first progress report, on its first attempt.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snnc.artifact import Artifact, from_bytes
from snnc.backends import Backend
from snnc.errors import SnncError
from snnc.inputs import CheckData
from snnc.tools.check import (
    CheckReport,
    Progress,
    Thresholds,
    backend_samples_of,
    merge_reports,
    run_check,
)

#: Times a shard runs again after its process died, before the check fails.
MAX_RETRIES = 3
#: The object store of a local cluster: what it holds is the artifact and the shards'
#: inputs, once each (Ray spills to disk beyond it).
OBJECT_STORE_BYTES = 256 << 20
#: Seconds between two reads of the shards' progress.
POLL_S = 0.2
KILL_ENV = "SNNC_RAY_KILL_SHARD"


def plan(samples: int, backend_samples: int, parts: int) -> list[tuple[int, int]]:
    """Contiguous `(start, stop)` ranges covering `range(samples)` in order: the first
    `backend_samples` (also run on the backend) split into `parts` near-equal ranges, the
    other samples likewise; no range empty."""
    if samples < 1 or parts < 1:
        raise SnncError(f"a sharded check needs at least one sample and one worker; got "
                        f"{samples} samples, {parts} workers")

    def split(first: int, stop: int) -> list[tuple[int, int]]:
        n = stop - first
        cuts = [first + n * i // parts for i in range(parts + 1)]
        return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]

    middle = min(max(backend_samples, 0), samples)
    return split(0, middle) + split(middle, samples)


@dataclass
class ShardRun:
    """How a sharded check ran, from the driver's view (not part of the report)."""

    shards: list[tuple[int, int]]
    workers: int
    cluster: str  # "local" (started for this check), "this process's" or RAY_ADDRESS's value
    attempts: dict[int, int] = field(default_factory=dict)  # shard -> attempts started

    @property
    def retried(self) -> dict[int, int]:
        """Shard -> times it ran again after its worker died."""
        return {k: n - 1 for k, n in sorted(self.attempts.items()) if n > 1}

    def summary(self) -> str:
        n, w = len(self.shards), self.workers
        head = (f"ray: {n} shard{'s' * (n != 1)} on {w} worker{'s' * (w != 1)} "
                f"({self.cluster} cluster)")
        if not self.retried:
            return f"{head}; no shard retried"
        parts = [f"shard {k} (samples {self.shards[k][0]} to {self.shards[k][1] - 1}) "
                 f"ran {n + 1} times" for k, n in self.retried.items()]
        return f"{head}; retried after their worker died: {', '.join(parts)}"


class _Tally:
    """The Ray actor the shards report to: attempts started and units done per shard (of
    the attempt running), and what was running last."""

    def __init__(self) -> None:
        self.attempts: dict[int, int] = {}
        self.done: dict[int, int] = {}
        self.what = ""

    def begin(self, shard: int) -> int:
        self.attempts[shard] = self.attempts.get(shard, 0) + 1
        self.done[shard] = 0  # what an attempt that died had done is done again
        return self.attempts[shard]

    def tick(self, shard: int, what: str, n: int) -> None:
        self.done[shard] = self.done.get(shard, 0) + n
        self.what = what or self.what

    def state(self) -> tuple[int, str, dict[int, int]]:
        return sum(self.done.values()), self.what, dict(self.attempts)


def _shard(index: int, start: int, blob: bytes, path: str, data: CheckData,
           backend: type[Backend], settings: dict[str, Any], timesteps: int,
           thresholds: Thresholds,
           backend_samples: int | None, batch: int | None, tally: Any,
           kill: bool) -> CheckReport:
    """One Ray task: the check of one shard (samples `start` on of the whole data), the
    rungs that are not per sample only in shard 0. Its report goes back without the graph,
    which the driver holds."""
    import ray

    attempt = ray.get(tally.begin.remote(index))
    art = from_bytes(blob, path)

    def tick(what: str, n: int) -> None:
        if kill and attempt == 1 and n:  # the test hook: die mid-run, once
            ray.get(tally.tick.remote(index, what, n))
            os.kill(os.getpid(), signal.SIGKILL)
        tally.tick.remote(index, what, n)

    with tempfile.TemporaryDirectory(prefix="snnc-shard-") as tmp:
        file = Path(tmp) / "artifact.snnc"  # for a backend that reads the file (Lava)
        file.write_bytes(blob)
        runner = backend(art, file, **settings)
        report = run_check(art, path, data, backend=runner, timesteps=timesteps,
                           thresholds=thresholds, backend_samples=backend_samples,
                           progress=tick, batch=batch, start=start, samples_only=index > 0)
    ray.get(tally.tick.remote(index, "", 0))  # every report of this shard has arrived
    report.graph = None
    return report


def _import_ray():
    try:
        import ray
    except ImportError:
        raise SnncError("--ray needs Ray, an optional extra of snnc: pip install 'snnc[ray]'"
                        ) from None
    return ray


def _connect(ray, workers: int | None) -> tuple[str, bool]:
    """Join the cluster at RAY_ADDRESS or start a local one; (its name, started here)."""
    if ray.is_initialized():
        return "this process's", False
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, **quiet)
        return f"RAY_ADDRESS={address}", True
    ray.init(address="local", num_cpus=workers or os.cpu_count() or 1,
             include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES, **quiet)
    return "local", True


def run_sharded(artifact: Artifact, path: str, data: CheckData, *, backend: Backend,
                timesteps: int, thresholds: Thresholds, backend_samples: int | None,
                progress: Progress | None = None, batch: int | None = None,
                workers: int | None = None) -> tuple[CheckReport, ShardRun]:
    """`run_check` (same arguments; `path` must hold the artifact's file) with its samples
    sharded over Ray: `workers` shards at a time (default: the cluster's CPUs). Returns the
    report one process would give, and how the shards ran."""
    ray = _import_ray()
    tick = progress or (lambda what, n: None)
    blob = Path(path).read_bytes()
    n_backend = backend_samples_of(backend, data.samples, backend_samples)
    cluster, started = _connect(ray, workers)
    try:
        workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        shards = plan(data.samples, n_backend, workers)
        run = ShardRun(shards, workers, cluster)
        tally = ray.remote(num_cpus=0)(_Tally).remote()
        task = ray.remote(_shard).options(num_cpus=1, max_retries=MAX_RETRIES)
        blob_ref = ray.put(blob)
        kill = os.environ.get(KILL_ENV)
        refs = {task.remote(i, a, blob_ref, path, data.part(a, b), type(backend),
                            dict(backend.settings), timesteps, thresholds, backend_samples,
                            batch, tally, kill == str(i)): i
                for i, (a, b) in enumerate(shards)}
        reports = _gather(ray, refs, tally, run, tick)
        ray.kill(tally)
    finally:
        if started:
            ray.shutdown()
    reports[0].graph = artifact.graph
    rest = reports[-1]
    for part in reversed(reports[1:-1]):  # right to left: the estimates run once, last
        rest = merge_reports(part, rest)
    report = merge_reports(reports[0], rest) if len(reports) > 1 else reports[0]
    if report.data["samples"] != data.samples:  # never a shard silently dropped
        raise SnncError(f"the shards' reports hold {report.data['samples']} samples of "
                        f"{data.samples}")
    return report, run


def _gather(ray, refs: dict, tally, run: ShardRun, tick: Progress) -> list[CheckReport]:
    """Wait for every shard, reporting progress; their reports in shard order. A shard that
    fails for good stops the others and raises SnncError naming it."""
    reports: dict[int, CheckReport] = {}
    pending, shown = list(refs), 0
    while True:
        done, what, run.attempts = ray.get(tally.state.remote())
        tick(f"{what or 'starting'} ({len(reports)}/{len(refs)} shards done)", done - shown)
        shown = done
        if not pending:
            break
        ready, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
        for ref in ready:
            index = refs[ref]
            try:
                reports[index] = ray.get(ref)
            except Exception as err:  # noqa: BLE001 - every failure of a shard, named
                for other in pending:
                    ray.cancel(other, force=True)
                run.attempts = ray.get(tally.state.remote())[2]
                raise _shard_error(ray, err, index, run) from None
    return [reports[i] for i in range(len(refs))]


def _shard_error(ray, err: Exception, index: int, run: ShardRun) -> SnncError:
    cause = getattr(err, "cause", None) if isinstance(err, ray.exceptions.RayTaskError) \
        else None
    if isinstance(cause, SnncError):
        return cause
    a, b = run.shards[index]
    what = f"{type(cause).__name__}: {cause}" if cause is not None else \
        f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    tries = run.attempts.get(index, 0)
    return SnncError(f"ray: shard {index} (samples {a} to {b - 1}) failed after {tries} "
                     f"attempt{'s' if tries != 1 else ''} (at most {MAX_RETRIES + 1}): {what}")
