"""Process groups and the parallelisation of a plain model: activation checkpointing, then
``torch.compile``, then FSDP2 ``fully_shard`` per block and at the root (torchtitan's order).

One process without ``torchrun`` runs the same code with no wrapping; under ``torchrun`` (gloo on CPU,
NCCL on CUDA; multi-node through torchrun's rendezvous) the model is sharded across all ranks.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import sys
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from training.config import ConfigError, ParallelConfig

log = logging.getLogger(__name__)
# Weights are initialised after sharding; on a CPU mesh DTensor says its RNG support may be incomplete,
# which only matters for reproducing the same init at another world size (checkpoints carry weights).
warnings.filterwarnings("ignore", message="DTensor random operators may not have complete support")


@dataclass
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(pref: str) -> torch.device:
    if pref == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if pref.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device={pref!r} but CUDA is not available")
    return torch.device(pref)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_distributed(cfg: ParallelConfig, device_pref: str = "auto") -> DistInfo:
    """Join the process group set up by ``torchrun`` (env://); with ``fsdp: on`` and no launcher, a
    one-process group so ``fully_shard`` can run. Picks the device of this rank."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_pref)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    want_group = world > 1 or cfg.fsdp == "on"
    if want_group and not dist.is_initialized():
        backend = cfg.backend
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"backend": backend, "timeout": datetime.timedelta(minutes=30)}
        if "MASTER_ADDR" not in os.environ:
            kwargs.update(init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
        if device.type == "cuda":
            kwargs["device_id"] = device
        dist.init_process_group(**kwargs)
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=device)


# Set when this process ran collectives with other ranks: see `leave_rank`.
_RAN_WITH_PEERS = False


def destroy_distributed() -> None:
    global _RAN_WITH_PEERS
    if dist.is_initialized():
        _RAN_WITH_PEERS = _RAN_WITH_PEERS or dist.get_world_size() > 1
        dist.destroy_process_group()


def leave_rank(code: int) -> int:
    """The exit code of this process; a rank that ran collectives with peers leaves here, skipping the
    interpreter's finalization.

    Gloo's worker threads (torch 2.13) outlive ``destroy_process_group`` and free each finished
    collective's work on their own thread; when that work holds tensors with Python objects, freeing it
    takes the GIL. If the main thread has meanwhile begun finalizing the interpreter, taking the GIL ends
    the worker thread inside a noexcept destructor and the rank aborts (SIGABRT, "terminate called
    without an active exception") after a run that succeeded: seen on a loaded 2-core machine about once
    in 50-100 two-rank runs, core dump: ``~AsyncBarrierWork`` in ``ProcessGroupGloo::runLoop`` waiting
    for the GIL during ``Py_FinalizeEx`` (pytorch/pytorch#179291 describes the mechanism). Everything a
    run writes is closed by then (checkpoints, metrics), so such a rank flushes its streams and logs and
    exits at once with its code.
    """
    if not _RAN_WITH_PEERS:
        return code
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def use_fsdp(cfg: ParallelConfig, world_size: int) -> bool:
    return cfg.fsdp == "on" or (cfg.fsdp == "auto" and world_size > 1)


def parallelize(model: nn.Module, cfg: ParallelConfig, info: DistInfo, precision: str) -> nn.Module:
    """Apply activation checkpointing, compile and FSDP2 in place; returns the model.

    With FSDP, bf16 runs through its mixed-precision policy (bf16 params for compute, fp32 sharded
    master weights, fp32 gradient reduction) instead of autocast.
    """
    blocks = list(model.blocks)
    if cfg.activation_checkpointing:
        for blk in blocks:
            blk.activation_checkpointing = True
    if cfg.compile:
        for blk in blocks:
            blk.compile()
    if use_fsdp(cfg, info.world_size):
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mesh = init_device_mesh(info.device.type, (info.world_size,))
        mp = MixedPrecisionPolicy(
            param_dtype=torch.bfloat16 if precision == "bf16" else torch.float32, reduce_dtype=torch.float32
        )
        for i, blk in enumerate(blocks):
            # The last block's params are needed again at once by backward: keep them unsharded.
            reshard = cfg.reshard_after_forward and i < len(blocks) - 1
            fully_shard(blk, mesh=mesh, mp_policy=mp, reshard_after_forward=reshard)
        fully_shard(model, mesh=mesh, mp_policy=mp, reshard_after_forward=cfg.reshard_after_forward)
    return model


def autocast_context(device: torch.device, precision: str, fsdp: bool):
    """bf16 autocast for the unwrapped model (FSDP casts through its policy instead)."""
    if precision == "bf16" and not fsdp:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum floats over ranks (identity on one process)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()
