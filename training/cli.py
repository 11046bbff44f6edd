"""``olmo-train``: train from a YAML config, or export a checkpoint to Hugging Face format.

    olmo-train CONFIG [--a.b=c ...]             train (resumes from the latest checkpoint)
    olmo-train train CONFIG [--a.b=c ...]       the same
    olmo-train config CONFIG [--a.b=c ...]      print the resolved config and exit
    olmo-train export CKPT_DIR OUT_DIR [--tokenizer PATH] [--dtype float32|bfloat16|float16]
    olmo-train eval MODEL [--documents GLOB ...] [--task NAME=PATH[:K] ...] [--out results.json]

Multi-process: ``torchrun --nproc_per_node N -m training.cli CONFIG ...`` (or the ``olmo-train`` script
under ``torchrun --no-python``); multi-node via torchrun's ``--nnodes``/``--rdzv-endpoint``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from training.config import TrainConfig, TrainingError, config_to_yaml, load_config


def _setup_logging() -> None:
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s [rank{rank}] %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _export(argv: list[str]) -> int:
    from training.hf_export import export_hf

    p = argparse.ArgumentParser(prog="olmo-train export", description="Export a checkpoint to HF OlmoForCausalLM")
    p.add_argument("checkpoint", help="a step directory, or a save folder (its latest checkpoint)")
    p.add_argument("out_dir")
    p.add_argument("--tokenizer", default=None, help="tokenizer.json to copy (default: tokenizer.path)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = p.parse_args(argv)
    out = export_hf(args.checkpoint, args.out_dir, args.tokenizer, args.dtype)
    print(out)
    return 0


def _train(argv: list[str], dry: bool = False) -> int:
    if not argv or argv[0] in ("-h", "--help") or "--help" in argv or "-h" in argv:
        # dolma_pipeline.options only reads dataclass fields and their comments (no pipeline code)
        from dolma_pipeline.options import help_text

        print(help_text(__doc__.strip(), TrainConfig))
        return 0 if argv else 2
    cfg = load_config(argv[0], argv[1:])
    if dry:
        print(config_to_yaml(cfg))
        return 0
    from training.parallel import destroy_distributed
    from training.trainer import build_trainer

    try:
        trainer = build_trainer(cfg)
        trainer.fit()
    finally:
        destroy_distributed()
    return 0


def _version() -> str:
    """Package version and, from a checkout, the git commit (as `dolma --version` and lineage give it)."""
    import subprocess
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path

    try:
        package = version("dolma-pipeline")
    except PackageNotFoundError:
        package = "unknown"
    here = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = dirty = ""
    return f"olmo-train (dolma-pipeline {package})" + (f" (commit {commit}{'+dirty' if dirty else ''})" if commit else "")


def main(argv: list[str] | None = None) -> int:
    code = _run(argv)
    parallel = sys.modules.get("training.parallel")  # imported only by a command that trained
    return parallel.leave_rank(code) if parallel is not None else code


def _run(argv: list[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _setup_logging()
    if argv[:1] in (["--version"], ["-V"]):
        print(_version())
        return 0
    try:
        if argv and argv[0] == "export":
            return _export(argv[1:])
        if argv and argv[0] == "eval":
            from training.eval.command import main as eval_main

            return eval_main(argv[1:])
        if argv and argv[0] == "config":
            return _train(argv[1:], dry=True)
        if argv and argv[0] == "train":
            argv = argv[1:]
        return _train(argv)
    except TrainingError as e:
        print(f"olmo-train: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path the user gave
        where = f"{e.filename}: " if e.filename else ""
        print(f"olmo-train: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
