"""Per-document computations shared by the taggers of one run (fused execution).

Every helper caches its result on the `Document` instance (in `doc.__dict__`, like `Document.lines` and
`Document.words`), so when `gopher_v1`, `c4_v2` and the PII taggers run over the same batch the text is
lower-cased, split into lines and words, and its words are counted only once per document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from dolma_pipeline.documents import Document

T = TypeVar("T")


def cached(doc: Document, key: str, compute: Callable[[Document], T]) -> T:
    """`compute(doc)` once per document; the value lives as long as the document."""
    store: dict[str, Any] = doc.__dict__
    try:
        return store[key]
    except KeyError:
        value = store[key] = compute(doc)
        return value


def lower_text(doc: Document) -> str:
    return cached(doc, "_lower_text", lambda d: d.text.lower())


def lower_word_set(doc: Document) -> frozenset[str]:
    """The distinct whitespace-separated words of the lower-cased text.

    `str.lower` never creates or removes whitespace, so these are the words of `text.lower().split()`.
    """
    return cached(doc, "_lower_word_set", lambda d: frozenset(lower_text(d).split()))


def line_counts(doc: Document) -> Counter[str]:
    """How often each line (split on "\\n") occurs; `Counter` counts a list in C."""
    return cached(doc, "_line_counts", lambda d: Counter(d.lines))


class WordArrays:
    """The document's words as numbers: lengths, dense ids and how often each id occurs."""

    __slots__ = ("counts", "ids", "lengths")

    def __init__(self, words: list[str]):
        n = len(words)
        self.lengths = np.fromiter(map(len, words), dtype=np.int64, count=n)
        # Python's string hash is cached on the string and 64 bits wide: mapping hashes to dense ids is
        # exact unless two distinct words of one document collide (probability ~ n² / 2⁶⁴).
        hashes = np.fromiter(map(hash, words), dtype=np.int64, count=n)
        _, self.ids, self.counts = np.unique(hashes, return_inverse=True, return_counts=True)


def word_arrays(doc: Document) -> WordArrays:
    return cached(doc, "_word_arrays", lambda d: WordArrays(d.words))
