"""Run one module-level work function over many shards: serially (`--debug`) or on Ray.

Each shard writes its output atomically; the executor then records a completion marker beside the
output holding the shard's stats and config fingerprint. A rerun skips shards whose marker matches
(whatever the spelling of the paths, since markers live beside the canonical output path), and the
run's summary merges the stats of every shard, including those finished by an earlier run.
Worker crashes (a killed process) are retried by Ray; data errors are raised, never retried.
With `processes=1` and no cluster address the shards run in this process (starting Ray would only
add seconds); `--debug` forces that serial path at any process count.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from dolma_pipeline import io
from dolma_pipeline.errors import DolmaError
from dolma_pipeline.safety import redact

log = logging.getLogger(__name__)

MAX_ERRORS_KEPT = 200


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

    @property
    def docs_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds > 0 else 0.0

    def add(self, stats: dict[str, Any], resumed: bool) -> None:
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
            if key in ("documents", "bytes", "lines_skipped", "errors", "skipped_file", "seconds"):
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
        if self.lines_skipped:
            lines.append(f"  lines skipped: {self.lines_skipped}")
        for error in self.errors[:20]:
            lines.append(f"  skipped: {error}")
        if len(self.errors) > 20:
            lines.append(f"  ... and {len(self.errors) - 20} more (see the summary JSON)")
        return redact("\n".join(lines))


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


def where_to_run(processes: int, ray_address: str | None, debug: bool, executor: str) -> str:
    """"serial" (this process), "local" (forked processes) or "ray" (an embedded or joined cluster).

    One process and no cluster to join (or `debug`) run serially; joining a cluster
    (`ray_address`/RAY_ADDRESS) always uses Ray; otherwise `executor` decides.
    """
    if executor not in ("ray", "local"):
        raise DolmaError(f"unknown executor {executor!r}; valid choices: ray, local")
    cluster = bool(ray_address or os.environ.get("RAY_ADDRESS"))
    if debug or (processes <= 1 and not cluster):
        return "serial"
    return "ray" if cluster or executor == "ray" else "local"


def run_shards(
    work: Callable[[Any], dict[str, Any]],
    shards: Sequence[Shard],
    *,
    processes: int = 1,
    ray_address: str | None = None,
    debug: bool = False,
    ignore_existing: bool = False,
    desc: str = "shards",
    executor: str = "ray",
) -> RunSummary:
    """Run `work` on every shard not already finished and merge all stats into a summary.

    `executor="local"` runs the shards on a pool of forked processes on this machine instead of an
    embedded Ray cluster (no start-up cost); joining a cluster (`ray_address`/RAY_ADDRESS) always uses Ray.
    """
    where = where_to_run(processes, ray_address, debug, executor)
    summary = RunSummary(files=len(shards))
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
            if where == "serial":
                for shard in todo:
                    on_done(_run_one(work, shard))
            elif where == "local":
                _run_on_local_pool(work, todo, processes, on_done)
            else:
                _run_on_ray(work, todo, processes, ray_address, on_done)
        finally:
            bar.close()
    summary.seconds = time.perf_counter() - start
    return summary


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


def _run_on_local_pool(work, shards: list[Shard], processes: int, on_done) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # fork: workers inherit the imported modules, so the pool is ready in milliseconds
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ProcessPoolExecutor(max_workers=min(processes, len(shards)), mp_context=context) as pool:
        pending = {pool.submit(_run_one, work, shard) for shard in shards}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    on_done(future.result())
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def ray_init(processes: int, ray_address: str | None) -> bool:
    """Join the cluster at `ray_address` (or $RAY_ADDRESS), else start an embedded one; True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=True, logging_level=logging.WARNING,
                                  configure_logging=False)
    if address:
        ray.init(address=address, **kwargs)
    else:
        # An embedded cluster lives and dies with this process and listens on loopback only.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=max(1, processes), _node_ip_address="127.0.0.1", **kwargs)
    return True


def _run_on_ray(work, shards: list[Shard], processes: int, ray_address: str | None, on_done) -> None:
    import ray

    started = ray_init(processes, ray_address)
    try:
        remote = ray.remote(num_cpus=1, max_retries=3)(_run_one)
        pending = {remote.remote(work, shard): shard for shard in shards}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                shard = pending.pop(ref)
                try:
                    on_done(ray.get(ref))
                except ray.exceptions.RayTaskError as e:
                    for other in pending:
                        ray.cancel(other, force=True)
                    cause = e.cause if isinstance(getattr(e, "cause", None), BaseException) else None
                    if isinstance(cause, DolmaError):
                        raise cause from None
                    raise DolmaError(f"worker failed on {shard.input}: {cause or e}") from None
    finally:
        if started:
            ray.shutdown()
