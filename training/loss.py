"""LM head + cross-entropy (+ optional z-loss) fused and chunked over rows.

The plain path writes the (N, V) logits, their log-softmax and the gradient of both: several passes over
a tensor that, for V = 50,304, is far larger than any cache and dominates a small model's step. Here each
chunk of rows computes its logits, loss and the logits' gradient in place, and immediately folds that
gradient into ``grad_h`` and ``grad_W``; the backward pass only scales them. Loss is the mean over rows;
z-loss is ``coef * mean(logsumexp(logits)^2)`` (OLMo's definition).
"""

from __future__ import annotations

import torch


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    dev = t.device.type
    if torch.is_autocast_enabled(dev):
        return torch.get_autocast_dtype(dev)
    return t.dtype


def default_chunk_rows(vocab: int) -> int:
    # ~16 MiB of fp32 logits per chunk: small enough to stay near cache, big enough for efficient matmuls.
    return max(16, (1 << 22) // max(vocab, 1))


class _FusedLinearCE(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        h_ND: torch.Tensor,
        w_VD: torch.Tensor,
        labels_N: torch.Tensor,
        z_coef: float,
        chunk: int,
        cdt: torch.dtype,
        need_grad: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        N = h_ND.shape[0]
        with torch.autocast(h_ND.device.type, enabled=False):
            h_c, w_c = h_ND.to(cdt), w_VD.to(cdt)
            ce_sum = torch.zeros((), dtype=torch.float32, device=h_ND.device)
            z_sum = torch.zeros((), dtype=torch.float32, device=h_ND.device)
            grad_h = torch.empty_like(h_ND) if need_grad else None
            grad_w = torch.zeros(w_VD.shape, dtype=torch.float32, device=w_VD.device) if need_grad else None
            for s in range(0, N, chunk):
                e = min(N, s + chunk)
                hc_nD = h_c[s:e]
                logits_nV = (hc_nD @ w_c.t()).float()
                lse_n = torch.logsumexp(logits_nV, dim=-1)
                tgt_n = labels_N[s:e]
                ce_sum += (lse_n - logits_nV.gather(1, tgt_n[:, None]).squeeze(1)).sum()
                if z_coef:
                    z_sum += lse_n.square().sum()
                if not need_grad:
                    continue
                # d(ce + z)/d logits = softmax * (1 + 2 z lse) - onehot, all over N; computed in place.
                p_nV = logits_nV.sub_(lse_n[:, None]).exp_()
                if z_coef:
                    p_nV.mul_((1.0 + 2.0 * z_coef * lse_n)[:, None])
                p_nV.scatter_add_(1, tgt_n[:, None], torch.full_like(lse_n, -1.0)[:, None])
                p_nV.mul_(1.0 / N)
                g_nV = p_nV.to(cdt)
                grad_h[s:e] = (g_nV @ w_c).to(grad_h.dtype)
                if cdt == torch.float32:
                    grad_w.addmm_(g_nV.t(), hc_nD)
                else:
                    grad_w.add_((g_nV.t() @ hc_nD).float())
        ce = ce_sum / N
        z = z_sum * (z_coef / N)
        if need_grad:
            ctx.save_for_backward(grad_h, grad_w)
        ctx.w_dtype = w_VD.dtype
        ctx.mark_non_differentiable(ce, z)
        return ce + z, ce, z

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        g_total: torch.Tensor,
        _g_ce: torch.Tensor,
        _g_z: torch.Tensor,
    ) -> tuple[torch.Tensor | None, ...]:
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * g_total.to(grad_h.dtype), (grad_w * g_total).to(ctx.w_dtype), None, None, None, None, None


def fused_linear_cross_entropy(
    h_ND: torch.Tensor,
    w_VD: torch.Tensor,
    labels_N: torch.Tensor,
    z_coef: float | None = None,
    chunk_rows: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(loss, ce, z)`` for logits ``h_ND @ w_VD.T``: ``loss = ce + z`` is the differentiable total;
    ``ce`` and ``z`` (None when z-loss is off) are detached, for logging."""
    chunk = chunk_rows or default_chunk_rows(w_VD.shape[0])
    need_grad = torch.is_grad_enabled() and (h_ND.requires_grad or w_VD.requires_grad)
    total, ce, z = _FusedLinearCE.apply(
        h_ND, w_VD, labels_N, float(z_coef or 0.0), chunk, _compute_dtype(h_ND), need_grad
    )
    return total, ce, (z if z_coef else None)


def plain_linear_cross_entropy(
    h_ND: torch.Tensor, w_VD: torch.Tensor, labels_N: torch.Tensor, z_coef: float | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The unfused reference of :func:`fused_linear_cross_entropy` (same outputs)."""
    logits_NV = torch.nn.functional.linear(h_ND, w_VD).float()
    ce = torch.nn.functional.cross_entropy(logits_NV, labels_N)
    if not z_coef:
        return ce, ce.detach(), None
    z = z_coef * torch.logsumexp(logits_NV, dim=-1).square().mean()
    return ce + z, ce.detach(), z.detach()
