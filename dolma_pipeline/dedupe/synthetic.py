"""A labelled near-duplicate corpus with controlled edit rates (for tests and bench/dedupe_eval.py).

Each cluster has a base document of random words (Zipf-like frequencies over a synthetic vocabulary)
and variants made by word-level edits (substitute, delete, insert) at a given rate; an edit rate e
keeps about (1 - e)^5 of the word 5-grams, so rates around 1-5% put pairs on both sides of
Jaccard 0.8. Documents are shuffled across files so copies are not neighbours.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence

DEFAULT_EDIT_RATES = (0.0, 0.005, 0.01, 0.02, 0.03, 0.04, 0.06, 0.1, 0.3)


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(2, 9))))
    return sorted(words)


def _edit(rng: random.Random, words: list[str], rate: float, vocab: list[str], weights: list[float]) -> list[str]:
    out: list[str] = []
    for word in words:
        if rng.random() >= rate:
            out.append(word)
            continue
        op = rng.randrange(3)
        if op == 0:  # substitute
            out.append(rng.choices(vocab, weights)[0])
        elif op == 1:  # insert before
            out.extend([rng.choices(vocab, weights)[0], word])
        # op == 2: delete
    return out


def _render(words: list[str]) -> str:
    """Words into sentences and paragraphs with punctuation and case (normalisation must fold them).

    Layout decisions hash the word and its predecessor, not the position, so the unedited parts of a
    variant render exactly like the base (real paragraph-level duplicates)."""
    parts, sentence, previous = [], 0, ""
    for i, word in enumerate(words):
        roll = zlib.crc32(f"{previous} {word}".encode()) % 1000
        previous = word
        if sentence == 0:
            word = word.capitalize()
        sentence += 1
        end = sentence > 8 and roll < 150
        parts.append(word + ("." if end else ("," if roll >= 950 else "")))
        if end:
            sentence = 0
            parts.append("\n\n" if roll < 30 else " ")
        elif i < len(words) - 1:
            parts.append(" ")
    return "".join(parts).strip()


def generate(num_clusters: int = 200, variants: int = 4, edit_rates: Sequence[float] = DEFAULT_EDIT_RATES,
             min_words: int = 120, max_words: int = 400, vocab_size: int = 8000, seed: int = 0) -> list[dict]:
    """Documents (Dolma fields plus metadata.cluster, metadata.edit_rate) in a seeded random order."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng, vocab_size)
    weights = [1.0 / (rank + 10) for rank in range(len(vocab))]
    docs = []
    for cluster in range(num_clusters):
        base = rng.choices(vocab, weights, k=rng.randint(min_words, max_words))
        docs.append({"id": f"c{cluster}-base", "text": _render(base), "source": "synthetic",
                     "metadata": {"cluster": cluster, "edit_rate": 0.0}})
        for v in range(variants):
            rate = rng.choice(list(edit_rates))
            words = _edit(rng, base, rate, vocab, weights)
            docs.append({"id": f"c{cluster}-v{v}", "text": _render(words), "source": "synthetic",
                         "metadata": {"cluster": cluster, "edit_rate": rate}})
    rng.shuffle(docs)
    return docs


def write_corpus(root: str, docs: list[dict], files: int = 4) -> list[str]:
    """Write `docs` as `root/documents/part-NNNN.jsonl.gz` (round-robin over files); returns the paths."""
    from dolma_pipeline import io

    per_file: list[list[dict]] = [[] for _ in range(files)]
    for i, doc in enumerate(docs):
        per_file[i % files].append(doc)
    paths = []
    for i, rows in enumerate(per_file):
        path = io.join(root, "documents", f"part-{i:04d}.jsonl.gz")
        io.write_jsonl(path, rows)
        paths.append(path)
    return paths
