"""The local side of the executor: shards on a pool of forked processes on this machine.

At most `bound` shards are submitted and unfinished at once (the driver's memory does not grow with the
number of shards). Every worker waits at a start barrier on its first shard, so the first shards go to
distinct workers: `--processes N` really runs N workers when there are N shards or more. A worker that
dies (killed, out of memory) breaks the pool: it is restarted for the unfinished shards, up to
`MAX_RESTARTS` times, as Ray retries a crashed task; a data error is raised at once.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from typing import Any

from dolma_pipeline.errors import DolmaError

log = logging.getLogger(__name__)

MAX_RESTARTS = 3
START_BARRIER_SECONDS = 30.0
_START_BARRIER: Any = None


def run_on_pool(work: Callable[[Any], dict[str, Any]], shards: list, processes: int, bound: int,
                on_done: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Run every shard on `processes` forked workers; returns what the summary records about the run."""
    remaining, most, restarts = list(shards), 0, 0
    while remaining:
        finished: set[int] = set()
        try:
            most = max(most, _one_pool(work, remaining, processes, bound, on_done, finished))
            remaining = []
        except BrokenProcessPool as e:
            remaining = [shard for i, shard in enumerate(remaining) if i not in finished]
            restarts += 1
            if restarts > MAX_RESTARTS:
                names = ", ".join(shard.input for shard in remaining[:5])
                raise DolmaError(f"worker processes died {restarts} times ({e}); unfinished: {names}"
                                 + (f" and {len(remaining) - 5} more" if len(remaining) > 5 else "")) from None
            log.warning("a worker process died (%s); restarting the pool for %d unfinished shard(s)", e,
                        len(remaining))
    return {"in_flight_bound": bound, "max_in_flight": most, "pool_restarts": restarts}


def _one_pool(work, shards: list, processes: int, bound: int, on_done, finished: set[int]) -> int:
    workers = min(processes, len(shards))
    # fork: workers inherit the imported modules, so the pool is ready in milliseconds
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    queue = iter(enumerate(shards))
    most = 0
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_start,
                             initargs=(context.Barrier(workers),)) as pool:
        pending: dict[Any, int] = {}
        try:
            while True:
                for index, shard in islice(queue, max(0, bound - len(pending))):
                    pending[pool.submit(_run_pooled, work, shard)] = index
                most = max(most, len(pending))
                if not pending:
                    return most
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    on_done(future.result())
                    finished.add(index)
        except BaseException:
            for future in pending:
                future.cancel()
            raise


def _worker_start(barrier: Any) -> None:
    global _START_BARRIER
    _START_BARRIER = barrier


def _run_pooled(work: Callable[[Any], dict[str, Any]], shard: Any) -> dict[str, Any]:
    global _START_BARRIER
    from dolma_pipeline.executor import _run_one, _with_worker

    if _START_BARRIER is not None:
        barrier, _START_BARRIER = _START_BARRIER, None
        try:
            barrier.wait(timeout=START_BARRIER_SECONDS)
        except threading.BrokenBarrierError:  # a slow or dead sibling: go on without it
            pass
    return _with_worker(_run_one(work, shard))
