"""``olmo-train eval``: the evaluation suite on a checkpoint or an exported HF model, offline.

    olmo-train eval MODEL [--config eval.yaml] [--documents GLOB ...] [--task NAME=PATH[:K] ...]
                    [--tokenizer tokenizer.json] [--stride N] [--batch-size N] [--device cpu|cuda]
                    [--precision fp32|bf16] [--out results.json]

``--config`` is a YAML file holding an ``evaluation:`` block as in a training config (or the block's keys
at the top level); flags add to it. Results are printed and written as JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from training.config import ConfigError, EvaluationConfig, TaskConfig, from_dict


def _task(spec: str) -> TaskConfig:
    name, sep, rest = spec.partition("=")
    if not sep:
        name, rest = "", spec
    path, _, shots = rest.rpartition(":") if ":" in rest and rest.rsplit(":", 1)[1].isdigit() else (rest, "", "0")
    return TaskConfig(name=name, path=path, num_shots=int(shots))


def _load_eval_config(path: str | None) -> EvaluationConfig:
    if path is None:
        return EvaluationConfig()
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"evaluation config not found: {path}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping")
    return from_dict(EvaluationConfig, data.get("evaluation", data), "evaluation")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="olmo-train eval", description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="checkpoint step directory, save folder, or exported HF directory")
    p.add_argument("--config", help="YAML with an `evaluation:` block")
    p.add_argument("--documents", nargs="*", default=[], help="Dolma JSONL globs for per-source perplexity")
    p.add_argument("--task", action="append", default=[], help="multiple-choice task NAME=PATH[:K-SHOT]")
    p.add_argument("--tokenizer", help="tokenizers JSON (default: the model's)")
    p.add_argument("--stride", type=int, help="sliding-window stride (default: half the context)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--out", help="write the results JSON here")
    args = p.parse_args(argv)

    from training.eval.model_io import load_for_eval
    from training.eval.suite import EvalSuite
    from training.parallel import autocast_context, pick_device

    cfg = _load_eval_config(args.config)
    cfg.documents = list(cfg.documents) + list(args.documents)
    cfg.tasks = list(cfg.tasks) + [_task(t) for t in args.task]
    if args.stride:
        cfg.stride = args.stride
    device = pick_device(args.device)
    loaded = load_for_eval(args.model, device)
    suite = EvalSuite(cfg, loaded.tokenizer, args.tokenizer or loaded.tokenizer_file,
                      loaded.model_cfg.max_sequence_length, cfg.batch_size or args.batch_size)
    results = suite.run(loaded.model, device, autocast_context(device, args.precision, False))
    results["model"] = loaded.origin
    text = json.dumps(results, indent=2, sort_keys=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(args.out)
    print(text)
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main(sys.argv[1:]))
