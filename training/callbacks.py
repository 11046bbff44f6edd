"""Trainer callbacks: speed/MFU, eval, console and JSONL logs, W&B, checkpoints, the loss plot.

Each step the trainer calls ``on_step_end(trainer, metrics)`` on every callback in order; callbacks may add
entries to ``metrics`` (speed, eval) for the loggers after them. Only rank 0 prints or writes logs.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from training.trainer import Trainer

log = logging.getLogger(__name__)

# Dense bf16 peak per device (TFLOP/s) for MFU; other devices need metrics.peak_tflops.
PEAK_TFLOPS = {"H100": 989.5, "H200": 989.5, "H800": 989.5, "A100": 312.0, "A800": 312.0, "L40S": 362.05}


def detect_peak_tflops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, val in PEAK_TFLOPS.items():
        if key in name:
            return val
    return None


class Callback:
    def on_fit_start(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        pass

    def on_fit_end(self, trainer: Trainer) -> None:
        pass


class SpeedMonitor(Callback):
    """tokens/s (all ranks) and MFU = tokens/s * (6N + 12 L d T) / (peak * world size).

    N counts every matmul weight: the blocks plus the LM head (even when tied), not the embedding lookup.
    """

    def __init__(self, peak_tflops: float | None) -> None:
        self.peak_tflops = peak_tflops
        self._last: float | None = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if self.peak_tflops is None:
            self.peak_tflops = detect_peak_tflops(trainer.dist.device)
        self.flops_per_token = trainer.cfg.model.flops_per_token(trainer.cfg.sequence_length)
        if trainer.dist.is_main:
            peak = f"{self.peak_tflops} TFLOP/s per device" if self.peak_tflops else "unknown (MFU not logged)"
            log.info("MFU: FLOPs/token = 6N + 12LdT = %.4g (N = %d, blocks + LM head); peak %s",
                     self.flops_per_token, trainer.cfg.model.num_flop_params(), peak)
        self._last = time.perf_counter()

    def on_step_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        now = time.perf_counter()
        dt, self._last = now - (self._last or now), now
        tokens = trainer.tokens_per_step
        metrics["step_time_s"] = dt
        metrics["tokens_per_s"] = tokens / dt if dt > 0 else float("nan")
        if self.peak_tflops:
            achieved = metrics["tokens_per_s"] * self.flops_per_token
            metrics["mfu"] = achieved / (self.peak_tflops * 1e12 * trainer.dist.world_size)


class EvalCallback(Callback):
    """Eval loss and perplexity per held-out label every ``interval`` steps and at the end."""

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self._last_eval_step = -1

    def on_step_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        last = trainer.step >= trainer.final_step
        if trainer.evaluators and (last or (self.interval > 0 and trainer.step % self.interval == 0)):
            t0 = time.perf_counter()
            metrics.update(trainer.evaluate())
            self._last_eval_step = trainer.step
            trainer.reset_timer(time.perf_counter() - t0)


class DownstreamEvalCallback(Callback):
    """Per-source perplexity and multiple-choice tasks (``training.eval``) every ``interval`` steps and at
    the end, into the step's metrics (``eval/ppl/<source>/...``, ``eval/task/<name>/...``)."""

    def __init__(self, suite: Any, interval: int) -> None:
        self.suite, self.interval = suite, interval

    def on_step_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        last = trainer.step >= trainer.final_step
        if not (last or (self.interval > 0 and trainer.step % self.interval == 0)):
            return
        from training.eval.suite import flatten
        from training.parallel import autocast_context

        t0 = time.perf_counter()
        autocast = autocast_context(trainer.dist.device, trainer.cfg.trainer.precision, trainer.fsdp)
        metrics.update(flatten(self.suite.run(trainer.model, trainer.dist.device, autocast)))
        trainer.reset_timer(time.perf_counter() - t0)


