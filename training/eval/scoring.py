"""The one scoring engine of evaluation: summed log-probabilities of chosen target tokens.

A :class:`ScoreRequest` is a token sequence ``s`` (at most ``max_len + 1`` tokens) and a position
``score_from``: the model reads ``s[:-1]`` and the request's result is the sum of ``log p(s[j] | s[:j])`` for
``j >= score_from``, with the count of those tokens and whether each was the model's greedy choice.
Perplexity windows and multiple-choice continuations are both requests, so both are scored by the same
code, batched and spread over ranks the same way.

Batches are planned globally (requests sorted by length, cut into batches of ``batch_size``) and dealt to
ranks round robin; every rank runs the same number of forward passes (a rank short of work repeats its
last batch and discards it), so FSDP's collectives line up. Right padding does not change the scores of
earlier positions under causal attention. Logits are computed only at scored positions, in row chunks, so
memory is bounded by ``batch x length x d_model`` plus one chunk of ``rows x vocab``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

LOGIT_ROWS = 2048  # scored positions per LM-head chunk


@dataclass(frozen=True)
class ScoreRequest:
    tokens: np.ndarray  # (m,) int ids, m >= 2
    score_from: int  # first scored position in tokens (>= 1)


@dataclass
class Score:
    logprob: float = 0.0  # sum of log p over scored tokens (nats)
    n_tokens: int = 0
    greedy: bool = True  # every scored token was the argmax


def plan_batches(requests: Sequence[ScoreRequest], batch_size: int) -> list[list[int]]:
    """Request indices in batches of similar length (longest first), deterministic."""
    order = sorted(range(len(requests)), key=lambda i: (-len(requests[i].tokens), i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@torch.no_grad()
def score_requests(
    model: torch.nn.Module,
    requests: Sequence[ScoreRequest],
    *,
    batch_size: int,
    device: torch.device,
    pad_id: int,
    autocast: contextlib.AbstractContextManager | None = None,
) -> list[Score]:
    """Scores of ``requests`` (same order). Every rank must call this with the same requests."""
    for r in requests:
        if len(r.tokens) < 2 or not 1 <= r.score_from < len(r.tokens):
            raise ValueError(f"bad score request: {len(r.tokens)} tokens, score_from {r.score_from}")
    rank, world = _rank_world()
    batches = plan_batches(requests, batch_size)
    rounds = -(-len(batches) // world) if batches else 0
    logprob = np.zeros(len(requests), dtype=np.float64)
    counts = np.zeros(len(requests), dtype=np.int64)
    missed = np.zeros(len(requests), dtype=np.int64)
    was_training = model.training
    model.eval()
    try:
        for k in range(rounds):
            bi = k * world + rank
            mine = bi < len(batches)
            batch = batches[bi] if mine else batches[-1]
            lp, n, miss = _score_batch(model, [requests[i] for i in batch], device, pad_id, autocast)
            if mine:
                logprob[batch], counts[batch], missed[batch] = lp, n, miss
    finally:
        model.train(was_training)
    if world > 1:
        t = torch.from_numpy(np.stack([logprob, counts.astype(np.float64), missed.astype(np.float64)]))
        t = t.to(device)
        dist.all_reduce(t)
        logprob, counts, missed = t[0].cpu().numpy(), t[1].cpu().numpy().astype(np.int64), t[2].cpu().numpy()
    return [Score(float(logprob[i]), int(counts[i]), bool(missed[i] == 0)) for i in range(len(requests))]


def _score_batch(
    model: torch.nn.Module,
    batch: list[ScoreRequest],
    device: torch.device,
    pad_id: int,
    autocast: contextlib.AbstractContextManager | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    T = max(len(r.tokens) for r in batch) - 1
    ids = np.full((len(batch), T + 1), pad_id, dtype=np.int64)
    mask = np.zeros((len(batch), T), dtype=bool)  # mask[b, t]: target tokens[t + 1] is scored
    for b, r in enumerate(batch):
        ids[b, : len(r.tokens)] = r.tokens
        mask[b, r.score_from - 1 : len(r.tokens) - 1] = True
    ids_BT = torch.from_numpy(ids).to(device)
    # Under FSDP2 the root's own parameters (embedding, LM head) are gathered explicitly, since we call
    # hidden_states() and the LM head ourselves rather than forward(); the blocks gather through their hooks.
    fsdp_root = callable(getattr(model, "unshard", None))
    if fsdp_root:
        model.unshard()
    try:
        with autocast or contextlib.nullcontext():
            h_BTD = model.hidden_states(ids_BT[:, :-1])
        mask_BT = torch.from_numpy(mask).to(device)
        h_ND = h_BTD[mask_BT]
        targets_N = ids_BT[:, 1:][mask_BT]
        weight = model.lm_head_weight
        return _logprobs(h_ND.to(weight.dtype), weight, targets_N, mask_BT, len(batch), device)
    finally:
        if fsdp_root:
            model.reshard()


def _logprobs(h_ND, weight, targets_N, mask_BT, B: int, device) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lp_N = torch.empty(targets_N.shape[0], dtype=torch.float64, device=device)
    hit_N = torch.empty(targets_N.shape[0], dtype=torch.bool, device=device)
    for s in range(0, h_ND.shape[0], LOGIT_ROWS):
        logits = F.linear(h_ND[s : s + LOGIT_ROWS], weight).float()  # all embedding rows, as training and HF
        logp = torch.log_softmax(logits, dim=-1)
        tgt = targets_N[s : s + LOGIT_ROWS]
        lp_N[s : s + LOGIT_ROWS] = logp.gather(1, tgt[:, None])[:, 0].double()
        hit_N[s : s + LOGIT_ROWS] = logits.argmax(-1) == tgt
    row_N = torch.nonzero(mask_BT)[:, 0]
    lp_B = torch.zeros(B, dtype=torch.float64, device=device).index_add_(0, row_N, lp_N)
    n_B = torch.bincount(row_N, minlength=B)
    miss_B = torch.bincount(row_N, weights=(~hit_N).double(), minlength=B)
    return lp_B.cpu().numpy(), n_B.cpu().numpy(), miss_B.cpu().numpy().astype(np.int64)
