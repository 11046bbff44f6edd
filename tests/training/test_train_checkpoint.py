"""Checkpoints: layout, atomic rename, pruning, safe loading, resume modes."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from safetensors.torch import load_file

from training.checkpoint import CheckpointError, latest_checkpoint, load_model_state, step_dirs
from training.trainer import build_trainer


def test_layout_pruning_and_resume_modes(make_config) -> None:
    cfg = make_config(trainer={"max_steps": 6}, checkpoint={"save_interval": 2, "keep_last": 2})
    trainer = build_trainer(cfg)
    trainer.fit()
    folder = trainer.checkpointer.folder
    assert [s for s, _ in step_dirs(folder)] == [4, 6]
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp")]
    last = latest_checkpoint(folder)
    state = json.loads((last / "train_state.json").read_text())
    assert state["step"] == 6 and state["instances_seen"] == 48 and state["world_size"] == 1
    assert state["param_groups"][0]["weight_decay"] == 0.1
    assert {"config.yaml", "model.safetensors", "model_and_optim", "rng", "train_state.json"} <= set(os.listdir(last))
    # the unsharded export equals the live model, and the DCP shards give the same tensors
    full = load_file(str(last / "model.safetensors"))
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(full[k], v), k
    (last / "model.safetensors").rename(last / "moved.safetensors")
    from_shards = load_model_state(last, cfg)
    assert all(torch.equal(from_shards[k], full[k]) for k in full)

    fresh = build_trainer(make_config(trainer={"max_steps": 6}, checkpoint={"resume": "never"}))
    assert fresh.step == 0
    explicit = build_trainer(make_config(trainer={"max_steps": 6},
                                         checkpoint={"resume": str(folder / "step00000004"),
                                                     "save_folder": str(folder.parent / "other")}))
    assert explicit.step == 4


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_loading_refuses_pickled_code(make_config) -> None:
    cfg = make_config(trainer={"max_steps": 1})
    trainer = build_trainer(cfg)
    trainer.fit()
    meta = latest_checkpoint(trainer.checkpointer.folder) / "model_and_optim" / ".metadata"
    meta.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(CheckpointError, match="refusing to unpickle (posix|os).system"):
        build_trainer(make_config(trainer={"max_steps": 2}))
    with pytest.raises(CheckpointError):
        build_trainer(make_config(trainer={"max_steps": 2}, checkpoint={"resume": "/nonexistent"}))
