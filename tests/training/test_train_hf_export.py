"""Export to Hugging Face OlmoForCausalLM: logits parity in fp32, tokenizer files, the CLI command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from train_helpers import REPO, olmo_tokenizer_path

from training.checkpoint import latest_checkpoint, load_config_from_checkpoint, load_model_state
from training.hf_export import export_hf
from training.trainer import build_trainer

transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("tied", [True, False])
def test_exported_model_matches_ours_in_fp32(make_config, tmp_path, tied: bool) -> None:
    trainer = build_trainer(make_config(model={"weight_tying": tied}, trainer={"max_steps": 3}))
    trainer.fit()  # a few steps so the weights are not just the init
    out = export_hf(trainer.checkpointer.folder, tmp_path / "hf")
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["OlmoForCausalLM"] and config["tie_word_embeddings"] == tied
    hf = transformers.OlmoForCausalLM.from_pretrained(out, torch_dtype=torch.float32).eval()
    ckpt = latest_checkpoint(trainer.checkpointer.folder)
    cfg = load_config_from_checkpoint(ckpt)
    ours = cfg.model.build()
    ours.load_state_dict(load_model_state(ckpt, cfg))
    ours.eval()
    ids = torch.randint(0, 257, (2, 48))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, ours(ids), rtol=0, atol=1e-4)
        # HF's loss (shifted internally) equals ours
        hf_loss = hf(ids, labels=ids).loss
        torch.testing.assert_close(hf_loss, ours(ids, ids)[1], rtol=0, atol=1e-4)


def test_cli_export_with_the_olmo_tokenizer(make_config, tmp_path) -> None:
    tok = olmo_tokenizer_path()
    trainer = build_trainer(make_config(trainer={"max_steps": 1}))
    trainer.fit()
    out = tmp_path / "hf"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "training.cli", "export", str(trainer.checkpointer.folder), str(out),
                        "--tokenizer", str(tok)], capture_output=True, text=True, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert (out / "tokenizer.json").read_bytes() == tok.read_bytes()
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    assert hf_tok.eos_token == "<|endoftext|>" and hf_tok.eos_token_id == 50279
    assert hf_tok.pad_token_id == 1
