"""The training loop. Checkpointing, logging, eval and speed are callbacks (training/callbacks.py)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from training.callbacks import (
    Callback,
    CheckpointCallback,
    ConsoleLogger,
    DownstreamEvalCallback,
    EvalCallback,
    JSONLLogger,
    LossPlot,
    SpeedMonitor,
    WandbLogger,
)
from training.checkpoint import Checkpointer
from training.config import TrainConfig, TrainingError, save_config
from training.data import EvalLoader, TokenDataset, TrainLoader
from training.optim import LRSchedule, build_optimizer, clip_grad_norm
from training.parallel import (
    DistInfo,
    all_reduce_sum,
    autocast_context,
    init_distributed,
    parallelize,
    use_fsdp,
)

log = logging.getLogger(__name__)


class Trainer:
    """Runs optimiser steps ``step -> step + 1`` until ``final_step``; resumable at any step."""

    def __init__(
        self,
        cfg: TrainConfig,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: LRSchedule,
        loader: TrainLoader,
        evaluators: dict[str, EvalLoader],
        info: DistInfo,
        callbacks: list[Callback],
    ) -> None:
        self.cfg, self.model, self.optimizer, self.schedule = cfg, model, optimizer, schedule
        self.loader, self.evaluators, self.dist, self.callbacks = loader, evaluators, info, callbacks
        self.checkpointer = Checkpointer(cfg)
        self.fsdp = use_fsdp(cfg.parallel, info.world_size)
        self.step = 0
        self.final_step = min(cfg.trainer.max_steps, cfg.trainer.stop_at or cfg.trainer.max_steps)
        self.tokens_per_step = cfg.trainer.global_batch_size * cfg.sequence_length
        self.losses: list[float] = []  # train loss of each step run in this process (for tests/benches)
        self._timer_offset = 0.0

    # ---------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.loader.epoch_of(self.step),
            "instances_seen": self.loader.instances_seen(self.step),
            "global_batch_size": self.cfg.trainer.global_batch_size,
            "sequence_length": self.cfg.sequence_length,
            "seed": self.cfg.trainer.seed,
        }

    def save_checkpoint(self) -> Path:
        path = self.checkpointer.save(self.model, self.optimizer, self.state())
        if self.dist.is_main:
            log.info("saved checkpoint %s", path)
        return path

    def maybe_resume(self) -> Path | None:
        path = self.checkpointer.resolve_resume()
        if path is None:
            return None
        state = self.checkpointer.load(path, self.model, self.optimizer)
        G = self.cfg.trainer.global_batch_size
        if state["global_batch_size"] != G or state["sequence_length"] != self.cfg.sequence_length:
            log.warning("global batch or sequence length changed since the checkpoint: data order differs")
        self.step = int(state["instances_seen"]) // G if state["global_batch_size"] != G else int(state["step"])
        if self.dist.is_main:
            log.info("resumed from %s at step %d", path, self.step)
        return path

    def reset_timer(self, seconds_spent_elsewhere: float) -> None:
        """Exclude time spent in eval/checkpoints from the speed of the next step."""
        for cb in self.callbacks:
            if isinstance(cb, SpeedMonitor) and cb._last is not None:
                cb._last += seconds_spent_elsewhere

    # ---------------------------------------------------------------------------------------------

    def _to_device(self, tokens: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(tokens)
        if self.dist.device.type == "cuda":
            return t.pin_memory().to(self.dist.device, non_blocking=True)
        return t

    def train_step(self) -> dict[str, Any]:
        """One optimiser step on the global batch of ``self.step``."""
        self.model.train()
        micro_batches = self.loader.batch(self.step)
        n = len(micro_batches)
        z_coef = self.cfg.optim.z_loss
        ce_sum = torch.zeros((), device=self.dist.device)
        z_sum = torch.zeros((), device=self.dist.device)
        for i, (tokens, _sources) in enumerate(micro_batches):
            ids_BT = self._to_device(tokens)
            if self.fsdp and n > 1:
                self.model.set_requires_gradient_sync(i == n - 1)
            with autocast_context(self.dist.device, self.cfg.trainer.precision, self.fsdp):
                loss, ce, z = self.model(ids_BT, ids_BT, z_loss=z_coef)
            (loss / n).backward()
            ce_sum += ce
            if z is not None:
                z_sum += z
        grad_norm = clip_grad_norm(list(self.model.parameters()), self.cfg.optim.clip_grad_norm)
        lr = self.schedule.apply(self.optimizer, self.step)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        ce_g, z_g = all_reduce_sum([float(ce_sum) / n, float(z_sum) / n], self.dist.device)
        loss_v = ce_g / self.dist.world_size
        if not math.isfinite(loss_v):
            raise TrainingError(f"non-finite loss {loss_v} at step {self.step}")
        metrics: dict[str, Any] = {
            "loss": loss_v,
            "perplexity": math.exp(min(loss_v, 50.0)),
            "z_loss": z_g / self.dist.world_size if z_coef else None,
            "lr": lr,
            "grad_norm": float(grad_norm),
            "tokens": self.step * self.tokens_per_step,
        }
        self.losses.append(loss_v)
        return metrics

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean next-token loss and perplexity per held-out label (over all ranks)."""
        self.model.eval()
        out: dict[str, float] = {}
        for label, loader in self.evaluators.items():
            total, count = 0.0, 0.0
            for tokens in loader:
                ids_BT = self._to_device(tokens)
                with autocast_context(self.dist.device, self.cfg.trainer.precision, self.fsdp):
                    _, ce, _ = self.model(ids_BT, ids_BT)
                npred = ids_BT.shape[0] * (ids_BT.shape[1] - 1)
                total += float(ce) * npred
                count += npred
            total, count = all_reduce_sum([total, count], self.dist.device)
            if count:
                out[f"eval/{label}/loss"] = total / count
                out[f"eval/{label}/perplexity"] = math.exp(min(total / count, 50.0))
        self.model.train()
        return out

    def fit(self) -> None:
        for cb in self.callbacks:
            cb.on_fit_start(self)
        try:
            while self.step < self.final_step:
                metrics = self.train_step()
                for cb in self.callbacks:
                    cb.on_step_end(self, metrics)
            for cb in self.callbacks:
                cb.on_fit_end(self)
        finally:
            self.loader.close()


