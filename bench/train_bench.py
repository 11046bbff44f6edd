#!/usr/bin/env python
"""Train-step throughput: our trainer vs Hugging Face ``OlmoForCausalLM``, same shape, same run.

Shape (default, as in REFERENCE.md §4): d_model 256, 4 layers, 4 heads, seq 256, batch 8, vocab 50,304
rows, tied embeddings, fp32, AdamW (0.9, 0.95), clip 1.0. Ours is ``training.trainer.Trainer.train_step``
(forward, fused LM-head cross-entropy, backward, global clip, fused AdamW); HF's is
``/work/shared/bench/hf_olmo_step.py`` run with the peer venv (``/tmp/peers/hf-venv/bin/python``), in a
subprocess. Rounds alternate ours/HF so both see the same machine load. The machine is shared: the
CPU-seconds-per-step ratio is the robust figure; the wall-clock ratio is printed too.

    python bench/train_bench.py [--steps 8] [--warmup 2] [--rounds 1] [--compile] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.config import config_from_dict  # noqa: E402
from training.optim import LRSchedule, build_optimizer  # noqa: E402
from training.parallel import DistInfo, parallelize  # noqa: E402
from training.trainer import Trainer  # noqa: E402

# The peer's step script lives in the shared checkout beside the project (../shared/bench); its venv under PEERS.
HF_SCRIPT = Path(os.environ.get("HF_OLMO_STEP", str(REPO.parent / "shared" / "bench" / "hf_olmo_step.py")))
HF_PYTHON = Path(os.environ.get("HF_PYTHON", str(Path(os.environ.get("PEERS", "/tmp/peers")) / "hf-venv/bin/python")))


class RandomLoader:
    """Random token batches in the shape of ``TrainLoader.batch`` (the bench measures the step)."""

    def __init__(self, batch: int, seq: int, vocab: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.batches = [rng.integers(0, vocab, (batch, seq), dtype=np.int64) for _ in range(4)]

    def batch(self, step: int) -> list[tuple[np.ndarray, np.ndarray]]:
        tokens = self.batches[step % len(self.batches)]
        return [(tokens, np.zeros(len(tokens), dtype=np.int64))]

    def epoch_of(self, step: int) -> int:
        return 0

    def instances_seen(self, step: int) -> int:
        return 0

    def close(self) -> None:
        pass


def build_ours(args: argparse.Namespace) -> Trainer:
    cfg = config_from_dict({
        "model": {"preset": "tiny", "d_model": args.d_model, "n_layers": args.layers, "n_heads": args.heads,
                  "mlp_ratio": 8, "vocab_size": min(50280, args.vocab), "embedding_size": args.vocab,
                  "max_sequence_length": args.seq},
        "tokenizer": {"eos_token_id": min(50280, args.vocab) - 1},
        "optim": {"lr": 4e-4, "clip_grad_norm": 1.0, "impl": "fused"},
        "scheduler": {"name": "constant"},
        "trainer": {"max_steps": 10**6, "global_batch_size": args.batch, "micro_batch_size": args.batch,
                    "precision": "bf16" if args.bf16 else "fp32", "device": "cpu"},
        "parallel": {"fsdp": "off", "compile": args.compile},
        "data": {"sequence_length": args.seq},
    })
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    torch.manual_seed(0)
    model = cfg.model.build(device="meta")
    parallelize(model, cfg.parallel, info, cfg.trainer.precision)
    model.to_empty(device="cpu")
    model.init_weights()
    opt = build_optimizer(model, cfg.optim, "cpu")
    loader = RandomLoader(args.batch, args.seq, cfg.model.vocab_size)
    return Trainer(cfg, model, opt, LRSchedule(cfg.scheduler, cfg.optim.lr, 10**6), loader, {}, info, [])


def time_ours(trainer: Trainer, steps: int, warmup: int) -> dict:
    for _ in range(warmup):
        trainer.train_step()
    wall, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        trainer.train_step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"step_s": wall, "cpu_s": cpu, "loss_last": trainer.losses[-1]}


def time_hf(args: argparse.Namespace) -> dict | None:
    if not (HF_PYTHON.is_file() and HF_SCRIPT.is_file()):
        print(f"HF peer not available ({HF_PYTHON} / {HF_SCRIPT}); skipping it", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "hf.json"
        cmd = [str(HF_PYTHON), str(HF_SCRIPT), "--d-model", str(args.d_model), "--layers", str(args.layers),
               "--heads", str(args.heads), "--seq", str(args.seq), "--batch", str(args.batch),
               "--vocab", str(args.vocab), "--steps", str(args.steps), "--warmup", str(args.warmup),
               "--json", str(out)] + (["--bf16"] if args.bf16 else [])
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(f"HF run failed:\n{r.stderr[-2000:]}", file=sys.stderr)
            return None
        res = json.loads(out.read_text())
    # The peer reports medians only; rebuild per-round figures from them.
    return {"step_s": [res["step_s_median"]], "cpu_s": [res["cpu_s_per_step_median"]],
            "loss_last": res["loss_last"], "transformers": res["transformers"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--vocab", type=int, default=50304, help="embedding rows (padded vocabulary)")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=1, help="alternate ours/HF this many times")
    p.add_argument("--compile", action="store_true", help="torch.compile our blocks (cold compile ~20 s)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for both (slow on CPUs without AMX)")
    p.add_argument("--skip-hf", action="store_true")
    p.add_argument("--json", default=None)
    args = p.parse_args()

    tokens = args.batch * args.seq
    trainer = build_ours(args)
    ours = {"step_s": [], "cpu_s": []}
    hf = {"step_s": [], "cpu_s": []}
    hf_meta: dict = {}
    for r in range(args.rounds):
        o = time_ours(trainer, args.steps, args.warmup if r == 0 else 1)
        ours["step_s"] += o["step_s"]
        ours["cpu_s"] += o["cpu_s"]
        print(f"round {r}: ours {tokens / statistics.median(o['step_s']):.0f} tok/s "
              f"({statistics.median(o['cpu_s']):.2f} CPU-s/step)", flush=True)
        if not args.skip_hf:
            h = time_hf(args)
            if h is not None:
                hf["step_s"] += h["step_s"]
                hf["cpu_s"] += h["cpu_s"]
                hf_meta = {"transformers": h["transformers"], "loss_last": h["loss_last"]}
                print(f"round {r}: HF   {tokens / h['step_s'][0]:.0f} tok/s ({h['cpu_s'][0]:.2f} CPU-s/step)",
                      flush=True)

    def summary(d: dict) -> dict:
        step, cpu = statistics.median(d["step_s"]), statistics.median(d["cpu_s"])
        return {"tokens_per_s": tokens / step, "tokens_per_cpu_s": tokens / cpu, "step_s_median": step,
                "cpu_s_per_step_median": cpu}

    res = {
        "shape": {"d_model": args.d_model, "layers": args.layers, "heads": args.heads, "seq": args.seq,
                  "batch": args.batch, "vocab_rows": args.vocab, "tied": True,
                  "precision": "bf16" if args.bf16 else "fp32"},
        "torch": torch.__version__, "threads": torch.get_num_threads(), "loadavg": os.getloadavg(),
        "ours": summary(ours) | {"compile": args.compile},
    }
    print(f"ours: {res['ours']['tokens_per_s']:.0f} tokens/s, {res['ours']['tokens_per_cpu_s']:.0f} tokens/CPU-s")
    if hf["step_s"]:
        res["hf"] = summary(hf) | hf_meta
        res["ratio_tokens_per_s"] = res["ours"]["tokens_per_s"] / res["hf"]["tokens_per_s"]
        res["ratio_tokens_per_cpu_s"] = res["ours"]["tokens_per_cpu_s"] / res["hf"]["tokens_per_cpu_s"]
        print(f"HF OlmoForCausalLM: {res['hf']['tokens_per_s']:.0f} tokens/s, "
              f"{res['hf']['tokens_per_cpu_s']:.0f} tokens/CPU-s")
        print(f"ratio ours/HF: {res['ratio_tokens_per_s']:.2f}x tokens/s, "
              f"{res['ratio_tokens_per_cpu_s']:.2f}x tokens per CPU-second (target >= 1.2x)")
    print(json.dumps(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
