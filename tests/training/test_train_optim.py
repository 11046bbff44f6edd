"""OLMo's parameter groups, the warmup/decay schedule and grad clipping."""

from __future__ import annotations

import math

import pytest
import torch

from training.config import ModelConfig, OptimConfig, SchedulerConfig
from training.optim import LRSchedule, build_optimizer, clip_grad_norm, param_groups


@pytest.mark.parametrize("tied", [True, False])
def test_decay_only_on_linear_weights(tied: bool) -> None:
    model = ModelConfig.from_name("tiny", vocab_size=300, weight_tying=tied).build()
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert [names[id(p)] for p in no_decay["params"]] == ["wte.weight"]
    decayed = {names[id(p)] for p in decay["params"]}
    assert ("lm_head.weight" in decayed) == (not tied)
    assert all(n.split(".")[-2] in ("att_proj", "attn_out", "ff_proj", "ff_out", "lm_head") for n in decayed)


def test_optimizer_settings() -> None:
    model = ModelConfig.from_name("tiny", vocab_size=300).build()
    opt = build_optimizer(model, OptimConfig(), "cpu")
    g = opt.param_groups[0]
    assert g["betas"] == (0.9, 0.95) and g["eps"] == 1e-5 and g["fused"]


def test_cosine_schedule_with_warmup_from_a_tenth() -> None:
    s = LRSchedule(SchedulerConfig(name="cosine", warmup_steps=10, alpha_f=0.1), 1.0, max_steps=110)
    assert s.lr(0) == pytest.approx(0.1)
    assert s.lr(5) == pytest.approx(0.55)
    assert s.lr(10) == pytest.approx(1.0)
    assert s.lr(60) == pytest.approx(0.1 + 0.9 * 0.5)
    assert s.lr(110) == pytest.approx(0.1) and s.lr(500) == pytest.approx(0.1)
    lrs = [s.lr(i) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))


def test_linear_and_constant_schedules() -> None:
    lin = LRSchedule(SchedulerConfig(name="linear", warmup_steps=0, alpha_f=0.1), 2.0, max_steps=100)
    assert lin.lr(0) == pytest.approx(2.0) and lin.lr(50) == pytest.approx(1.1) and lin.lr(100) == pytest.approx(0.2)
    assert LRSchedule(SchedulerConfig(name="constant"), 3.0, 10).lr(7) == 3.0
    t = LRSchedule(SchedulerConfig(name="linear", warmup_steps=0, t_max=10), 1.0, max_steps=1000)
    assert t.lr(10) == pytest.approx(0.1)


def test_clip_grad_norm_is_global() -> None:
    a, b = torch.zeros(3, requires_grad=True), torch.zeros(4, requires_grad=True)
    a.grad, b.grad = torch.full((3,), 2.0), torch.full((4,), 2.0)
    norm = clip_grad_norm([a, b], 1.0)
    assert float(norm) == pytest.approx(math.sqrt(7 * 4))
    total = math.sqrt(float(a.grad.square().sum() + b.grad.square().sum()))
    assert total == pytest.approx(1.0, rel=1e-4)
    c = torch.zeros(2, requires_grad=True)
    c.grad = torch.ones(2)
    assert float(clip_grad_norm([c], None)) == pytest.approx(math.sqrt(2)) and torch.equal(c.grad, torch.ones(2))
