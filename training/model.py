"""The OLMo-1 decoder as a plain ``nn.Module``.

Pre-norm blocks with parameter-free LayerNorm, no biases, a fused q/k/v projection, SwiGLU whose fused
projection is ``[up, gate]`` (OLMo's order), RoPE (theta 10,000, rotate-half, fp32) and causal SDPA.
Shapes are suffixed: B batch, T time, D d_model, H heads, K head dim, F SwiGLU width, V embedding rows.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint

from training.config import ModelConfig
from training.loss import fused_linear_cross_entropy, plain_linear_cross_entropy


class LayerNorm(nn.Module):
    """LayerNorm without weight or bias, computed in fp32 and cast back (as OLMo/HF ``OlmoLayerNorm``)."""

    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.d, self.eps = d, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), (self.d,), None, None, self.eps).to(x.dtype)


def rope_sin_cos(T: int, head_dim: int, theta: float, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(sin, cos) of shape (T, K) for rotate-half RoPE, in fp32."""
    inv_freq_K2 = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float) / head_dim))
    freqs_TK2 = torch.outer(torch.arange(T, device=device, dtype=torch.float), inv_freq_K2)
    emb_TK = torch.cat((freqs_TK2, freqs_TK2), dim=-1)
    return emb_TK.sin(), emb_TK.cos()


def apply_rope(x_BHTK: torch.Tensor, sin_TK: torch.Tensor, cos_TK: torch.Tensor) -> torch.Tensor:
    """Rotate in fp32 (as OLMo does) and cast back."""
    x = x_BHTK.float()
    x1, x2 = x.chunk(2, dim=-1)
    return (x * cos_TK + torch.cat((-x2, x1), dim=-1) * sin_TK).to(x_BHTK.dtype)


