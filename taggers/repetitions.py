"""Repeated character and token sequences with Dolma's `*repetitions*` names, keys and values.

One engine: a finder turns a piece of text into `repetition` spans (a character group repeated at least
four times, Dolma's regex tried only where it can match, `taggers.char_repetitions`; or a run of 1-13
tokens repeated at least three times, found period by period on the token ids), applied to the whole document, to each paragraph, or to 100,000-character chunks; then
Dolma's three document statistics (`doc_max_score_repetition`, `doc_max_length_repetition`,
`doc_frac_repetition`). When `repetitions_v1` runs before `paragraph_repetitions_v1` (as in the catalogue's
order), the paragraph name searches only inside the whole text's matches: a paragraph's match is a match
of the whole text at the same position, so none starts elsewhere.

One deliberate difference: Dolma's `paragraph_tokenizer_repetitions_v1` tokenizes " " + paragraph and can
report a span that starts one character before its paragraph (at -1 for the first one, outside the text);
here such a span starts at its paragraph.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import Any, ClassVar

import numpy as np

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.tagger import TAGGERS, Tagger
from taggers.char_repetitions import matches_at, repetition_starts
from taggers.paragraphs import paragraph_bounds
from taggers.text_stats import cached, cached_value, codepoints
from taggers.tokenizer_lengths import TokenizerTagger

MIN_PERIOD, MAX_PERIOD = 1, 13
CHUNK = 100_000
# Keys in the document's cache (`taggers.text_stats.cached`): where the regex can match in the whole text,
# the whole text's `repetitions_v1` spans, and the whole text's encoding by the token repetition names.
REPETITION_STARTS, WHOLE_TEXT_SPANS = "_char_repetition_starts", "_char_repetitions"
WHOLE_TEXT_ENCODING = "_token_repetition_encoding:"  # + the tokenizer's path or hub name


def whole_text_repetitions(doc: Document) -> list[Span]:
    """Dolma's `repetitions_v1` spans: `finditer` on the whole text."""
    return cached(doc, WHOLE_TEXT_SPANS, lambda d: matches_at(d.text, _starts(d), [(0, len(d.text))]))


def paragraph_repetitions(doc: Document) -> list[Span]:
    """Dolma's `paragraph_repetitions_v1` spans: `finditer` on each paragraph, where the whole text's spans
    (when `repetitions_v1` found them first), or else the regex's possible starts, allow a match."""
    whole = cached_value(doc, WHOLE_TEXT_SPANS)
    starts = _starts(doc) if whole is None else chain.from_iterable(range(s.start, s.end) for s in whole)
    return matches_at(doc.text, starts, paragraph_bounds(doc, keep_empty=True))


def _starts(doc: Document) -> list[int]:
    return cached(doc, REPETITION_STARTS, lambda d: repetition_starts(codepoints(d)).tolist())


def _leading_true(row: np.ndarray) -> int:
    """Length of the run of True at the start of `row`."""
    false = (~row).nonzero()[0]
    return int(false[0]) if len(false) else len(row)


