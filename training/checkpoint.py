"""Sharded checkpoints with torch.distributed.checkpoint (DCP), plus an unsharded safetensors export.

Layout of ``save_folder/stepNNNNNNNN/``:
- ``model_and_optim/``: DCP shards of the model and optimiser *tensors* (reshardable to any world size);
- ``train_state.json``: step, epoch, instances seen, optimiser hyper-parameters, world size;
- ``rng/rankNNNNN.safetensors``: each rank's torch RNG state;
- ``model.safetensors`` (+ ``config.yaml``): the full model, rank 0 only, if ``checkpoint.unsharded``.

A checkpoint is written to ``.tmp-stepNNNNNNNN`` and renamed when every rank is done, so a directory
named ``stepN`` is always complete: every file and directory of it is fsynced before the rename, and
older checkpoints are pruned only after the renamed directory's parent is fsynced too.

Loading runs no code from the checkpoint: DCP's ``.metadata`` pickle is read by an unpickler that
resolves only an exact list of ``(module, name)`` pairs (DCP's metadata dataclasses, ``torch.Size``,
torch dtypes and layouts), tensor items go through DCP's ``torch.load(weights_only=True)``, pickled
byte items are refused, RNG states and the unsharded export are safetensors, and everything else is
JSON or YAML read with ``safe_load``.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
import torch.nn as nn
from safetensors.torch import load_file, save_file
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.checkpoint.filesystem import FileSystemReader
from torch.distributed.checkpoint.planner import LoadItemType
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_model_state_dict,
    set_state_dict,
)

from training.config import TrainConfig, TrainingError, config_from_dict, save_config

log = logging.getLogger(__name__)


def _dcp(fn, *args: Any, **kwargs: Any) -> Any:
    # One process without a process group is a supported mode, not a mistake worth a warning per call.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        try:
            return fn(*args, **kwargs)
        except CheckpointException as e:
            reasons = "; ".join(f"rank {r}: {exc}" for r, (exc, _) in e.failures.items())
            where = kwargs.get("checkpoint_id") or getattr(kwargs.get("storage_reader"), "path", "")
            raise CheckpointError(f"{fn.__name__} of checkpoint {where} failed: {reasons}") from e


STEP_RE = re.compile(r"^step(\d+)$")


class CheckpointError(TrainingError):
    """A checkpoint is missing, incomplete or inconsistent."""


# --------------------------------------------------------------------------------------------------
# Safe DCP reading


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the exact ``(module, name)`` pairs DCP metadata is made of, plus torch dtypes.

    Anything else, including a dotted name that would walk from an allowed module into the modules it
    imports (``("torch.distributed.checkpoint.filesystem", "os.system")``), is a CheckpointError.
    """

    _ALLOWED = frozenset({
        ("torch.distributed.checkpoint.metadata", "Metadata"),
        ("torch.distributed.checkpoint.metadata", "MetadataIndex"),
        ("torch.distributed.checkpoint.metadata", "StorageMeta"),
        ("torch.distributed.checkpoint.metadata", "ChunkStorageMetadata"),
        ("torch.distributed.checkpoint.metadata", "TensorStorageMetadata"),
        ("torch.distributed.checkpoint.metadata", "BytesStorageMetadata"),
        ("torch.distributed.checkpoint.metadata", "TensorProperties"),
        ("torch.distributed.checkpoint.metadata", "_MEM_FORMAT_ENCODING"),
        ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
        ("collections", "OrderedDict"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("pathlib", "PosixPath"),
        ("pathlib", "PurePosixPath"),
        ("pathlib", "WindowsPath"),
        ("pathlib", "PureWindowsPath"),
        ("torch.serialization", "_get_layout"),  # maps a layout name to torch.strided etc.
        ("torch", "Size"),
    })

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and name.isidentifier():
            obj = getattr(torch, name, None)
            if isinstance(obj, (torch.dtype, torch.layout, torch.memory_format)):
                return obj
        raise CheckpointError(f"refusing to unpickle {module}.{name} from checkpoint metadata: only DCP's "
                              "metadata classes and torch dtypes may appear there")


class SafeFileSystemReader(FileSystemReader):
    """FileSystemReader that unpickles metadata with an allow-list and refuses pickled byte items."""

    def read_metadata(self, *args: Any, **kwargs: Any):  # noqa: D102
        path = self._get_metadata_path(kwargs.get("rank"))
        with self.fs.create_stream(path, "rb") as f:
            metadata = _RestrictedUnpickler(f).load()
        from torch.distributed.checkpoint.metadata import StorageMeta

        if getattr(metadata, "storage_meta", None) is None:
            metadata.storage_meta = StorageMeta()
        metadata.storage_meta.load_id = self.load_id
        return metadata

    def read_data(self, plan, planner):  # noqa: D102
        for item in plan.items:
            if item.type == LoadItemType.BYTE_IO:
                raise CheckpointError(f"checkpoint holds a pickled object at {item.storage_index.fqn!r}")
        return super().read_data(plan, planner)


# --------------------------------------------------------------------------------------------------
# Helpers


def _rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def _world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def _barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def _fsync(path: Path) -> None:
    """Flush a file's data, or a directory's entries, to stable storage."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory below ``root``, children first, so renaming ``root`` publishes
    data that is already on disk (DCP's own shards are synced as written: this is cheap for them)."""
    for dirpath, _, filenames in os.walk(root, topdown=False):
        for name in filenames:
            _fsync(Path(dirpath) / name)
        _fsync(Path(dirpath))


def step_dirs(folder: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for p in folder.iterdir():
        m = STEP_RE.match(p.name)
        if m and (p / "train_state.json").is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest_checkpoint(folder: str | Path) -> Path | None:
    dirs = step_dirs(folder)
    return dirs[-1][1] if dirs else None


def _jsonable(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.item()
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    return x


def _restore_groups(groups: list[dict]) -> list[dict]:
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    return groups


# --------------------------------------------------------------------------------------------------
# Save / load


class Checkpointer:
    """Saves and restores model, optimiser, trainer state and RNG in ``save_folder``."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.folder = Path(cfg.checkpoint.save_folder)

    def save(self, model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> Path:
        """Write checkpoint ``step{state['step']}``; every rank must call it."""
        step = int(state["step"])
        final = self.folder / f"step{step:08d}"
        tmp = self.folder / f".tmp-step{step:08d}"
        if _rank() == 0:
            self.folder.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            (tmp / "rng").mkdir()
        _barrier()
        model_sd, optim_sd = get_state_dict(model, optimizer)
        _dcp(dcp.save, {"model": model_sd, "optim": {"state": optim_sd["state"]}},
             checkpoint_id=str(tmp / "model_and_optim"))
        rng = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state()
        rng_file = tmp / "rng" / f"rank{_rank():05d}.safetensors"
        save_file(rng, str(rng_file))
        _fsync(rng_file)  # each rank its own file: on a shared filesystem rank 0 cannot flush another node's
        if self.cfg.checkpoint.unsharded:
            self._save_unsharded(model, tmp)
        if _rank() == 0:
            train_state = {
                **_jsonable(state),
                "world_size": _world(),
                "param_groups": _jsonable(optim_sd["param_groups"]),
            }
            (tmp / "train_state.json").write_text(json.dumps(train_state, indent=1))
            save_config(self.cfg, tmp / "config.yaml")
        _barrier()
        if _rank() == 0:
            _fsync_tree(tmp)
            old = self.folder / f".old-step{step:08d}"
            if final.exists():  # the same step saved again: keep the old copy until the new one is durable
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
            os.replace(tmp, final)
            _fsync(self.folder)  # the rename is durable: only now may older checkpoints go
            shutil.rmtree(old, ignore_errors=True)
            self._prune()
        _barrier()
        return final

    def _save_unsharded(self, model: nn.Module, out: Path) -> None:
        # Gathers to rank 0 on CPU so a large model never needs a full copy on an accelerator.
        sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if _rank() == 0:
            save_unsharded(sd, self.cfg, out)

    def _prune(self) -> None:
        keep = self.cfg.checkpoint.keep_last
        if keep <= 0:
            return
        for _, p in step_dirs(self.folder)[:-keep]:
            shutil.rmtree(p, ignore_errors=True)

    def resolve_resume(self) -> Path | None:
        mode = self.cfg.checkpoint.resume
        if mode == "never":
            return None
        if mode == "auto":
            return latest_checkpoint(self.folder)
        path = Path(mode)
        if not (path / "train_state.json").is_file():
            latest = latest_checkpoint(path)
            if latest is None:
                raise CheckpointError(f"checkpoint.resume={mode!r} is not a checkpoint directory")
            path = latest
        return path

    def load(self, path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
        """Restore model (and optimiser) from ``path`` at any world size; returns the trainer state."""
        state = json.loads((path / "train_state.json").read_text())
        load_sharded(path, model, optimizer, state.get("param_groups"))
        rng_file = path / "rng" / f"rank{_rank():05d}.safetensors"
        if state.get("world_size") == _world() and rng_file.is_file():
            rng = load_file(str(rng_file))
            torch.set_rng_state(rng["cpu"])
            if "cuda" in rng and torch.cuda.is_available():
                torch.cuda.set_rng_state(rng["cuda"])
        else:
            log.warning("world size changed (%s -> %s): RNG state not restored", state.get("world_size"), _world())
        return state


def load_sharded(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None, param_groups: list[dict] | None = None
) -> None:
    """Load DCP shards from checkpoint ``path`` into ``model`` (and ``optimizer``), resharding as needed."""
    reader = SafeFileSystemReader(str(Path(path) / "model_and_optim"))
    if optimizer is None:
        sd = get_model_state_dict(model)
        _dcp(dcp.load, {"model": sd}, storage_reader=reader)
        set_model_state_dict(model, sd)
        return
    model_sd, optim_sd = get_state_dict(model, optimizer)
    _dcp(dcp.load, {"model": model_sd, "optim": {"state": optim_sd["state"]}}, storage_reader=reader)
    if param_groups is not None:
        optim_sd["param_groups"] = _restore_groups(param_groups)
    set_state_dict(model, optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd)


def save_unsharded(state_dict: dict[str, torch.Tensor], cfg: TrainConfig, out: Path) -> None:
    """``model.safetensors`` (our key layout, config embedded in the metadata) and ``config.yaml``."""
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    meta = {"format": "pt", "olmo_train_config": json.dumps(_jsonable(cfg.to_dict()))}
    save_file(tensors, str(out / "model.safetensors"), metadata=meta)
    save_config(cfg, out / "config.yaml")


def load_config_from_checkpoint(path: Path) -> TrainConfig:
    import yaml

    with open(Path(path) / "config.yaml") as f:
        return config_from_dict(yaml.safe_load(f))


def load_model_state(path: Path, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Full model state dict (CPU, fp32) of checkpoint ``path``: from ``model.safetensors`` when present,
    else gathered from the DCP shards in this (single) process."""
    path = Path(path)
    if (path / "model.safetensors").is_file():
        return load_file(str(path / "model.safetensors"))
    model = cfg.model.build(device="meta")
    model.to_empty(device="cpu")
    load_sharded(path, model, None)
    return {k: v.detach() for k, v in model.state_dict().items()}
