"""Two processes under torchrun (gloo, FSDP2): bitwise resume, and a 2-process checkpoint loads at 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import REPO, small_config

from training.checkpoint import latest_checkpoint
from training.config import save_config
from training.trainer import build_trainer

pytestmark = [pytest.mark.distributed, pytest.mark.slow]


def torchrun(cfg, tmp_path: Path, name: str, nproc: int = 2) -> list[float]:
    cfg_path = tmp_path / f"{name}.yaml"
    save_config(cfg, cfg_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "training.cli", str(cfg_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert r.stdout.count("step 1/") <= 1  # only rank 0 prints
    return metrics(cfg)


def metrics(cfg) -> list[float]:
    lines = Path(cfg.checkpoint.save_folder, "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in sorted(map(json.loads, lines), key=lambda r: r["step"])]


def test_fsdp_two_processes_resume_bitwise_and_load_at_one(token_dir: Path, tmp_path: Path) -> None:
    def cfg(folder: str, **trainer):
        return small_config(
            token_dir, tmp_path / folder,
            trainer={"max_steps": 6, "micro_batch_size": 2, "precision": "bf16", "log_interval": 1, **trainer},
            optim={"z_loss": 1e-4}, parallel={"fsdp": "auto"},
        )

    full_cfg = cfg("full")
    full_cfg.checkpoint.save_interval = 3
    full_cfg.checkpoint.keep_last = 0
    full = torchrun(full_cfg, tmp_path, "full")
    assert len(full) == 6 and full[-1] < full[0]
    # a second run restarts from the checkpoint of step 3, in a new folder
    resumed_cfg = cfg("resumed")
    resumed_cfg.checkpoint.resume = str(tmp_path / "full" / "step00000003")
    resumed = torchrun(resumed_cfg, tmp_path, "resumed")
    assert resumed == full[3:]  # steps 4..6 after the restart are bitwise the uninterrupted ones

    ckpt = latest_checkpoint(tmp_path / "full")
    assert json.loads((ckpt / "train_state.json").read_text())["world_size"] == 2
    assert len(list((ckpt / "model_and_optim").glob("*.distcp"))) == 2
    one = build_trainer(small_config(
        token_dir, tmp_path / "one", trainer={"max_steps": 8, "micro_batch_size": 2, "precision": "bf16"},
        optim={"z_loss": 1e-4}, checkpoint={"resume": str(ckpt)},
    ))
    assert one.step == 6 and not one.fsdp
    gathered = load_file(str(ckpt / "model.safetensors"))
    for k, v in one.model.state_dict().items():
        assert torch.equal(v, gathered[k]), k
    exp_avg = [s["exp_avg"] for s in one.optimizer.state.values()]
    assert exp_avg and all(float(t.abs().sum()) > 0 for t in exp_avg)  # optimiser moments restored
    one.fit()
    assert len(one.losses) == 2 and all(abs(x - full[-1]) < 0.5 for x in one.losses)
