"""The `olmo-train` command line: errors are clear and non-zero, a run leaves its resolved config."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml
from train_helpers import REPO

from training.cli import main


def test_unknown_key_is_an_error_naming_the_choices(capsys) -> None:
    rc = main([str(REPO / "configs/train/tiny.yaml"), "--optim.learning_rate=1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown config key 'optim.learning_rate'" in err and "'lr'" in err


def test_config_subcommand_prints_the_resolved_config(capsys) -> None:
    assert main(["config", str(REPO / "configs/train/olmo-1b.yaml"), "--trainer.micro_batch_size=4"]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["trainer"]["micro_batch_size"] == 4 and cfg["model"]["d_model"] == 2048


def test_missing_token_files_fail_clearly(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [sys.executable, "-m", "training.cli", "configs/train/tiny.yaml",
         f"--data.train.0.paths=[{tmp_path}/none-*.npy]", f"--checkpoint.save_folder={tmp_path}/run"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 2
    assert "no token files match" in r.stderr and "none-*.npy" in r.stderr


def test_a_cli_run_writes_config_metrics_plot_and_checkpoint(token_dir, tmp_path) -> None:
    run = tmp_path / "run"
    args = [str(REPO / "configs/train/tiny.yaml"), "--model.vocab_size=257", "--tokenizer.eos_token_id=256",
            f"--data.train.0.paths=[{token_dir}/train/*.npy]", f"--data.eval.0.paths=[{token_dir}/eval/*.npy]",
            "--data.sequence_length=32", "--trainer.max_steps=3", "--trainer.eval_max_batches=1",
            f"--checkpoint.save_folder={run}", "--trainer.device=cpu"]
    assert main(args) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["trainer"]["max_steps"] == 3 and saved["model"]["vocab_size"] == 257
    assert (run / "metrics.jsonl").read_text().count("\n") == 3
    assert (run / "loss.png").is_file() and (run / "step00000003" / "train_state.json").is_file()
