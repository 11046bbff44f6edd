"""Training on token files: loss goes down, metrics are logged, resume is bitwise exact."""

from __future__ import annotations

import json
import math

import pytest
import torch

from training.trainer import Trainer, build_trainer


def fit(cfg) -> Trainer:
    trainer = build_trainer(cfg)
    trainer.fit()
    return trainer


def read_metrics(cfg) -> dict[int, dict]:
    path = f"{cfg.checkpoint.save_folder}/metrics.jsonl"
    return {r["step"]: r for r in map(json.loads, open(path).read().splitlines())}


@pytest.mark.slow
def test_short_training_decreases_train_and_eval_loss(make_config) -> None:
    cfg = make_config(trainer={"max_steps": 30, "eval_interval": 15, "micro_batch_size": 8}, metrics={"plot": True})
    trainer = build_trainer(cfg)
    eval0 = trainer.evaluate()["eval/heldout/loss"]
    assert abs(eval0 - math.log(257)) < 1.0
    trainer.fit()
    losses = trainer.losses
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 1.0
    m = read_metrics(cfg)
    assert m[15]["eval/heldout/loss"] < eval0 - 1.0
    assert m[30]["eval/heldout/loss"] < m[15]["eval/heldout/loss"]
    assert m[30]["eval/heldout/perplexity"] == pytest.approx(math.exp(m[30]["eval/heldout/loss"]))
    for key in ("loss", "perplexity", "lr", "grad_norm", "tokens_per_s", "tokens", "z_loss"):
        assert key in m[1], key
    assert m[30]["tokens"] == 30 * 8 * 64
    assert (trainer.checkpointer.folder / "loss.png").stat().st_size > 1000
    assert (trainer.checkpointer.folder / "config.yaml").is_file()


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_gives_bitwise_identical_losses(make_config, tmp_path, precision: str) -> None:
    common = {"precision": precision, "max_steps": 6}
    optim = {"z_loss": 1e-4}
    full = fit(make_config(trainer=common, optim=optim, checkpoint={"save_folder": str(tmp_path / "full")}))
    part_cfg = make_config(trainer={**common, "stop_at": 3}, optim=optim,
                           checkpoint={"save_folder": str(tmp_path / "part")})
    first = fit(part_cfg)
    assert first.step == 3 and first.losses == full.losses[:3]
    resumed = build_trainer(make_config(trainer=common, optim=optim,
                                        checkpoint={"save_folder": str(tmp_path / "part")}))
    assert resumed.step == 3
    resumed.fit()
    assert resumed.losses == full.losses[3:]  # bitwise: exact float equality
    # the log of the resumed run lines up with the uninterrupted one
    a, b = read_metrics(full.cfg), read_metrics(resumed.cfg)
    assert [a[s]["loss"] for s in range(1, 7)] == [b[s]["loss"] for s in range(1, 7)]


def test_gradient_accumulation_matches_one_big_micro_batch(make_config, tmp_path) -> None:
    one = fit(make_config(trainer={"max_steps": 2, "micro_batch_size": 8},
                          checkpoint={"save_folder": str(tmp_path / "a")}))
    acc = fit(make_config(trainer={"max_steps": 2, "micro_batch_size": 2},
                          checkpoint={"save_folder": str(tmp_path / "b")}))
    assert acc.losses == pytest.approx(one.losses, abs=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_cuda_bf16_training_decreases_loss_and_resumes_exactly(make_config, tmp_path) -> None:
    common = {"device": "cuda", "precision": "bf16", "max_steps": 8}
    full = fit(make_config(trainer=common, checkpoint={"save_folder": str(tmp_path / "full")}))
    assert full.losses[-1] < full.losses[0]
    fit(make_config(trainer={**common, "stop_at": 4}, checkpoint={"save_folder": str(tmp_path / "part")}))
    resumed = fit(make_config(trainer=common, checkpoint={"save_folder": str(tmp_path / "part")}))
    assert resumed.losses == pytest.approx(full.losses[4:], abs=1e-3)
