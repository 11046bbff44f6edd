"""Gopher quality and repetition statistics (Rae et al. 2021) with Dolma's `gopher_v1` keys and values.

Dolma rebuilds nine `Counter`s of word n-gram tuples per document. Here words become integer ids once
(shared with other taggers through `text_stats`) and the n-gram statistics are computed level by level
with numpy, looking at an n-gram only where both of its (n-1)-gram halves are repeated: an n-gram that
contains a unique (n-1)-gram is unique itself, so after the first few levels almost nothing is left to
count. Values are the same numbers Dolma computes (integer sums divided once at the end), including its
tie-breaking for the most common n-gram: among equally frequent n-grams, the one seen first.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.tagger import TAGGERS, Tagger
from taggers.text_stats import line_counts, word_arrays, word_spans

REQUIRED_ENGLISH_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
MOST_COMMON_NGRAM_SIZES = (2, 3, 4)
DUPLICATE_NGRAM_SIZES = (5, 6, 7, 8, 9, 10)
# Below this many words the plain-Python counters are faster than numpy's per-call overhead.
SMALL_DOC_WORDS = 60
DOCUMENT_STATISTICS = (
    "character_count", "word_count", "median_word_length", "symbol_to_word_ratio",
    "fraction_of_words_with_alpha_character", "required_word_count",
    "fraction_of_lines_starting_with_bullet_point", "fraction_of_lines_ending_with_ellipsis",
    "fraction_of_duplicate_lines", "fraction_of_characters_in_duplicate_lines",
)



def ngram_statistics(doc: Document) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(n, fraction of characters in the most common n-gram) for n in 2..4 and
    (n, fraction of characters in duplicated n-grams) for n in 5..10, for the n-grams the document has."""
    words = doc.words
    if len(words) < SMALL_DOC_WORDS:
        return _ngram_statistics_small(words)
    arrays = word_arrays(doc)
    lengths, ids = arrays.lengths, arrays.ids
    n_words = len(words)
    character_count = max(int(lengths.sum()), 1)
    prefix = np.zeros(n_words + 1, dtype=np.int64)
    np.cumsum(lengths, out=prefix[1:])

    # Sum over all n-gram positions of their character counts, for every n at once: sum(prefix[n:]) - sum(prefix[:-n]).
    prefix_sums = np.zeros(n_words + 2, dtype=np.int64)
    np.cumsum(prefix, out=prefix_sums[1:])

    most_common: list[tuple[int, float]] = []
    duplicate: list[tuple[int, float]] = []
    vocabulary = len(arrays.counts)
    # Sparse state: the sorted positions whose (n-1)-gram occurs more than once, and that n-gram's dense id.
    repeated_positions = (arrays.counts[ids] > 1).nonzero()[0]
    repeated_ids = ids[repeated_positions]
    for n in range(2, 11):
        positions = n_words - n + 1
        if positions <= 0:
            break
        # An n-gram can repeat only where the (n-1)-grams at i and i+1 both repeat.
        follows = ((repeated_positions[1:] - repeated_positions[:-1]) == 1).nonzero()[0]
        candidates = repeated_positions[follows]
        max_count, first_position, repeated_chars = 1, 0, 0
        if len(candidates):
            # ids are dense per level (< n_words), so `id * vocabulary + word id` never overflows int64.
            keys = repeated_ids[follows] * vocabulary + ids[candidates + n - 1]
            _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
            per_position = counts[inverse]
            repeated = per_position > 1
            repeated_positions, repeated_ids = candidates[repeated], inverse[repeated]
            max_count = int(per_position.max())
            if max_count > 1:
                first_position = int(candidates[int(np.argmax(per_position == max_count))])
                repeated_chars = int((prefix[repeated_positions + n] - prefix[repeated_positions]).sum())
        else:
            repeated_positions = repeated_ids = candidates
        if n in MOST_COMMON_NGRAM_SIZES:
            first_chars = int(prefix[first_position + n] - prefix[first_position])
            most_common.append((n, max_count * first_chars / character_count))
        else:
            total_chars = int(prefix_sums[n_words + 1] - prefix_sums[n]) - int(prefix_sums[positions])
            duplicate.append((n, repeated_chars / max(total_chars, 1)))
        if not len(repeated_positions) and n >= MOST_COMMON_NGRAM_SIZES[-1]:
            # No repeated n-gram means no repeated longer n-gram: the rest is zero duplication.
            duplicate.extend((m, 0.0) for m in range(n + 1, 11) if m <= n_words)
            break
    return most_common, duplicate


