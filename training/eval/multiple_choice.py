"""Downstream multiple-choice scoring by log-likelihood, as OLMo's in-loop evaluation and lm-eval do.

A task is a JSONL file, one question per line. Accepted field names (the first present wins):
context ``context`` | ``query`` | ``ctx`` | ``question``; choices ``choices`` | ``endings`` | ``options``
(a list of strings); gold ``gold`` | ``label`` | ``answer`` (an index, a letter ``A``.. or the gold choice's
text). Each choice is scored as the continuation ``target_delimiter + choice`` of the (k-shot) context.

Metrics, as OLMo's ``ICLMetric``: ``acc`` picks the choice with the highest summed log-likelihood,
``acc_per_char`` (OLMo's ``len_norm``) divides it by the continuation's length in characters,
``acc_per_token`` by its length in tokens. k-shot examples are drawn from the task's other questions with a
generator seeded by ``(seed, question index)``, so the prompt of a question does not depend on batching,
ranks or the other questions' order. Tokenization follows lm-eval: trailing whitespace of the context moves
to the continuation, and the continuation's tokens are those of ``context + continuation`` past the
context's own tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.config import DataFormatError, TaskConfig
from training.eval.documents import TextEncoder, expand, read_jsonl
from training.eval.scoring import ScoreRequest, score_requests

CONTEXT_KEYS = ("context", "query", "ctx", "question")
CHOICE_KEYS = ("choices", "endings", "options")
GOLD_KEYS = ("gold", "label", "answer")


@dataclass(frozen=True)
class Question:
    context: str
    choices: tuple[str, ...]
    gold: int
    where: str  # file:line


def _first(obj: dict, keys: Sequence[str]):
    for k in keys:
        if k in obj:
            return obj[k]
    return None


def _gold_index(gold, choices: Sequence[str], where: str) -> int:
    if isinstance(gold, bool):
        gold = None
    if isinstance(gold, str):
        g = gold.strip()
        if gold in choices:
            gold = list(choices).index(gold)
        elif len(g) == 1 and "A" <= g.upper() <= "Z":
            gold = ord(g.upper()) - ord("A")
        elif g.isdigit():
            gold = int(g)
        else:
            raise DataFormatError(f"{where}: gold {gold!r} is neither an index, a letter nor one of the choices")
    if not isinstance(gold, int):
        raise DataFormatError(f"{where}: no gold answer (one of {list(GOLD_KEYS)})")
    if not 0 <= gold < len(choices):
        raise DataFormatError(f"{where}: gold index {gold} out of range for {len(choices)} choices")
    return gold


def load_questions(path: str) -> list[Question]:
    out: list[Question] = []
    for p in expand([path]):
        for n, obj in read_jsonl(p):
            where = f"{p}:{n}"
            ctx = _first(obj, CONTEXT_KEYS)
            choices = _first(obj, CHOICE_KEYS)
            if not isinstance(ctx, str):
                raise DataFormatError(f"{where}: no context string (one of {list(CONTEXT_KEYS)})")
            if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
                raise DataFormatError(f"{where}: 'choices' must be a list of at least two strings")
            out.append(Question(ctx, tuple(choices), _gold_index(_first(obj, GOLD_KEYS), choices, where), where))
    if not out:
        raise DataFormatError(f"task file {path} holds no questions")
    return out


def shot_indices(n_questions: int, index: int, k: int, seed: int) -> list[int]:
    """The k-shot examples of question ``index``: k others, drawn by a generator seeded by (seed, index)."""
    if k <= 0:
        return []
    others = np.array([i for i in range(n_questions) if i != index])
    if k > len(others):
        raise DataFormatError(f"{k}-shot needs at least {k + 1} questions, the task has {n_questions}")
    rng = np.random.default_rng([seed, index])
    return sorted(int(i) for i in rng.choice(others, size=k, replace=False))


def prompt(questions: Sequence[Question], index: int, cfg: TaskConfig) -> str:
    q = questions[index]
    shots = [questions[i] for i in shot_indices(len(questions), index, cfg.num_shots, cfg.seed)]
    parts = [s.context + cfg.target_delimiter + s.choices[s.gold] for s in shots] + [q.context]
    return cfg.fewshot_delimiter.join(parts)


def split_tokens(encoder: TextEncoder, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's split: context ids, and the continuation's ids within ``context + continuation``."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = encoder.encode(context + continuation)
    ctx = encoder.encode(context)
    return ctx, whole[len(ctx) :]


@dataclass
class TaskResult:
    metrics: dict[str, float]
    predictions: list[dict] = field(default_factory=list)


class MultipleChoiceTask:
    """Prompts and tokenizes a task once; ``run(model, ...)`` scores every choice in batches."""

    def __init__(self, cfg: TaskConfig, encoder: TextEncoder, eos_id: int, max_len: int) -> None:
        self.cfg = cfg
        if cfg.from_documents:
            from training.eval.cloze import next_sentence_questions
            from training.eval.documents import read_documents

            self.name = cfg.name or "next_sentence"
            self.questions = next_sentence_questions(read_documents(cfg.from_documents), cfg.num_questions, cfg.seed)
        else:
            if not cfg.path:
                raise DataFormatError(f"task {cfg.name!r}: give `path` (a JSONL task) or `from_documents`")
            self.name = cfg.name or Path(cfg.path).stem
            self.questions = load_questions(cfg.path)
        scored = range(len(self.questions) if cfg.limit is None else min(cfg.limit, len(self.questions)))
        self.requests: list[ScoreRequest] = []
        self.layout: list[tuple[int, list[int]]] = []  # (question, its request indices)
        self.cont_chars: list[int] = []
        for qi in scored:
            q = self.questions[qi]
            ctx_text = prompt(self.questions, qi, cfg)
            idx = []
            for choice in q.choices:
                cont_text = cfg.target_delimiter + choice
                ctx, cont = split_tokens(encoder, ctx_text, cont_text)
                if not cont:
                    raise DataFormatError(f"{q.where}: choice {choice!r} encodes to no tokens")
                if len(cont) > max_len:
                    raise DataFormatError(f"{q.where}: a choice of {len(cont)} tokens exceeds the context {max_len}")
                seq = np.asarray([eos_id, *ctx, *cont], dtype=np.int64)[-(max_len + 1) :]
                idx.append(len(self.requests))
                self.requests.append(ScoreRequest(seq, len(seq) - len(cont)))
                self.cont_chars.append(len(cont_text))
            self.layout.append((qi, idx))

    def run(self, model, *, batch_size: int, device, pad_id: int, autocast=None) -> TaskResult:
        scores = score_requests(model, self.requests, batch_size=batch_size, device=device, pad_id=pad_id,
                                autocast=autocast)
        hits = {"acc": 0, "acc_per_char": 0, "acc_per_token": 0}
        preds = []
        for qi, idx in self.layout:
            gold = self.questions[qi].gold
            ll = np.array([scores[i].logprob for i in idx])
            per_char = ll / np.array([self.cont_chars[i] for i in idx])
            per_token = ll / np.array([scores[i].n_tokens for i in idx])
            picks = {"acc": int(np.argmax(ll)), "acc_per_char": int(np.argmax(per_char)),
                     "acc_per_token": int(np.argmax(per_token))}
            for k, v in picks.items():
                hits[k] += v == gold
            preds.append({"question": qi, "gold": gold, "loglik": ll.tolist(), **picks})
        n = len(self.layout)
        metrics = {k: v / n for k, v in hits.items()}
        metrics["questions"] = n
        return TaskResult(metrics, preds)
