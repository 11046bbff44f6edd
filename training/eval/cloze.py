"""Next-sentence tasks built from documents: a multiple-choice task from any held-out text.

For each sampled document, a sentence is the context and the choices are its real next sentence and
distractors: next sentences of other documents. Sampling is seeded, so the same documents and seed give
the same task. Sentences are split at ``.``, ``!`` or ``?`` followed by whitespace; both the context and
the choices are kept between 20 and 300 characters (a man page's "next sentence" of a table is not one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from training.config import DataFormatError
from training.eval.documents import EvalDocument
from training.eval.multiple_choice import Question

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _pairs(text: str) -> list[tuple[str, str]]:
    sents = [" ".join(s.split()) for s in _SENTENCE_END.split(text)]
    ok = [20 <= len(s) <= 300 for s in sents]
    return [(sents[i], sents[i + 1]) for i in range(len(sents) - 1) if ok[i] and ok[i + 1]]


def next_sentence_questions(docs: Sequence[EvalDocument], n: int, seed: int, n_choices: int = 4) -> list[Question]:
    """Up to ``n`` questions, at most one per document, from documents in a seeded order."""
    per_doc = [(d, _pairs(d.text)) for d in docs]
    per_doc = [(d, p) for d, p in per_doc if p]
    if len(per_doc) < n_choices:
        raise DataFormatError(f"a next-sentence task needs {n_choices} documents with sentence pairs, "
                              f"found {len(per_doc)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(per_doc))
    questions = []
    for k, di in enumerate(order[:n]):
        doc, pairs = per_doc[int(di)]
        ctx, gold = pairs[int(rng.integers(len(pairs)))]
        others = [int(j) for j in rng.permutation(len(per_doc)) if int(j) != int(di)][: n_choices - 1]
        distractors = []
        for j in others:
            cands = [b for _, b in per_doc[j][1] if b != gold]
            if cands:
                distractors.append(cands[int(rng.integers(len(cands)))])
        choices = [gold, *distractors]
        perm = rng.permutation(len(choices))
        questions.append(Question(ctx, tuple(choices[int(i)] for i in perm), int(np.argmax(perm == 0)),
                                  f"{doc.id}#{k}"))
    return questions
