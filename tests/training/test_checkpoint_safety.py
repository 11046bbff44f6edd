"""Checkpoints run no code from their files, and a new checkpoint is durable before old ones are pruned."""

from __future__ import annotations

import os
import pickle
import shutil
import struct
from pathlib import Path

import pytest

import training.checkpoint as checkpoint
from training.checkpoint import CheckpointError, latest_checkpoint, load_model_state, step_dirs
from training.trainer import build_trainer


def _unicode(text: str) -> bytes:
    data = text.encode()
    return pickle.SHORT_BINUNICODE + bytes([len(data)]) + data if len(data) < 256 else \
        pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def _call_payload(module: str, name: str, argument: str, opcode: str) -> bytes:
    """A protocol-4 pickle calling `module`.`name`(argument) (names looked up by STACK_GLOBAL or GLOBAL)."""
    if opcode == "stack_global":
        lookup = _unicode(module) + _unicode(name) + pickle.STACK_GLOBAL
    else:
        lookup = pickle.GLOBAL + f"{module}\n{name}\n".encode()
    return pickle.PROTO + b"\x04" + lookup + _unicode(argument) + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP


PAYLOADS = [
    ("torch.distributed.checkpoint.filesystem", "os.system", "stack_global"),  # the reported one
    ("torch.distributed.checkpoint.metadata", "torch.os.system", "stack_global"),  # dotted through torch
    ("torch.distributed.checkpoint.filesystem", "os.system", "global"),  # the GLOBAL opcode
    ("torch.distributed.checkpoint.state_dict_loader", "os.system", "stack_global"),  # another DCP module
]


@pytest.fixture
def trained(make_config):
    cfg = make_config(trainer={"max_steps": 2}, checkpoint={"save_interval": 2, "unsharded": False})
    trainer = build_trainer(cfg)
    trainer.fit()
    return cfg, latest_checkpoint(trainer.checkpointer.folder)


@pytest.mark.parametrize("module,name,opcode", PAYLOADS)
def test_crafted_metadata_is_refused_on_resume_and_export(trained, make_config, tmp_path, module, name, opcode):
    cfg, last = trained
    assert not (last / "model.safetensors").exists()  # export must go through the DCP metadata
    pwned = tmp_path / "pwned"
    (last / "model_and_optim" / ".metadata").write_bytes(_call_payload(module, name, f"touch {pwned}", opcode))
    with pytest.raises(CheckpointError, match=r"refusing to unpickle .*only DCP's metadata classes"):
        build_trainer(make_config(trainer={"max_steps": 4}))  # resume=auto picks the planted checkpoint
    with pytest.raises(CheckpointError, match="refusing to unpickle"):
        load_model_state(last, cfg)  # what `olmo-train export` does without model.safetensors
    assert not pwned.exists(), "the checkpoint ran a command"


def test_real_checkpoints_still_resume_and_export(trained, make_config, tmp_path):
    cfg, last = trained
    state = load_model_state(last, cfg)  # through the restricted unpickler
    assert state and all(v.is_floating_point() for v in state.values())
    resumed = build_trainer(make_config(trainer={"max_steps": 4}))
    assert resumed.step == 2
    from training.hf_export import export_hf

    out = export_hf(last.parent, tmp_path / "hf")
    assert (Path(out) / "config.json").is_file()


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def test_checkpoint_is_durable_before_older_ones_are_pruned(make_config, monkeypatch):
    """Every file of the new checkpoint is fsynced before its rename, the save folder after it, and only
    then is an older checkpoint deleted."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace, real_rmtree = os.fsync, os.replace, shutil.rmtree
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", _fd_path(fd))), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", f"{a} -> {b}")), real_replace(a, b))[1])
    monkeypatch.setattr(shutil, "rmtree", lambda p, *a, **k: (events.append(("rmtree", str(p))), real_rmtree(p, *a, **k))[1])

    cfg = make_config(trainer={"max_steps": 4}, checkpoint={"save_interval": 2, "keep_last": 1})
    trainer = build_trainer(cfg)
    trainer.fit()
    folder = trainer.checkpointer.folder.resolve()
    assert [s for s, _ in step_dirs(folder)] == [4]

    tmp, final = folder / ".tmp-step00000004", folder / "step00000004"
    rename = events.index(("replace", f"{tmp} -> {final}"))
    synced_before = {path for kind, path in events[:rename] if kind == "fsync"}
    files = {str(p).replace(str(final), str(tmp)) for p in final.rglob("*")} | {str(tmp)}
    assert files <= synced_before, f"not fsynced before the rename: {sorted(files - synced_before)}"
    prune = events.index(("rmtree", str(folder / "step00000002")))
    assert rename < prune
    assert ("fsync", str(folder)) in events[rename:prune], "the rename was not made durable before pruning"
    assert checkpoint.STEP_RE.match(final.name)