class ConsoleLogger(Callback):
    def __init__(self, interval: int) -> None:
        self.interval = max(1, interval)

    def on_step_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if not trainer.dist.is_main:
            return
        has_eval = any(k.startswith("eval/") for k in metrics)
        if trainer.step % self.interval and not has_eval and trainer.step < trainer.final_step:
            return
        parts = [f"step {trainer.step}/{trainer.final_step}", f"loss {metrics['loss']:.4f}"]
        if metrics.get("z_loss") is not None:
            parts.append(f"z {metrics['z_loss']:.3g}")
        parts += [f"lr {metrics['lr']:.3g}", f"gnorm {metrics['grad_norm']:.3f}"]
        if "tokens_per_s" in metrics:
            parts.append(f"{metrics['tokens_per_s']:.0f} tok/s")
        if "mfu" in metrics:
            parts.append(f"MFU {100 * metrics['mfu']:.1f}%")
        parts += [f"{k} {v:.4f}" for k, v in metrics.items() if k.startswith("eval/")]
        print(" | ".join(parts), flush=True)


class JSONLLogger(Callback):
    """One JSON object per step in ``save_folder/metrics.jsonl`` (appended across resumes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if trainer.dist.is_main:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a")

    def on_step_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if self._f is not None:
            self._f.write(json.dumps({"step": trainer.step, **metrics}) + "\n")
            self._f.flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class WandbLogger(Callback):
    def __init__(self, project: str, entity: str | None, name: str | None) -> None:
        self.project, self.entity, self.name = project, entity, name
        self._run = None

    def on_fit_start(self, trainer: Trainer) -> None:
        if not trainer.dist.is_main:
            return
        try:
            import wandb
        except ImportError:
            log.warning("metrics.wandb.enabled is set but wandb is not installed; not logging to W&B")
            return
        self._run = wandb.init(project=self.project, entity=self.entity, name=self.name or trainer.cfg.run_name,
                               config=trainer.cfg.to_dict(), resume="allow")

    def on_step_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if self._run is not None:
            self._run.log({k: v for k, v in metrics.items() if v is not None}, step=trainer.step)

    def on_fit_end(self, trainer: Trainer) -> None:
        if self._run is not None:
            self._run.finish()


class CheckpointCallback(Callback):
    """Saves every ``interval`` steps and at the end (``stop_at`` included)."""

    def __init__(self, interval: int) -> None:
        self.interval = interval
        self._saved_step = -1

    def on_fit_start(self, trainer: Trainer) -> None:
        self._saved_step = trainer.step

    def on_step_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if self.interval > 0 and trainer.step % self.interval == 0:
            t0 = time.perf_counter()
            trainer.save_checkpoint()
            self._saved_step = trainer.step
            trainer.reset_timer(time.perf_counter() - t0)

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.step != self._saved_step:
            trainer.save_checkpoint()
            self._saved_step = trainer.step


class LossPlot(Callback):
    """``loss.png`` in the save folder at the end: train loss (and eval loss per label) over steps."""

    def __init__(self, metrics_path: Path, out: Path) -> None:
        self.metrics_path, self.out = metrics_path, out

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.dist.is_main and self.metrics_path.is_file():
            plot_metrics(self.metrics_path, self.out)


def plot_metrics(metrics_path: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_step: dict[int, dict] = {}
    for line in metrics_path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            by_step[rec["step"]] = rec  # a resumed run rewrites later steps; keep the last
    steps = sorted(by_step)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, [by_step[s]["loss"] for s in steps], label="train", lw=1)
    eval_keys = sorted({k for r in by_step.values() for k in r if k.startswith("eval/") and k.endswith("/loss")})
    for k in eval_keys:
        pts = [(s, by_step[s][k]) for s in steps if k in by_step[s]]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=k[5:-5] + " (eval)", ms=3)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    finite = [by_step[s]["loss"] for s in steps if math.isfinite(by_step[s]["loss"])]
    if finite:
        ax.set_ylim(top=max(finite) * 1.02)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