def _ngram_statistics_small(words: list[str]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """Dolma's own computation, faster than numpy for short documents."""
    character_count = max(sum(map(len, words)), 1)
    most_common: list[tuple[int, float]] = []
    duplicate: list[tuple[int, float]] = []
    for n in range(2, min(len(words), 10) + 1):
        counts = Counter(zip(*[words[i:] for i in range(n)]))
        if n in MOST_COMMON_NGRAM_SIZES:
            ngram, count = counts.most_common(1)[0]
            most_common.append((n, count * sum(map(len, ngram)) / character_count))
        else:
            total = repeated = 0
            for ngram, count in counts.items():
                chars = count * sum(map(len, ngram))
                total += chars
                if count > 1:
                    repeated += chars
            duplicate.append((n, repeated / max(total, 1)))
    return most_common, duplicate


def _median_word_length(doc: Document) -> float:
    lengths = word_spans(doc).lengths
    n = len(lengths)
    if not n:
        return 0.0
    ordered = np.sort(lengths)
    half = n // 2
    return float(ordered[half]) if n % 2 else (int(ordered[half - 1]) + int(ordered[half])) / 2


def gopher_spans(doc: Document) -> list[Span]:
    """Dolma's `gopher_v1` spans, in its order; an empty document gets only the zero-valued document stats."""
    text = doc.text
    end = len(text)
    words = doc.words
    word_count = len(words)
    stats: dict[str, float] = dict.fromkeys(DOCUMENT_STATISTICS, 0.0)
    most_common: list[tuple[int, float]] = []
    duplicate: list[tuple[int, float]] = []
    if end:
        most_common, duplicate = ngram_statistics(doc)
        per_word = max(word_count, 1)
        spans_of_words = word_spans(doc)
        word_chars = int(spans_of_words.lengths.sum())
        symbols = 0
        if "#" in text or "\u2026" in text:
            symbols = sum(1 for word in words if "#" in word or "\u2026" in word)
        line_count = text.count("\n") + 1
        bullets = text.startswith(("*", "-")) + text.count("\n*") + text.count("\n-")
        ellipsis = text.count("\u2026\n") + text.endswith("\u2026")
        duplicate_lines = duplicate_line_chars = 0
        counts = line_counts(doc)
        if len(counts) < line_count:
            for line, count in counts.items():
                if count > 1:
                    duplicate_lines += count
                    duplicate_line_chars += len(line) * count
        stats.update(
            character_count=float(end),
            word_count=float(word_count),
            median_word_length=_median_word_length(doc),
            symbol_to_word_ratio=symbols / per_word,
            fraction_of_words_with_alpha_character=spans_of_words.with_alpha / per_word,
            required_word_count=float(sum(map(REQUIRED_ENGLISH_WORDS.__contains__, words))),
            fraction_of_lines_starting_with_bullet_point=bullets / line_count,
            fraction_of_lines_ending_with_ellipsis=ellipsis / line_count,
            fraction_of_duplicate_lines=duplicate_lines / line_count,
            fraction_of_characters_in_duplicate_lines=duplicate_line_chars / max(word_chars, 1),
        )
    spans = [Span(0, end, f"fraction_of_characters_in_most_common_{n}grams", v) for n, v in most_common]
    spans += [Span(0, end, f"fraction_of_characters_in_duplicate_{n}grams", v) for n, v in duplicate]
    spans += [Span(0, end, name, value) for name, value in stats.items()]
    return spans


@TAGGERS.register("gopher_v1")
class Gopher(Tagger):
    """Gopher quality and repetition statistics, Dolma's `gopher_v1` keys and values."""

    def predict(self, doc: Document) -> list[Span]:
        return gopher_spans(doc)
