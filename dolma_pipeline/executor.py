"""Run one module-level work function over many shards: in this process, on forked processes, or on Ray.

Where they run is one rule, `choose_executor` (`executor: auto` by default: one process runs here, a
cluster address means Ray, otherwise a local pool of forked processes; `ray`, `local` and `serial`
force one). Every command that runs shards calls it through `run_shards` (and `open_session` when it
runs several stages), and its summary records which executor ran, why, and which workers ran shards.

Each shard writes its output atomically; the executor then records a completion marker beside the
output holding the shard's stats and config fingerprint. A rerun skips shards whose marker matches
(whatever the spelling of the paths, since markers live beside the canonical output path), and the
run's summary merges the stats of every shard, including those finished by an earlier run.
Worker crashes (a killed process) are retried by Ray; data errors are raised, never retried.
`--debug` forces the serial path at any process count. The Ray side is in executor_ray.py.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from dolma_pipeline import io
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.executor_ray import RaySession, ray_init  # noqa: F401  (ray_init re-exported)
from dolma_pipeline.safety import redact

log = logging.getLogger(__name__)

MAX_ERRORS_KEPT = 200
EXECUTORS = ("auto", "ray", "local", "serial")
Executor = Literal["auto", "ray", "local", "serial"]  # the type of every command's `executor` option
WORKER_KEY = "_worker"  # [node, pid] of the process that ran a shard, added to its stats after the marker


@dataclass
class Shard:
    """One unit of work: an input file, its primary output and the fingerprint of the config used."""

    input: str
    output: str
    fingerprint: str


@dataclass
class RunSummary:
    files: int = 0
    files_processed: int = 0
    files_resumed: int = 0
    files_skipped: int = 0
    documents: int = 0
    bytes: int = 0
    lines_skipped: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # kind, reason and processes (see choose_executor), and who ran the shards of this run: the distinct
    # worker processes ("workers", "worker_pids") and nodes ("nodes": Ray node ids, else the host name)
    executor: dict[str, Any] = field(default_factory=dict)

    @property
    def docs_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds > 0 else 0.0

    def add(self, stats: dict[str, Any], resumed: bool) -> None:
        worker = stats.get(WORKER_KEY)
        if worker and not resumed:
            node, pid = worker
            pids = self.executor.setdefault("worker_pids", [])
            if [node, pid] not in pids:
                pids.append([node, pid])
                self.executor["workers"] = len(pids)
            if node not in self.executor.setdefault("nodes", []):
                self.executor["nodes"].append(node)
        if stats.get("skipped_file"):
            self.files_skipped += 1
        elif resumed:
            self.files_resumed += 1
        else:
            self.files_processed += 1
        self.documents += int(stats.get("documents", 0))
        self.bytes += int(stats.get("bytes", 0))
        self.lines_skipped += int(stats.get("lines_skipped", 0))
        self.errors.extend(stats.get("errors", [])[: max(0, MAX_ERRORS_KEPT - len(self.errors))])
        for key, value in stats.items():
            if key in ("documents", "bytes", "lines_skipped", "errors", "skipped_file", "seconds", WORKER_KEY):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.extra[key] = self.extra.get(key, 0) + value
            elif isinstance(value, dict):
                bucket = self.extra.setdefault(key, {})
                for k, v in value.items():
                    if isinstance(v, (int, float)):
                        bucket[k] = bucket.get(k, 0) + v

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["docs_per_second"] = round(self.docs_per_second, 1)
        data["seconds"] = round(self.seconds, 3)
        return redact(data)

    def render(self, title: str) -> str:
        lines = [
            f"{title}: {self.documents:,} documents, {self.bytes / 1e6:,.1f} MB in {self.seconds:.1f}s "
            f"({self.docs_per_second:,.0f} docs/s)",
            f"  files: {self.files} total, {self.files_processed} processed, {self.files_resumed} already done, "
            f"{self.files_skipped} skipped",
        ]
        if self.executor:
            lines.append("  " + describe_executor(self.executor))
        if self.lines_skipped:
            lines.append(f"  lines skipped: {self.lines_skipped}")
        for error in self.errors[:20]:
            lines.append(f"  skipped: {error}")
        if len(self.errors) > 20:
            lines.append(f"  ... and {len(self.errors) - 20} more (see the summary JSON)")
        return redact("\n".join(lines))


def describe_executor(info: dict[str, Any]) -> str:
    """One line for a printed summary: which executor ran, why, and on how many workers and nodes."""
    text = f"executor: {info.get('kind')} ({info.get('reason')})"
    if info.get("workers"):
        nodes = len(info.get("nodes", []))
        text += f"; {info['workers']} worker process(es)" + (f" on {nodes} nodes" if nodes > 1 else "")
    return text


def merge_executor(summaries: Sequence[RunSummary]) -> dict[str, Any]:
    """The executor record of a command that ran several stages: the first stage's choice, every worker
    and node that ran a shard of any stage, and `workers`, the most that ran shards in one stage."""
    merged: dict[str, Any] = {}
    for summary in summaries:
        info = summary.executor
        for key in ("kind", "reason", "processes", "in_flight_bound", "session"):
            if key in info and key not in merged:
                merged[key] = info[key]
        if "max_in_flight" in info:
            merged["max_in_flight"] = max(merged.get("max_in_flight", 0), info["max_in_flight"])
        for key in ("worker_pids", "nodes"):
            for item in info.get(key, []):
                if item not in merged.setdefault(key, []):
                    merged[key].append(item)
    workers = [summary.executor["workers"] for summary in summaries if "workers" in summary.executor]
    if workers:
        merged["workers"] = max(workers)  # per stage: each stage may run on fresh processes
    return merged


def marker_path(output: str) -> str:
    output = io.canonical_path(output)
    directory, name = output.rsplit("/", 1)
    return f"{directory}/.{name}.done.json"


def read_marker(shard: Shard) -> dict[str, Any] | None:
    """The stats of a finished shard, or None when it must (re)run."""
    path = marker_path(shard.output)
    try:
        marker = orjson.loads(io.read_text(path))
    except Exception:  # a missing or half-written marker means: not done
        return None
    if marker.get("fingerprint") != shard.fingerprint or not io.exists(shard.output):
        return None
    return marker.get("stats", {})


def _run_one(work: Callable[[Any], dict[str, Any]], shard: Shard) -> dict[str, Any]:
    """Run one shard and record its completion marker (module level so Ray can ship it by reference)."""
    io.clean_stale_temporaries(shard.output)
    io.clean_stale_temporaries(marker_path(shard.output))
    start = time.perf_counter()
    stats = dict(work(shard))
    stats["seconds"] = time.perf_counter() - start
    if not stats.get("skipped_file"):
        io.sync_directories()  # the outputs' renames are durable before the marker says they are done
        marker = {
            "input": io.canonical_path(shard.input),
            "output": io.canonical_path(shard.output),
            "fingerprint": shard.fingerprint,
            "stats": stats,
        }
        # not fsynced: a marker lost or torn by a crash only means the shard runs again
        io.write_text(marker_path(shard.output), orjson.dumps(redact(marker), option=orjson.OPT_INDENT_2).decode(),
                      sync=False)
    return stats


@dataclass(frozen=True)
class Placement:
    """Where the shards of a command run, and why (printed and written into the summary JSON)."""

    kind: str  # "serial" (this process), "local" (forked processes) or "ray" (an embedded or joined cluster)
    reason: str
    address: str | None = None  # the Ray cluster joined; None for an embedded one


def choose_executor(processes: int, ray_address: str | None = None, debug: bool = False,
                    executor: str = "auto") -> Placement:
    """The one rule every command that runs shards follows (`executor`: auto, ray, local or serial).

    auto: a cluster address (`ray_address`, or $RAY_ADDRESS) means that Ray cluster; else a Ray session
    already open in this process (`dolma pipeline run` on Ray) is used; else `processes` 1 runs here and
    more run on a pool of forked processes. `ray` joins the address or starts an embedded cluster (or
    uses the open session); `local` and `serial` force the others. `debug` forces serial whatever else.
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; valid choices: {', '.join(EXECUTORS)}")
    env_address = os.environ.get("RAY_ADDRESS") or None
    address = ray_address or env_address
    source = f"--ray_address {ray_address}" if ray_address else f"RAY_ADDRESS={env_address}"
    if debug:
        return Placement("serial", "--debug runs every shard in this process")
    if executor in ("local", "serial") and ray_address:
        raise ConfigError(f"executor {executor} runs on this machine: it cannot be combined with ray_address "
                          f"{ray_address} (use executor auto or ray to run on that cluster)")
    ignored = f" ({source} ignored)" if address else ""
    if executor == "serial":
        return Placement("serial", f"executor serial: every shard in this process{ignored}")
    if executor == "local":
        return Placement("local", f"executor local: {processes} forked process(es) on this machine{ignored}")
    if address:
        reason = f"executor ray: the Ray cluster at {source}" if executor == "ray" else \
            f"auto: a cluster address was given ({source})"
        return Placement("ray", reason, address)
    from dolma_pipeline import executor_ray

    session = executor_ray.active_session()
    if session is not None:  # e.g. opened once by `dolma pipeline run` for all its stages
        return Placement("ray", f"executor {executor}: the Ray session already open in this process ({session})")
    if executor == "ray":
        return Placement("ray", f"executor ray: an embedded Ray cluster of {processes} CPU(s) on this machine")
    if processes <= 1:
        return Placement("serial", "auto: --processes 1 and no cluster address: every shard in this process")
    return Placement("local", f"auto: {processes} processes on one machine and no cluster address: "
                              "a pool of forked processes (no Ray start-up)")


