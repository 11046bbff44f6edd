"""Export a checkpoint as a Hugging Face ``OlmoForCausalLM`` directory (no ``transformers`` needed).

Writes ``config.json``, ``generation_config.json`` and ``model.safetensors`` in HF's layout, plus the
tokenizer files when a ``tokenizer.json`` is given. Key mapping from OLMo's layout: the fused ``att_proj``
splits into q, k, v; ``attn_out`` -> ``o_proj``; ``ff_proj`` chunks into (up_proj, gate_proj) in that
order; ``ff_out`` -> ``down_proj``; ``wte`` -> ``embed_tokens``; the LM head is ``wte`` when tied.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from training.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_config_from_checkpoint,
    load_model_state,
)
from training.config import ModelConfig, TokenizerConfig

log = logging.getLogger(__name__)


def hf_config(model: ModelConfig, tok: TokenizerConfig, dtype: torch.dtype) -> dict:
    return {
        "architectures": ["OlmoForCausalLM"],
        "model_type": "olmo",
        "vocab_size": model.padded_embedding_size,
        "hidden_size": model.d_model,
        "intermediate_size": model.ff_hidden // 2,
        "num_hidden_layers": model.n_layers,
        "num_attention_heads": model.n_heads,
        "num_key_value_heads": model.n_heads,
        "hidden_act": "silu",
        "max_position_embeddings": model.max_sequence_length,
        "initializer_range": 0.02,
        "use_cache": True,
        "pad_token_id": tok.pad_token_id,
        "bos_token_id": None,
        "eos_token_id": tok.eos_token_id,
        "tie_word_embeddings": model.weight_tying,
        "rope_theta": model.rope_theta,
        "rope_scaling": None,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "clip_qkv": None,
        "torch_dtype": str(dtype).removeprefix("torch."),
    }


def to_hf_state_dict(sd: dict[str, torch.Tensor], model: ModelConfig) -> dict[str, torch.Tensor]:
    d = model.d_model
    out = {"model.embed_tokens.weight": sd["wte.weight"]}
    for i in range(model.n_layers):
        p, q = f"blocks.{i}.", f"model.layers.{i}."
        qw, kw, vw = sd[p + "att_proj.weight"].split(d, dim=0)
        up, gate = sd[p + "ff_proj.weight"].chunk(2, dim=0)
        out |= {
            q + "self_attn.q_proj.weight": qw,
            q + "self_attn.k_proj.weight": kw,
            q + "self_attn.v_proj.weight": vw,
            q + "self_attn.o_proj.weight": sd[p + "attn_out.weight"],
            q + "mlp.up_proj.weight": up,
            q + "mlp.gate_proj.weight": gate,
            q + "mlp.down_proj.weight": sd[p + "ff_out.weight"],
        }
    if not model.weight_tying:
        out["lm_head.weight"] = sd["lm_head.weight"]
    return out


def _write_tokenizer(tokenizer: Path, tok: TokenizerConfig, out: Path) -> None:
    shutil.copyfile(tokenizer, out / "tokenizer.json")
    vocab = json.loads(tokenizer.read_text()).get("added_tokens", [])
    id_to_tok = {t["id"]: t["content"] for t in vocab}
    eos = id_to_tok.get(tok.eos_token_id, "<|endoftext|>")
    pad = id_to_tok.get(tok.pad_token_id, "<|padding|>")
    special = {"eos_token": eos, "pad_token": pad}
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2))
    tok_cfg = {
        "tokenizer_class": "GPTNeoXTokenizerFast",
        "clean_up_tokenization_spaces": True,
        "model_max_length": 1000000000000000019884624838656,
        "add_bos_token": False,
        "add_eos_token": False,
        **special,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2))


def export_hf(
    checkpoint: str | Path, out_dir: str | Path, tokenizer: str | Path | None = None, dtype: str = "float32"
) -> Path:
    """Write an HF ``OlmoForCausalLM`` directory for ``checkpoint`` (a step directory, or a save folder,
    whose latest checkpoint is used). Returns ``out_dir``."""
    ckpt = Path(checkpoint)
    if not (ckpt / "config.yaml").is_file() or not (ckpt / "train_state.json").is_file():
        latest = latest_checkpoint(ckpt)
        if latest is None:
            raise CheckpointError(f"{ckpt} is neither a checkpoint nor a folder holding checkpoints")
        ckpt = latest
    cfg = load_config_from_checkpoint(ckpt)
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    sd = load_model_state(ckpt, cfg)
    hf_sd = {k: v.to(torch_dtype).contiguous() for k, v in to_hf_state_dict(sd, cfg.model).items()}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(hf_sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(hf_config(cfg.model, cfg.tokenizer, torch_dtype), indent=2))
    gen = {"eos_token_id": cfg.tokenizer.eos_token_id, "pad_token_id": cfg.tokenizer.pad_token_id}
    (out / "generation_config.json").write_text(json.dumps(gen, indent=2))
    tok_path = tokenizer or cfg.tokenizer.path
    if tok_path:
        tok_path = Path(tok_path)
        if not tok_path.is_file():
            raise CheckpointError(f"tokenizer file not found: {tok_path}")
        _write_tokenizer(tok_path, cfg.tokenizer, out)
    log.info("exported %s to %s", ckpt, out)
    return out