# -------------------------------------------------------------------------------------------------


def build_trainer(cfg: TrainConfig, info: DistInfo | None = None) -> Trainer:
    """Everything for a run: process group, model (meta -> shard -> init), data, optimiser, callbacks;
    then resume from the latest checkpoint when there is one."""
    info = info or init_distributed(cfg.parallel, cfg.trainer.device)
    if not info.is_main:
        logging.getLogger("training").setLevel(logging.WARNING)
    t = cfg.trainer
    save_folder = Path(cfg.checkpoint.save_folder)
    if info.is_main:
        save_folder.mkdir(parents=True, exist_ok=True)
        save_config(cfg, save_folder / "config.yaml")

    torch.manual_seed(t.seed)
    model = cfg.model.build(device="meta")
    parallelize(model, cfg.parallel, info, t.precision)
    model.to_empty(device=info.device)
    model.init_weights()
    if info.is_main:
        log.info("model: %s, %d parameters", cfg.model.preset or "custom", cfg.model.num_params())

    optimizer = build_optimizer(model, cfg.optim, info.device.type)
    schedule = LRSchedule(cfg.scheduler, cfg.optim.lr, t.max_steps)
    seq = cfg.sequence_length
    vocab = cfg.model.vocab_size
    train_ds = TokenDataset(cfg.data.train, seq, cfg.data.dtype, vocab)
    loader = TrainLoader(
        train_ds, t.global_batch_size, t.micro_batch_size, t.seed, info.rank, info.world_size, cfg.data.prefetch
    )
    evaluators = {
        src.label: EvalLoader(
            TokenDataset([src], seq, cfg.data.dtype, vocab), t.micro_batch_size, info.rank, info.world_size,
            t.eval_max_batches,
        )
        for src in cfg.data.eval
    }
    if info.is_main:
        log.info("train data: %d instances of %d tokens in %d files (%d steps per epoch)",
                 len(train_ds), seq, len(train_ds.files), loader.steps_per_epoch)

    m = cfg.metrics
    metrics_path = save_folder / "metrics.jsonl"
    callbacks: list[Callback] = [SpeedMonitor(m.peak_tflops), EvalCallback(t.eval_interval)]
    ev = cfg.evaluation
    if ev.documents or ev.tasks:
        from training.eval.suite import EvalSuite

        suite = EvalSuite(ev, cfg.tokenizer, cfg.tokenizer.path, seq, t.micro_batch_size)
        callbacks.append(DownstreamEvalCallback(suite, t.eval_interval if ev.interval is None else ev.interval))
    callbacks.append(ConsoleLogger(t.log_interval))
    if m.jsonl:
        callbacks.append(JSONLLogger(metrics_path))
    if m.wandb.enabled:
        callbacks.append(WandbLogger(m.wandb.project, m.wandb.entity, m.wandb.name))
    callbacks.append(CheckpointCallback(cfg.checkpoint.save_interval))
    if m.plot and m.jsonl:
        callbacks.append(LossPlot(metrics_path, save_folder / "loss.png"))

    trainer = Trainer(cfg, model, optimizer, schedule, loader, evaluators, info, callbacks)
    trainer.maybe_resume()
    return trainer
