#!/usr/bin/env python
"""One-GPU check and benchmark of the trainer (CUDA; ``--cpu-smoke`` runs every part on CPU, tiny model).

    python bench/gpu_bench.py [--budget-s 330] [--no-compile] [--cpu-smoke]

Needs only torch (+ numpy) and this repository: random tokens, no tokenizer, no transformers, no network.
Parts, each isolated (a failure is recorded and the next part runs), skipped when the time budget is spent:
  a. invariants on the device in bf16: finite loss ~ ln V at init, causality, finite grads for every
     parameter, fused vs plain LM-head loss, OLMo-1B parameter count on the meta device;
  b. OLMo-1B (seq 2048, bf16 autocast, fused AdamW, no activation checkpointing unless nothing else fits)
     tokens/s and MFU, eager and then ``torch.compile`` (per block), largest micro-batch of 8/4/2 that fits;
  c. FSDP2 ``fully_shard`` (per block + root) in a one-process NCCL group: losses of the wrapped model
     match the unwrapped one (fp32 within 1e-4 relative; bf16 mixed-precision policy vs autocast within
     3e-2), then OLMo-1B tokens/s under FSDP2 when time allows;
  d. a JSON summary as the last line of stdout, also written to $OUT/gpu_bench.json when $OUT is set.

MFU = tokens/s x FLOPs/token / 989.5e12 (H100 dense bf16 peak), FLOPs/token = 6N + 12·L·d·T, where N
counts every matmul weight: the blocks (1,073,741,824 for OLMo-1B) plus the LM head (the tied embedding,
103,022,592, counted once as a matmul; the embedding lookup itself is free), N = 1,176,764,416; T = 2048.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import socket
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from training.config import ModelConfig, OptimConfig, ParallelConfig  # noqa: E402
from training.model import OLMo  # noqa: E402
from training.optim import build_optimizer, clip_grad_norm  # noqa: E402
from training.parallel import DistInfo, autocast_context, parallelize  # noqa: E402

PEAK_FLOPS = 989.5e12
SMOKE_VOCAB = 512  # --cpu-smoke: the tiny preset with a small vocabulary, so every part runs in seconds


class Budget:
    def __init__(self, seconds: float) -> None:
        self.end = time.time() + seconds

    def left(self) -> float:
        return self.end - time.time()


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def run_part(name: str, fn: Callable[[], dict], results: dict, budget: Budget, min_s: float) -> None:
    if budget.left() < min_s:
        results[name] = {"ok": False, "skipped": f"time budget ({budget.left():.0f} s left, needs {min_s:.0f})"}
    else:
        t0 = time.time()
        try:
            res = fn()
            results[name] = {"ok": bool(res.pop("ok", True)), **res}
        except Exception as e:  # one part's failure must not stop the others
            results[name] = {"ok": False, "error": f"{type(e).__name__}: {str(e)[:500]}",
                             "traceback": traceback.format_exc()[-1500:]}
        results[name]["seconds"] = round(time.time() - t0, 1)
    free_memory()
    print(f"[{name}] {json.dumps(results[name], default=str)[:2000]}", flush=True)


# --------------------------------------------------------------------------------------------------
# a. invariants


def part_invariants(dev: torch.device, smoke: bool) -> dict:
    # the real vocabulary (50280 ids, 50304 rows) on the device; a small one for the CPU smoke run
    cfg = ModelConfig.from_name("tiny", vocab_size=SMOKE_VOCAB) if smoke else ModelConfig.from_name("tiny")
    V = cfg.vocab_size
    torch.manual_seed(0)
    model = OLMo(cfg, device=dev)
    ids = torch.randint(0, V, (4, 128), device=dev)
    with torch.autocast(dev.type, dtype=torch.bfloat16):
        loss, ce, z = model(ids, ids, z_loss=1e-4)
    loss.backward()
    grads_finite = all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in model.parameters())
    with torch.no_grad(), torch.autocast(dev.type, dtype=torch.bfloat16):
        a = model(ids)
        changed = ids.clone()
        changed[:, 64:] = (changed[:, 64:] + 1) % V
        b = model(changed)
        prefix = float((a[:, :64] - b[:, :64]).float().abs().max())
        suffix = float((a[:, 64:] - b[:, 64:]).float().abs().max())
        fused_ce = float(model(ids, ids)[1])
        model.cfg.fused_loss = False
        plain_ce = float(model(ids, ids)[1])
    n_1b = sum(p.numel() for p in ModelConfig.from_name("olmo-1b").build(device="meta").parameters())
    checks = {
        "loss_finite": math.isfinite(float(loss.detach())),
        "loss_near_ln_v": abs(float(ce) - math.log(V)) < 1.0,
        "causal": prefix <= 1e-2 and suffix > 1e-2,
        "grads_finite": grads_finite,
        "fused_matches_plain": abs(fused_ce - plain_ce) < 2e-2,
        "olmo_1b_params": n_1b == 1_176_764_416,
    }
    return {"ok": all(checks.values()), "checks": checks, "loss": float(ce), "ln_v": math.log(V),
            "causal_prefix_max_diff": prefix, "causal_suffix_max_diff": suffix,
            "fused_ce": fused_ce, "plain_ce": plain_ce}


# --------------------------------------------------------------------------------------------------
# b. throughput


def measure(cfg: ModelConfig, dev: torch.device, mb: int, seq: int, *, compile: bool, ac: bool, fsdp: bool,
            steps: int, warmup: int) -> dict:
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=dev)
    torch.manual_seed(0)
    model = cfg.build(device="meta")
    parallelize(model, ParallelConfig(fsdp="on" if fsdp else "off", activation_checkpointing=ac, compile=compile),
                info, "bf16")
    model.to_empty(device=dev)
    model.init_weights()
    opt = build_optimizer(model, OptimConfig(impl="fused"), dev.type)
    params = list(model.parameters())
    batches = [torch.randint(0, cfg.vocab_size, (mb, seq), device=dev) for _ in range(2)]

    def step(i: int) -> float:
        ids = batches[i % 2]
        with autocast_context(dev, "bf16", fsdp):
            loss, _, _ = model(ids, ids)
        loss.backward()
        clip_grad_norm(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    t0 = time.time()
    for i in range(warmup):
        step(i)
    sync(dev)
    warm_s = time.time() - t0
    times, losses = [], []
    for i in range(steps):
        t0 = time.perf_counter()
        losses.append(step(i))
        sync(dev)
        times.append(time.perf_counter() - t0)
    tok_s = mb * seq / statistics.median(times)
    fpt = cfg.flops_per_token(seq)
    res = {"micro_batch": mb, "seq": seq, "compile": compile, "activation_checkpointing": ac, "fsdp": fsdp,
           "tokens_per_s": round(tok_s, 1), "step_s_median": round(statistics.median(times), 4),
           "warmup_s": round(warm_s, 1), "loss_first": losses[0], "loss_last": losses[-1],
           "flops_per_token": fpt}
    if dev.type == "cuda":
        res["mfu"] = round(tok_s * fpt / PEAK_FLOPS, 4)
        res["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(dev) / 2**30, 1)
    return res


def fit_and_measure(cfg: ModelConfig, dev: torch.device, seq: int, sizes: list[int], *, compile: bool,
                    fsdp: bool, steps: int, warmup: int) -> dict:
    """The largest micro-batch that fits without activation checkpointing, else with it."""
    tried = []
    for ac in (False, True):
        for mb in sizes:
            try:
                res = measure(cfg, dev, mb, seq, compile=compile, ac=ac, fsdp=fsdp, steps=steps, warmup=warmup)
                res["tried"] = tried
                return res
            except torch.OutOfMemoryError:
                tried.append(f"mb{mb}{'+ac' if ac else ''}: OOM")
            free_memory()  # after the except block, so the failed frame (and its tensors) is gone
    raise RuntimeError(f"nothing fits: {tried}")


def part_throughput(dev: torch.device, smoke: bool, compile: bool, steps: int) -> dict:
    name, seq, sizes = ("tiny", 64, [2]) if smoke else ("olmo-1b", 2048, [8, 4, 2])
    cfg = ModelConfig.from_name(name, max_sequence_length=seq, **({"vocab_size": SMOKE_VOCAB} if smoke else {}))
    res = fit_and_measure(cfg, dev, seq, sizes, compile=compile, fsdp=False, steps=steps, warmup=3 if compile else 2)
    res["model"] = name
    res["params"] = cfg.num_params()
    res["flop_params_N"] = cfg.num_flop_params()
    res["ok"] = math.isfinite(res["loss_last"])
    return res


# --------------------------------------------------------------------------------------------------
# c. FSDP2 on one device


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def part_fsdp(dev: torch.device, smoke: bool, budget: Budget, mb_1b: int | None) -> dict:
    import torch.distributed as dist

    kwargs: dict[str, Any] = {"backend": "nccl" if dev.type == "cuda" else "gloo",
                              "init_method": f"tcp://127.0.0.1:{_free_port()}", "rank": 0, "world_size": 1}
    if dev.type == "cuda":
        kwargs["device_id"] = dev
    dist.init_process_group(**kwargs)
    try:
        name, seq, mb = ("tiny", 64, 2) if smoke else ("olmo-60m", 1024, 8)
        cfg = ModelConfig.from_name(name, max_sequence_length=seq, **({"vocab_size": SMOKE_VOCAB} if smoke else {}))
        info = DistInfo(rank=0, world_size=1, local_rank=0, device=dev)
        batches = [torch.randint(0, cfg.vocab_size, (mb, seq), device=dev) for _ in range(5)]
        out: dict[str, Any] = {"model": name, "backend": kwargs["backend"]}
        ok = True
        for precision, tol in (("fp32", 1e-4), ("bf16", 3e-2)):
            losses = {}
            for wrapped in (False, True):
                torch.manual_seed(0)
                model = OLMo(cfg, device=dev)
                if wrapped:
                    parallelize(model, ParallelConfig(fsdp="on"), info, precision)
                opt = build_optimizer(model, OptimConfig(lr=1e-3), dev.type)
                seq_losses = []
                for ids in batches:
                    with autocast_context(dev, precision, wrapped):
                        loss, _, _ = model(ids, ids)
                    loss.backward()
                    clip_grad_norm(list(model.parameters()), 1.0)
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                    seq_losses.append(float(loss.detach()))
                losses["fsdp" if wrapped else "plain"] = seq_losses
                del model, opt
                free_memory()
            rel = max(abs(a - b) / abs(b) for a, b in zip(losses["fsdp"], losses["plain"]))
            out[precision] = {"losses": losses, "max_rel_diff": rel, "tolerance": tol, "ok": rel <= tol}
            ok = ok and rel <= tol
        if not smoke and mb_1b and budget.left() > 90:
            cfg1b = ModelConfig.from_name("olmo-1b")
            try:
                out["olmo_1b_fsdp"] = fit_and_measure(cfg1b, dev, 2048, [mb_1b, max(1, mb_1b // 2)], compile=False,
                                                      fsdp=True, steps=6, warmup=2)
            except Exception as e:
                out["olmo_1b_fsdp"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        out["ok"] = ok
        return out
    finally:
        dist.destroy_process_group()


# --------------------------------------------------------------------------------------------------


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu-smoke", action="store_true", help="run every part on CPU with the tiny preset")
    p.add_argument("--budget-s", type=float, default=330.0, help="stop starting new parts after this")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    p.add_argument("--steps", type=int, default=10, help="timed steps per throughput measurement")
    args = p.parse_args()

    t_start = time.time()
    budget = Budget(args.budget_s)
    if args.cpu_smoke:
        dev = torch.device("cpu")
    elif torch.cuda.is_available():
        dev = torch.device("cuda", 0)
        torch.cuda.set_device(dev)
        torch.backends.cuda.matmul.allow_tf32 = True
    else:
        print("no CUDA device; use --cpu-smoke for a CPU run", file=sys.stderr)
        sys.exit(2)
    env = {"torch": torch.__version__, "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "cuda": torch.version.cuda, "cpu_count": os.cpu_count(), "peak_flops": PEAK_FLOPS,
           "flops_formula": "6N + 12*L*d*T, N = block weights + LM head (tied embedding counted once)"}
    print(f"[env] {json.dumps(env)}", flush=True)
    steps = 2 if args.cpu_smoke else args.steps
    results: dict[str, Any] = {}
    run_part("a_invariants", lambda: part_invariants(dev, args.cpu_smoke), results, budget, 5)
    run_part("b_throughput_eager", lambda: part_throughput(dev, args.cpu_smoke, False, steps), results, budget, 30)
    mb = results["b_throughput_eager"].get("micro_batch")
    run_part("c_fsdp", lambda: part_fsdp(dev, args.cpu_smoke, budget, mb), results, budget, 20)
    if not args.no_compile:
        run_part("b_throughput_compile", lambda: part_throughput(dev, args.cpu_smoke, True, steps), results,
                 budget, 20 if args.cpu_smoke else 120)

    best = max((r for k, r in results.items() if k.startswith("b_") and r.get("ok")),
               key=lambda r: r["tokens_per_s"], default=None)
    summary = {
        "gpu_bench": True, "env": env, "ok": all(r.get("ok") for r in results.values()),
        "parts_ok": {k: bool(r.get("ok")) for k, r in results.items()},
        "model": best and best["model"], "tokens_per_s": best and best["tokens_per_s"],
        "mfu": best and best.get("mfu"),
        "best": best and {k: best[k] for k in ("micro_batch", "compile", "activation_checkpointing")},
        "results": results, "wall_s": round(time.time() - t_start, 1),
    }
    line = json.dumps(summary, default=str)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"]).mkdir(parents=True, exist_ok=True)
        (Path(os.environ["OUT"]) / "gpu_bench.json").write_text(json.dumps(summary, indent=1, default=str))
    print(line, flush=True)


if __name__ == "__main__":
    main()
