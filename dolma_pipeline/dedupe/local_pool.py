"""`executor: local`: run a stage's shards on a pool of forked processes on this machine.

Same contract as `executor.run_shards` (completion markers, resume, merged stats; it reuses the
executor's per-shard runner so the markers are the same files), without starting a Ray cluster:
on a small or busy machine, Ray's start-up (seconds, tens of seconds under load) can cost more than
an exact dedupe itself. Joining a cluster (`ray_address` / RAY_ADDRESS) always uses Ray.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any

from dolma_pipeline import io
from dolma_pipeline.executor import RunSummary, Shard, _run_one, marker_path, read_marker


def run_local(work: Callable[[Any], dict[str, Any]], shards: list[Shard], processes: int,
              ignore_existing: bool) -> RunSummary:
    summary = RunSummary(files=len(shards))
    start = time.perf_counter()
    todo = []
    for shard in shards:
        done = None if ignore_existing else read_marker(shard)
        if done is None:
            todo.append(shard)
        else:
            summary.add(done, resumed=True)
    if ignore_existing:
        for shard in todo:
            io.remove(marker_path(shard.output))
    if todo:
        # fork: workers inherit the imported modules, so a pool is ready in milliseconds
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
        with ProcessPoolExecutor(max_workers=min(processes, len(todo)), mp_context=context) as pool:
            pending = {pool.submit(_run_one, work, shard) for shard in todo}
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in finished:
                        summary.add(future.result(), resumed=False)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
    summary.seconds = time.perf_counter() - start
    return summary