def where_to_run(processes: int, ray_address: str | None = None, debug: bool = False,
                 executor: str = "auto") -> str:
    """"serial", "local" or "ray": the kind of `choose_executor(...)` (see there for the rule)."""
    return choose_executor(processes, ray_address, debug, executor).kind


def open_session(processes: int, ray_address: str | None = None, debug: bool = False,
                 executor: str = "auto") -> RaySession:
    """`with open_session(...):` around a command of several stages: Ray (when chosen) starts or is
    joined once, and every `run_shards` inside uses that session."""
    return RaySession(where_to_run(processes, ray_address, debug, executor), processes, ray_address)


def run_shards(
    work: Callable[[Any], dict[str, Any]],
    shards: Sequence[Shard],
    *,
    processes: int = 1,
    ray_address: str | None = None,
    debug: bool = False,
    ignore_existing: bool = False,
    desc: str = "shards",
    executor: str = "auto",
    max_in_flight: int | None = None,
) -> RunSummary:
    """Run `work` on every shard not already finished and merge all stats into a summary.

    Where the shards run follows `choose_executor` (the summary's `executor` says which and why). The
    local pool and Ray keep at most `max_in_flight` shards submitted and unfinished (default: twice the
    worker count), so the driver's memory does not grow with the number of shards; workers read and
    write storage themselves and return only their stats.
    """
    placement = choose_executor(processes, ray_address, debug, executor)
    summary = RunSummary(files=len(shards))
    summary.executor = {"kind": placement.kind, "reason": placement.reason, "processes": processes}
    start = time.perf_counter()
    todo: list[Shard] = []
    for shard in shards:
        done = None if ignore_existing else read_marker(shard)
        if done is None:
            todo.append(shard)
        else:
            summary.add(done, resumed=True)
    if todo:
        if ignore_existing:
            for shard in todo:
                io.remove(marker_path(shard.output))
        bar = _progress(len(shards), summary.files_resumed, desc)
        on_done = _updater(bar, summary, start)
        try:
            if placement.kind == "serial":
                for shard in todo:
                    on_done(_with_worker(_run_one(work, shard)))
            elif placement.kind == "local":
                from dolma_pipeline import executor_local

                bound = max_in_flight or 2 * processes
                summary.executor.update(executor_local.run_on_pool(work, todo, processes, bound, on_done))
            else:
                from dolma_pipeline import executor_ray

                summary.executor.update(executor_ray.run_on_ray(work, todo, processes, ray_address, on_done,
                                                                max_in_flight))
        finally:
            bar.close()
    summary.seconds = time.perf_counter() - start
    return summary


def _with_worker(stats: dict[str, Any], node: str | None = None) -> dict[str, Any]:
    """The stats of a shard just run, tagged with the process (and node) that ran it; not in its marker."""
    stats[WORKER_KEY] = [node or socket.gethostname(), os.getpid()]
    return stats


def _progress(total: int, initial: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="file", file=sys.stderr, dynamic_ncols=True,
                disable=os.environ.get("DOLMA_NO_PROGRESS") == "1" or None)


def _updater(bar, summary: RunSummary, start: float) -> Callable[[dict[str, Any]], None]:
    def on_done(stats: dict[str, Any]) -> None:
        summary.add(stats, resumed=False)
        elapsed = max(time.perf_counter() - start, 1e-9)
        bar.set_postfix(docs=f"{summary.documents:,}", docs_s=f"{summary.documents / elapsed:,.0f}", refresh=False)
        bar.update(1)

    return on_done