def periodic_runs(ids: np.ndarray, max_period: int = MAX_PERIOD,
                  min_period: int = MIN_PERIOD) -> Iterator[tuple[int, int, int]]:
    """(start, end, times) of token runs that repeat a period of `min_period`..`max_period` ids >= 3 times.

    For each period the ids are laid out in rows of `period` (the last row padded with -1) and rows equal
    to the row above mark a repetition; a run of such rows is widened by the matching tail of the row
    before it and the matching head of the row after it. The same positions, order and counts as Dolma's
    `find_periodic_sequences`, which only sees repetitions aligned this way.
    """
    n = len(ids)
    for period in range(min_period, min(max_period, n // 3) + 1):
        # A full row equal to the row above needs `period` ids equal to the id `period` before them: most
        # periods of most texts have fewer, and are skipped before the rows are built.
        if np.count_nonzero(ids[period:] == ids[:-period]) < period:
            continue
        rows = np.concatenate([ids, np.full(period - n % period, -1, dtype=ids.dtype)]).reshape(-1, period)
        same = np.empty(rows.shape, dtype=bool)  # each row against the row above; the first against the last
        np.equal(rows[1:], rows[:-1], out=same[1:])
        np.equal(rows[0], rows[-1], out=same[0])
        full = same.all(axis=1).nonzero()[0]
        if not len(full):
            continue
        breaks = (np.diff(full) != 1).nonzero()[0] + 1
        for group in np.split(full, breaks):
            first, last = int(group[0]), int(group[-1])
            tail = _leading_true(same[first - 1][::-1])
            back = tail if 0 < tail < period else 0
            start = (first - 1) * period - back
            end = (last + 1) * period + _leading_true(same[last + 1])
            times = (end - start) // period
            if times > 2:
                yield start, end, times


def document_statistics(spans: list[Span], length: int) -> list[Span]:
    """Dolma's largest score, longest span and fraction of characters in (possibly overlapping) spans."""
    return [
        Span(0, length, "doc_max_score_repetition", max((s.score for s in spans), default=0.0)),
        Span(0, length, "doc_max_length_repetition", float(max((s.end - s.start for s in spans), default=0))),
        Span(0, length, "doc_frac_repetition",
             sum(s.end - s.start for s in spans) / length if spans else 0.0),
    ]


@TAGGERS.register("repetitions_v1")
class CharRepetitions(Tagger):
    """Groups of characters repeated at least 4 times in a row (`repetition`), and document statistics."""

    def find(self, doc: Document) -> list[Span]:
        return whole_text_repetitions(doc)

    def predict(self, doc: Document) -> list[Span]:
        spans = self.find(doc)
        return spans + document_statistics(spans, len(doc.text))


@TAGGERS.register("paragraph_repetitions_v1")
class ParagraphCharRepetitions(CharRepetitions):
    """`repetitions_v1` within each paragraph (no repetition across a newline); faster on long texts."""

    def find(self, doc: Document) -> list[Span]:
        return paragraph_repetitions(doc)


class _Ids:
    """An encoding without repetitions: no ids, so no runs and no offsets to read."""

    ids: list[int] = []
    offsets: list[tuple[int, int]] = []


_NO_RUNS = _Ids()


class TokenRepetitions(TokenizerTagger):
    """Token runs with a period of 1-13 tokens repeated at least 3 times, by Dolma's OLMo-v1 tokenizer."""

    HUB_NAME = "allenai/eleuther-ai-gpt-neox-20b-pii-special"
    KEEP_STATS_WHEN_EMPTY: ClassVar[bool] = True

    def pieces(self, doc: Document) -> list[tuple[int, str]]:
        """(offset, text) of the pieces tokenized separately."""
        return [(0, doc.text)]

    def spans_of(self, encoding: Any, offset: int) -> list[Span]:
        offsets = encoding.offsets
        return [Span(offsets[start][0] + offset, offsets[end - 1][1] + offset, "repetition", float(times))
                for start, end, times in periodic_runs(np.array(encoding.ids, dtype=np.int64))]

    def encodings(self, texts: list[str]) -> list[Any]:
        """Each text's encoding, or `_NO_RUNS` for a text without repeated token runs."""
        ids = self.token_ids(texts)
        if ids is None:  # not a byte-level BPE tokenizer: every text through encode_batch
            return self.encode_batch(texts, add_special_tokens=False)
        # offsets only for the texts that repeat something (the same ids, so the same runs)
        repeating = [next(periodic_runs(i), None) is not None for i in ids]
        full = iter(self.encode_batch([t for t, r in zip(texts, repeating) if r], add_special_tokens=False))
        return [next(full) if r else _NO_RUNS for r in repeating]

    def predict_batch(self, docs: list[Document]) -> list[list[Span]]:
        pieces = [self.pieces(doc) for doc in docs]
        # A piece that is the whole text (every document for `tokenizer_repetitions_v1`, those up to CHUNK
        # characters for `tokenizer_repetitions_v2r2`) is encoded once per run and tokenizer.
        key = WHOLE_TEXT_ENCODING + (self.tokenizer_path or self.HUB_NAME)
        whole = [p == [(0, doc.text)] for doc, p in zip(docs, pieces)]
        known = [cached_value(doc, key) if w else None for doc, w in zip(docs, whole)]
        new = iter(self.encodings([text for p, k in zip(pieces, known) if k is None for _, text in p]))
        out = []
        for doc, doc_pieces, is_whole, encoding in zip(docs, pieces, whole, known):
            encodings = [encoding] if encoding is not None else [next(new) for _ in doc_pieces]
            if is_whole:
                cached(doc, key, lambda _, first=encodings[0]: first)
            spans = [span for (offset, _), e in zip(doc_pieces, encodings) for span in self.spans_of(e, offset)]
            if self.KEEP_STATS_WHEN_EMPTY or spans:
                spans += document_statistics(spans, len(doc.text))
            out.append(spans)
        return out


@TAGGERS.register("tokenizer_repetitions_v1")
class TokenizerRepetitions(TokenRepetitions):
    """Repeated token runs of the whole document (`repetition`, score = times), and document statistics."""


@TAGGERS.register("paragraph_tokenizer_repetitions_v1")
class ParagraphTokenizerRepetitions(TokenRepetitions):
    """Repeated token runs within each paragraph, each tokenized after a space as Dolma does."""

    def pieces(self, doc: Document) -> list[tuple[int, str]]:
        return [(s - 1, " " + doc.text[s:e]) for s, e in paragraph_bounds(doc, keep_empty=True)]

    def spans_of(self, encoding: Any, offset: int) -> list[Span]:
        floor = offset + 1  # the paragraph's start: the added space is not part of the text
        return [Span(max(s.start, floor), s.end, s.type, s.score) for s in super().spans_of(encoding, offset)]


@TAGGERS.register("tokenizer_repetitions_v2r2")
class TokenizerRepetitionsSkipEmpty(TokenRepetitions):
    """Repeated token runs in 100,000-character chunks, runs inside the previous kept run dropped; no
    document statistics for a document without repetitions."""

    KEEP_STATS_WHEN_EMPTY = False

    def pieces(self, doc: Document) -> list[tuple[int, str]]:
        text = doc.text
        return [(i, text[i : i + CHUNK]) for i in range(0, len(text), CHUNK)]

    def spans_of(self, encoding: Any, offset: int) -> list[Span]:
        kept: list[Span] = []
        last_start = last_end = -1
        for span in sorted(super().spans_of(encoding, offset), key=lambda s: (s.start, -s.end, -s.score)):
            if span.start >= last_start and span.end <= last_end:
                continue
            kept.append(span)
            last_start, last_end = span.start, span.end
        return kept
