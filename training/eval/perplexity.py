"""Perplexity per source, Paloma-style: each document scored whole, grouped by its source.

A document of n tokens is scored as the sequence ``[EOS] + tokens``: the EOS stands for the end of the
previous document, as in the concatenated training stream (OLMo has no BOS), so the first token is
predicted too. The closing EOS is not scored by default (bits per byte normalise by the text's bytes).
A document longer than the context is scored with a sliding window: windows of ``L + 1`` tokens whose
ends advance by ``stride``; each token is scored once, in the first window that holds it, with at least
``L - stride`` tokens of context (except near the start of the document).

Per source: ``loss`` (mean token cross-entropy, nats), ``perplexity = exp(loss)`` and ``bits_per_byte =
sum NLL / (ln 2 x UTF-8 bytes of the texts)``, Paloma's normaliser. ``macro`` averages each metric over
sources; ``micro`` pools all tokens and bytes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from training.eval.documents import EvalDocument, TextEncoder
from training.eval.scoring import ScoreRequest, score_requests


@dataclass(frozen=True)
class Window:
    start: int  # slice of the [EOS] + tokens sequence
    end: int
    score_from: int  # absolute position of the first scored token


def windows(n_tokens: int, max_len: int, stride: int) -> list[Window]:
    """Windows over ``[EOS] + tokens`` (n + 1 positions) scoring positions 1..n exactly once."""
    if not 1 <= stride <= max_len:
        raise ValueError(f"stride {stride} must be in 1..{max_len} (the context length)")
    total = n_tokens + 1
    end = min(max_len + 1, total)
    out = [Window(0, end, 1)]
    while end < total:
        new_end = min(end + stride, total)
        out.append(Window(max(0, new_end - (max_len + 1)), new_end, end))
        end = new_end
    return out


def document_requests(
    docs_tokens: Sequence[Sequence[int]], eos_id: int, max_len: int, stride: int, score_eos: bool = False
) -> tuple[list[ScoreRequest], list[int]]:
    """Score requests for every window of every document, and the document index of each request."""
    requests: list[ScoreRequest] = []
    owner: list[int] = []
    for d, toks in enumerate(docs_tokens):
        seq = np.asarray([eos_id, *toks, *([eos_id] if score_eos else [])], dtype=np.int64)
        if len(seq) < 2:
            continue  # an empty document has nothing to score
        for w in windows(len(seq) - 1, max_len, stride):
            requests.append(ScoreRequest(seq[w.start : w.end], w.score_from - w.start))
            owner.append(d)
    return requests, owner


@dataclass
class SourceTotals:
    nll: float = 0.0
    tokens: int = 0
    bytes: int = 0
    documents: int = 0

    def metrics(self) -> dict[str, float]:
        loss = self.nll / self.tokens if self.tokens else float("nan")
        return {
            "loss": loss,
            "perplexity": math.exp(min(loss, 50.0)) if self.tokens else float("nan"),
            "bits_per_byte": self.nll / (math.log(2) * self.bytes) if self.bytes else float("nan"),
            "tokens": self.tokens,
            "bytes": self.bytes,
            "documents": self.documents,
        }


def summarise(totals: dict[str, SourceTotals]) -> dict[str, dict[str, float]]:
    """Metrics per source (sorted), plus ``macro`` (mean over sources) and ``micro`` (pooled)."""
    per = {s: totals[s].metrics() for s in sorted(totals)}
    pooled = SourceTotals()
    for t in totals.values():
        pooled.nll += t.nll
        pooled.tokens += t.tokens
        pooled.bytes += t.bytes
        pooled.documents += t.documents
    out: dict[str, dict[str, float]] = {f"source/{s}": m for s, m in per.items()}
    if per:
        out["macro"] = {k: float(np.mean([m[k] for m in per.values()])) for k in ("loss", "perplexity", "bits_per_byte")}
    out["micro"] = pooled.metrics()
    return out


class PerplexityEvaluator:
    """Tokenizes the documents once; ``run(model, ...)`` scores them and returns :func:`summarise`'s dict."""

    def __init__(
        self, docs: Sequence[EvalDocument], encoder: TextEncoder, eos_id: int, max_len: int, stride: int | None = None
    ) -> None:
        self.docs = list(docs)
        self.stride = stride or max(1, max_len // 2)
        tokens = encoder.encode_batch([d.text for d in self.docs])
        self.requests, self.owner = document_requests(tokens, eos_id, max_len, self.stride)
        self.n_tokens = [len(t) for t in tokens]

    def run(self, model, *, batch_size: int, device, pad_id: int, autocast=None) -> dict[str, dict[str, float]]:
        scores = score_requests(model, self.requests, batch_size=batch_size, device=device, pad_id=pad_id,
                                autocast=autocast)
        nll = defaultdict(float)
        for s, d in zip(scores, self.owner, strict=True):
            nll[d] -= s.logprob
        totals: dict[str, SourceTotals] = defaultdict(SourceTotals)
        for i, doc in enumerate(self.docs):
            t = totals[doc.source]
            t.nll += nll.get(i, 0.0)
            t.tokens += self.n_tokens[i]
            t.bytes += len(doc.text.encode("utf-8"))
            t.documents += 1
        return summarise(totals)
