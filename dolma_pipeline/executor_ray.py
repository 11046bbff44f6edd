"""The Ray side of the executor: start or join a cluster (token auth on), and run shards on it.

Bounds at cluster scale: a task carries one shard (paths and options, never documents) and returns its
stats; workers read their input and write their output on storage themselves, so no document goes
through the object store or the driver. The driver keeps at most `max_in_flight` tasks submitted and
unfinished (default twice the cluster's CPUs), so its memory does not grow with the number of shards;
each task asks for one CPU and holds one batch of documents at a time (the command's `batch_size`).

Auth: an embedded cluster runs with Ray's token authentication (`RAY_AUTH_MODE=token`) and a token made
for this process, unless the user sets `RAY_AUTH_MODE=disabled` or brings a token (`RAY_AUTH_TOKEN`,
`RAY_AUTH_TOKEN_PATH`). Joining a cluster uses the user's settings: a cluster started with
`RAY_AUTH_MODE=token` is joined with its token in `RAY_AUTH_TOKEN`, `RAY_AUTH_TOKEN_PATH` or
`~/.ray/auth_token` (where `ray get-auth-token --generate` writes it).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from itertools import islice
from typing import Any

from dolma_pipeline.errors import DolmaError

log = logging.getLogger(__name__)

_RUN_TOKEN: str | None = None  # one per process: Ray caches the token it loaded, so it must not change
_AUTH = "not started"  # how the session opened by ray_init authenticates, for the summary


def active_session() -> str | None:
    """A description of the Ray session this process is connected to, or None (Ray is not imported for this)."""
    import sys

    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    context = ray.get_runtime_context()
    return f"job {context.get_job_id()} at {context.gcs_address}"


def embedded_auth() -> str:
    """Turn token auth on for an embedded cluster (before it starts); returns how it is set up."""
    global _RUN_TOKEN
    mode = os.environ.get("RAY_AUTH_MODE", "").lower()
    if mode == "disabled":
        return "disabled (RAY_AUTH_MODE=disabled)"
    os.environ["RAY_AUTH_MODE"] = "token"
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        how = "token (the user's)" if os.environ.get("RAY_AUTH_TOKEN") != _RUN_TOKEN else "token (made for this run)"
    else:
        _RUN_TOKEN = _RUN_TOKEN or secrets.token_hex(32)
        os.environ["RAY_AUTH_TOKEN"] = _RUN_TOKEN
        how = "token (made for this run)"
    _reload_ray_auth_settings()
    return how


def _reload_ray_auth_settings() -> None:
    """Ray reads RAY_AUTH_MODE and the token once and caches them; make it see what was just set."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except Exception as e:  # an older or newer Ray without these: its own defaults apply
        log.debug("could not refresh Ray's auth settings: %s", e)


def ray_init(processes: int, ray_address: str | None) -> bool:
    """Join the cluster at `ray_address` (or $RAY_ADDRESS), else start an embedded one; True if we started it.

    A session already open in this process (e.g. `dolma pipeline run`) is reused and False returned.
    """
    global _AUTH
    import ray

    if ray.is_initialized():
        return False
    address = ray_address or os.environ.get("RAY_ADDRESS") or None
    _AUTH = f"joined: RAY_AUTH_MODE={os.environ.get('RAY_AUTH_MODE', '(unset: token if a token is found)')}"
    kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=True, logging_level=logging.WARNING,
                                  configure_logging=False)
    if address:
        try:
            ray.init(address=address, **kwargs)
        except Exception as e:
            raise DolmaError(f"cannot join the Ray cluster at {address}: {e} (a cluster started with "
                             "RAY_AUTH_MODE=token needs its token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                             "~/.ray/auth_token)") from e
    else:
        # An embedded cluster lives and dies with this process, listens on loopback only and checks a token.
        _AUTH = embedded_auth()
        log.info("starting an embedded Ray cluster (%d CPUs, auth %s)", processes, _AUTH)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        # address="local": always a new cluster, never one that `ray start` (maybe long dead) recorded
        # in /tmp/ray/ray_current_cluster, which a bare ray.init() would try to join
        ray.init(address="local", num_cpus=max(1, processes), _node_ip_address="127.0.0.1", **kwargs)
    return True


class RaySession:
    """`with RaySession(placement, processes):` open Ray once for a command of several stages (no-op
    unless the placement is Ray); shut it down at the end only if this opened it."""

    def __init__(self, kind: str, processes: int, ray_address: str | None):
        self.kind, self.processes, self.ray_address = kind, processes, ray_address
        self.started = False

    def __enter__(self) -> RaySession:
        if self.kind == "ray":
            self.started = ray_init(self.processes, self.ray_address)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            import ray

            ray.shutdown()


def _run_on_worker(work: Callable[[Any], dict[str, Any]], shard: Any) -> dict[str, Any]:
    """One Ray task: run the shard and tag its stats with this node's id and this worker's pid."""
    import ray

    from dolma_pipeline.executor import _run_one, _with_worker

    return _with_worker(_run_one(work, shard), ray.get_runtime_context().get_node_id())


def run_on_ray(work: Callable[[Any], dict[str, Any]], shards: list, processes: int, ray_address: str | None,
               on_done: Callable[[dict[str, Any]], None], max_in_flight: int | None = None) -> dict[str, Any]:
    """Run every shard as a Ray task, spread over the cluster's nodes, at most `max_in_flight` at once.

    Returns what the summary records: the in-flight bound, the most tasks ever in flight, the session
    and its auth mode. A data error in a task cancels the others and is raised; a crashed worker is
    retried by Ray (three times).
    """
    import ray

    started = ray_init(processes, ray_address)
    try:
        cpus = int(ray.cluster_resources().get("CPU", processes))
        bound = max_in_flight or max(2, 2 * cpus)
        info: dict[str, Any] = {"session": active_session(), "in_flight_bound": bound,
                                "auth": _AUTH}
        remote = ray.remote(num_cpus=1, max_retries=3, scheduling_strategy="SPREAD")(_run_on_worker)
        queue = iter(shards)
        pending: dict[Any, Any] = {}
        most = 0
        while True:
            for shard in islice(queue, max(0, bound - len(pending))):
                pending[remote.remote(work, shard)] = shard
            most = max(most, len(pending))
            if not pending:
                break
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
        info["max_in_flight"] = most
        return info
    finally:
        if started:
            ray.shutdown()
