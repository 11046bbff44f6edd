"""The model to evaluate: a checkpoint of ours (step directory or save folder) or an exported HF
``OlmoForCausalLM`` directory, loaded into our :class:`training.model.OLMo` (no ``transformers`` needed)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from training.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_config_from_checkpoint,
    load_model_state,
)
from training.config import ModelConfig, TokenizerConfig


@dataclass
class LoadedModel:
    model: torch.nn.Module
    model_cfg: ModelConfig
    tokenizer: TokenizerConfig
    tokenizer_file: str | None
    origin: str  # the checkpoint or HF directory


def from_hf_state_dict(hf: dict[str, torch.Tensor], model: ModelConfig) -> dict[str, torch.Tensor]:
    """Inverse of :func:`training.hf_export.to_hf_state_dict`."""
    out = {"wte.weight": hf["model.embed_tokens.weight"]}
    for i in range(model.n_layers):
        p, q = f"blocks.{i}.", f"model.layers.{i}."
        out[p + "att_proj.weight"] = torch.cat(
            [hf[q + f"self_attn.{x}_proj.weight"] for x in ("q", "k", "v")], dim=0
        )
        out[p + "attn_out.weight"] = hf[q + "self_attn.o_proj.weight"]
        out[p + "ff_proj.weight"] = torch.cat([hf[q + "mlp.up_proj.weight"], hf[q + "mlp.gate_proj.weight"]], dim=0)
        out[p + "ff_out.weight"] = hf[q + "mlp.down_proj.weight"]
    if not model.weight_tying:
        out["lm_head.weight"] = hf["lm_head.weight"]
    return out


def _hf_model_config(cfg: dict) -> ModelConfig:
    if cfg.get("model_type") != "olmo":
        raise CheckpointError(f"model_type {cfg.get('model_type')!r} is not 'olmo'")
    return ModelConfig(
        d_model=cfg["hidden_size"], n_heads=cfg["num_attention_heads"], n_layers=cfg["num_hidden_layers"],
        mlp_hidden_size=2 * cfg["intermediate_size"], vocab_size=cfg["vocab_size"],
        embedding_size=cfg["vocab_size"], max_sequence_length=cfg["max_position_embeddings"],
        weight_tying=bool(cfg.get("tie_word_embeddings", False)), rope_theta=float(cfg.get("rope_theta", 10000.0)),
    )


def load_for_eval(path: str | Path, device: torch.device) -> LoadedModel:
    """Our checkpoint, or an HF export (a directory with ``config.json`` and ``model.safetensors``)."""
    path = Path(path)
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        hf_cfg = json.loads((path / "config.json").read_text())
        mcfg = _hf_model_config(hf_cfg)
        sd = from_hf_state_dict({k: v.float() for k, v in load_file(str(path / "model.safetensors")).items()}, mcfg)
        tok = TokenizerConfig(eos_token_id=hf_cfg.get("eos_token_id") or 0, pad_token_id=hf_cfg.get("pad_token_id") or 0)
        tok_file = str(path / "tokenizer.json") if (path / "tokenizer.json").is_file() else None
    else:
        ckpt = path if (path / "train_state.json").is_file() else latest_checkpoint(path)
        if ckpt is None:
            raise CheckpointError(f"{path} is neither a checkpoint, a folder holding checkpoints, nor an HF export")
        cfg = load_config_from_checkpoint(ckpt)
        mcfg, tok, sd = cfg.model, cfg.tokenizer, load_model_state(ckpt, cfg)
        tok_file, path = cfg.tokenizer.path, ckpt
    model = mcfg.build(device="meta")
    model.to_empty(device=device)
    model.load_state_dict({k: v.to(device) for k, v in sd.items()})
    model.eval()
    return LoadedModel(model, mcfg, tok, tok_file, str(path))
