"""AdamW with OLMo's parameter groups, the learning-rate schedule and global grad-norm clipping."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from training.config import OptimConfig, SchedulerConfig


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay on Linear weights only: not the embedding (even when tied to the LM head), not norms."""
    linear_weights = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    decay, no_decay = [], []
    seen: set[int] = set()
    for _name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if id(p) in linear_weights else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(model: nn.Module, cfg: OptimConfig, device_type: str) -> torch.optim.AdamW:
    """AdamW (betas, eps from the config). ``impl=auto`` picks the fused kernel (CPU and CUDA)."""
    impl = cfg.impl
    kwargs: dict = {}
    if impl == "auto":
        impl = "fused" if device_type in ("cpu", "cuda") else "foreach"
    if impl == "fused":
        kwargs["fused"] = True
    elif impl == "foreach":
        kwargs["foreach"] = True
    else:
        kwargs["foreach"] = False
    return torch.optim.AdamW(
        param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, **kwargs
    )


class LRSchedule:
    """Linear warmup from ``warmup_min_ratio * peak`` to the peak, then cosine or linear decay to
    ``alpha_f * peak`` at ``t_max``; constant after. ``lr(step)`` is for the update after ``step``
    completed steps, so the state is just the step (saved with the trainer state)."""

    def __init__(self, cfg: SchedulerConfig, peak_lr: float, max_steps: int) -> None:
        self.cfg, self.peak = cfg, peak_lr
        self.t_max = cfg.t_max or max_steps

    def lr(self, step: int) -> float:
        c, peak = self.cfg, self.peak
        if c.name == "constant":
            return peak
        warm = c.warmup_steps
        if step < warm:
            lo = c.warmup_min_ratio * peak
            return lo + (peak - lo) * step / warm
        floor = c.alpha_f * peak
        if self.t_max <= warm:
            return floor
        frac = min(1.0, (step - warm) / (self.t_max - warm))
        if c.name == "linear":
            return peak - (peak - floor) * frac
        return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * frac))

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        lr = self.lr(step)
        for g in optimizer.param_groups:
            g["lr"] = lr
        return lr


def clip_grad_norm(parameters: list[torch.Tensor], max_norm: float | None) -> torch.Tensor:
    """Global L2 norm of all gradients (across ranks for sharded DTensor grads); clips when
    ``max_norm`` is set. Returns the norm before clipping as a plain (local, replicated) tensor."""
    grads = [p for p in parameters if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(grads, max_norm if max_norm else float("inf"), foreach=True)
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return norm
