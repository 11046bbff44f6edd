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


def cached_value(doc: Document, key: str) -> Any:
    """What `cached(doc, key, ...)` stored for this document, or None when nothing computed it yet."""
    return doc.__dict__.get(key)


def lower_text(doc: Document) -> str:
    return cached(doc, "_lower_text", lambda d: d.text.lower())


def codepoints_of(text: str) -> np.ndarray:
    """The text as one uint32 per code point (lone surrogates kept as their own values)."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def codepoints(doc: Document) -> np.ndarray:
    return cached(doc, "_codepoints", lambda d: codepoints_of(d.text))


def lower_codepoints(doc: Document) -> np.ndarray:
    return cached(doc, "_lower_codepoints", lambda d: codepoints_of(lower_text(d)))


def lower_word_set(doc: Document) -> frozenset[str]:
    """The distinct whitespace-separated words of the lower-cased text.

    `str.lower` never creates or removes whitespace, so these are the words of `text.lower().split()`.
    """
    return cached(doc, "_lower_word_set", lambda d: frozenset(lower_text(d).split()))


def line_counts(doc: Document) -> Counter[str]:
    """How often each line (split on "\\n") occurs; `Counter` counts a list in C."""
    return cached(doc, "_line_counts", lambda d: Counter(d.lines))


_CHAR_TABLES: dict[str, np.ndarray] = {}


def char_table(kind: str) -> np.ndarray:
    """A boolean lookup table over all code points for `str.isspace`, `str.isalpha`, `str.isalnum` or
    `str.isdecimal` (the characters regex `\\d` matches), built on first use."""
    table = _CHAR_TABLES.get(kind)
    if table is None:
        test = {"space": str.isspace, "alpha": str.isalpha, "alnum": str.isalnum, "decimal": str.isdecimal}[kind]
        table = _CHAR_TABLES[kind] = np.fromiter(map(test, map(chr, range(0x110000))), dtype=bool, count=0x110000)
    return table


class WordSpans:
    """Where the whitespace-separated words are (the same words as `str.split()`), and which hold a letter."""

    __slots__ = ("count", "lengths", "with_alpha")

    def __init__(self, codes: np.ndarray):
        space = char_table("space")[codes]
        if not len(codes):
            self.count, self.lengths, self.with_alpha = 0, np.zeros(0, dtype=np.int64), 0
            return
        word = ~space
        starts = (word & np.concatenate(([True], space[:-1]))).nonzero()[0]
        ends = (word & np.concatenate((space[1:], [True]))).nonzero()[0] + 1
        self.count = len(starts)
        self.lengths = (ends - starts).astype(np.int64)
        alpha = char_table("alpha")[codes]
        self.with_alpha = int(np.count_nonzero(np.logical_or.reduceat(alpha, starts))) if self.count else 0


def word_spans(doc: Document) -> WordSpans:
    return cached(doc, "_word_spans", lambda d: WordSpans(codepoints(d)))


class WordArrays:
    """The document's words as numbers: lengths, dense ids and how often each id occurs."""

    __slots__ = ("counts", "ids", "lengths")

    def __init__(self, words: list[str], lengths: np.ndarray):
        n = len(words)
        self.lengths = lengths
        # Python's string hash is cached on the string and 64 bits wide: mapping hashes to dense ids is
        # exact unless two distinct words of one document collide (probability ~ n² / 2⁶⁴).
        hashes = np.fromiter(map(hash, words), dtype=np.int64, count=n)
        _, self.ids, self.counts = np.unique(hashes, return_inverse=True, return_counts=True)


def word_arrays(doc: Document) -> WordArrays:
    return cached(doc, "_word_arrays", lambda d: WordArrays(d.words, word_spans(d).lengths))
