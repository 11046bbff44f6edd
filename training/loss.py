"""LM head + cross-entropy (+ optional z-loss) fused and chunked over rows.

The plain path writes the (N, V) logits, their log-softmax, a one-hot gradient and the gradient of the
log-softmax: several passes, two of them through ``exp``, over a tensor that for V = 50,304 is far larger
than any cache and dominates a small model's step. Here each chunk of rows computes its logits with one
GEMM, turns them into the logits' gradient in place (one ``exp`` pass), and
folds that into ``grad_h`` and ``grad_W`` with two GEMMs; the backward pass only scales them. Loss is the mean over rows;
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
    # Up to 2^27 fp32 logits (512 MiB) per chunk: big GEMMs, few passes over grad_W.
    return max(16, (1 << 27) // max(vocab, 1))


def _softmax_grad_inplace(
    x_nV: torch.Tensor, tgt_n: torch.Tensor, z_coef: float, scale: float, need_grad: bool, sub_rows: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn fp32 logits into d(ce + z)/d logits in place, ``sub_rows`` rows at a time. Returns the sums of ``lse - logit[target]`` and of
    ``lse**2`` over the rows."""
    ce_sum = x_nV.new_zeros(())
    z_sum = x_nV.new_zeros(())
    for s in range(0, x_nV.shape[0], sub_rows):
        x = x_nV[s : s + sub_rows]
        t = tgt_n[s : s + sub_rows, None]
        tgt_logit = x.gather(1, t).squeeze(1)
        m = x.amax(dim=-1, keepdim=True)
        x.sub_(m).exp_()  # one exp pass: softmax numerators
        sumexp = x.sum(dim=-1, keepdim=True)
        lse = (m + sumexp.log()).squeeze(1)
        ce_sum += (lse - tgt_logit).sum()
        if z_coef:
            z_sum += lse.square().sum()
        if need_grad:
            # softmax * (1 + 2 z lse) - onehot, all times `scale` (1/N)
            factor = (1.0 + 2.0 * z_coef * lse[:, None]) if z_coef else 1.0
            x.mul_(factor * scale / sumexp)
            x.scatter_add_(1, t, torch.full(t.shape, -scale, dtype=x.dtype, device=x.device))
    return ce_sum, z_sum


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
        # Whole-chunk elementwise passes measured fastest on CPU too (slices parallelise badly).
        sub_rows = chunk
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
                c, z = _softmax_grad_inplace(logits_nV, labels_N[s:e], z_coef, 1.0 / N, need_grad, sub_rows)
                ce_sum += c
                z_sum += z
                if not need_grad:
                    continue
                g_nV = logits_nV.to(cdt)
                grad_h[s:e] = (g_nV @ w_c).to(grad_h.dtype)
                if cdt == torch.float32:
                    grad_w.addmm_(g_nV.t(), hc_nD)
                else:
                    grad_w.add_((g_nV.t() @ hc_nD).float())
                del logits_nV, g_nV
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
        # In place: these buffers belong to this call alone (backward runs once; no retain_graph use).
        grad_h.mul_(g_total.to(grad_h.dtype))
        grad_w.mul_(g_total)
        return grad_h, grad_w.to(ctx.w_dtype), None, None, None, None, None


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