class OLMoBlock(nn.Module):
    """One pre-norm transformer block (OLMo's ``OLMoSequentialBlock``)."""

    def __init__(self, cfg: ModelConfig, layer_id: int, device: torch.device | str | None = None) -> None:
        super().__init__()
        d, f = cfg.d_model, cfg.ff_hidden
        self.layer_id = layer_id
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        self.attn_norm = LayerNorm(d, cfg.layer_norm_eps)
        self.att_proj = nn.Linear(d, 3 * d, bias=False, device=device)
        self.attn_out = nn.Linear(d, d, bias=False, device=device)
        self.ff_norm = LayerNorm(d, cfg.layer_norm_eps)
        self.ff_proj = nn.Linear(d, f, bias=False, device=device)
        self.ff_out = nn.Linear(f // 2, d, bias=False, device=device)
        self.activation_checkpointing = False  # set by training.parallel.parallelize

    def attention(self, x_BTD: torch.Tensor, sin_TK: torch.Tensor, cos_TK: torch.Tensor) -> torch.Tensor:
        B, T, D = x_BTD.shape
        qkv_BT3D = self.att_proj(x_BTD)
        # (B, T, 3, H, K) -> three (B, H, T, K)
        q_BHTK, k_BHTK, v_BHTK = qkv_BT3D.view(B, T, 3, self.n_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q_BHTK, k_BHTK = apply_rope(q_BHTK, sin_TK, cos_TK), apply_rope(k_BHTK, sin_TK, cos_TK)
        y_BHTK = F.scaled_dot_product_attention(q_BHTK, k_BHTK, v_BHTK, is_causal=True)
        return self.attn_out(y_BHTK.transpose(1, 2).reshape(B, T, D))

    def mlp(self, x_BTD: torch.Tensor) -> torch.Tensor:
        up_BTF, gate_BTF = self.ff_proj(x_BTD).chunk(2, dim=-1)  # OLMo: first half "up", second "gate"
        return self.ff_out(F.silu(gate_BTF) * up_BTF)

    def _forward(self, x_BTD: torch.Tensor, sin_TK: torch.Tensor, cos_TK: torch.Tensor) -> torch.Tensor:
        x_BTD = x_BTD + self.attention(self.attn_norm(x_BTD), sin_TK, cos_TK)
        return x_BTD + self.mlp(self.ff_norm(x_BTD))

    def forward(self, x_BTD: torch.Tensor, sin_TK: torch.Tensor, cos_TK: torch.Tensor) -> torch.Tensor:
        if self.activation_checkpointing and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(self._forward, x_BTD, sin_TK, cos_TK, use_reentrant=False)
        return self._forward(x_BTD, sin_TK, cos_TK)


class OLMo(nn.Module):
    """Token ids (B, T) -> logits (B, T, V) or, with ``labels``, the mean next-token loss."""

    def __init__(self, cfg: ModelConfig, device: torch.device | str | None = None) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.padded_embedding_size, cfg.d_model, device=device)
        self.blocks = nn.ModuleList(OLMoBlock(cfg, i, device) for i in range(cfg.n_layers))
        self.ln_f = LayerNorm(cfg.d_model, cfg.layer_norm_eps)
        self.lm_head = (
            None
            if cfg.weight_tying
            else nn.Linear(cfg.d_model, cfg.padded_embedding_size, bias=False, device=device)
        )
        if not any(p.is_meta for p in self.parameters()):
            self.init_weights()

    @property
    def lm_head_weight(self) -> torch.Tensor:
        return self.wte.weight if self.lm_head is None else self.lm_head.weight

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator | None = None) -> None:
        """OLMo's init: truncated normal (±3σ); σ = 1/√d for embeddings and input projections,
        1/√(2·d·(i+1)) for the attention output and 1/√(2·hidden·(i+1)) for the MLP output of layer i."""
        d = self.cfg.d_model
        std = self.cfg.init_std or 1.0 / math.sqrt(d)

        def trunc(w: torch.Tensor, s: float) -> None:
            nn.init.trunc_normal_(w, 0.0, s, -3 * s, 3 * s, generator=generator)

        trunc(self.wte.weight, std)
        for i, blk in enumerate(self.blocks):
            trunc(blk.att_proj.weight, std)
            trunc(blk.ff_proj.weight, std)
            trunc(blk.attn_out.weight, 1.0 / math.sqrt(2 * d * (i + 1)))
            trunc(blk.ff_out.weight, 1.0 / math.sqrt(2 * blk.ff_out.in_features * (i + 1)))
        if self.lm_head is not None:
            trunc(self.lm_head.weight, std)

    def hidden_states(self, input_ids_BT: torch.Tensor) -> torch.Tensor:
        T = input_ids_BT.shape[1]
        sin_TK, cos_TK = rope_sin_cos(T, self.cfg.head_dim, self.cfg.rope_theta, input_ids_BT.device)
        x_BTD = self.wte(input_ids_BT)
        for blk in self.blocks:
            x_BTD = blk(x_BTD, sin_TK, cos_TK)
        return self.ln_f(x_BTD)

    def forward(
        self,
        input_ids_BT: torch.Tensor,
        labels_BT: torch.Tensor | None = None,
        z_loss: float | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, V) without labels. With labels (normally the inputs themselves; shifted here,
        as HF does), ``(loss, ce, z)``: the differentiable mean next-token loss (plus z-loss when
        ``z_loss`` is set) over the B*(T-1) predictions, and its detached parts for logging."""
        h_BTD = self.hidden_states(input_ids_BT)
        if labels_BT is None:
            return F.linear(h_BTD, self.lm_head_weight)
        h_ND = h_BTD[:, :-1].reshape(-1, h_BTD.shape[-1])
        labels_N = labels_BT[:, 1:].reshape(-1)
        loss_fn = fused_linear_cross_entropy if self.cfg.fused_loss else plain_linear_cross_entropy
        return loss_fn(h_ND, self.lm_head_weight, labels_N, z_loss)
