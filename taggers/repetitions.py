"""Repeated character and token sequences with Dolma's `*repetitions*` names, keys and values.

One engine: a finder turns a piece of text into `repetition` spans (a character group repeated at least
four times, Dolma's regex; or a run of 1-13 tokens repeated at least three times, found period by period
on the token ids), applied to the whole document, to each paragraph, or to 100,000-character chunks; then
Dolma's three document statistics (`doc_max_score_repetition`, `doc_max_length_repetition`,
`doc_frac_repetition`). When `repetitions_v1` runs before `paragraph_repetitions_v1` (as in the catalogue's
order), the paragraph name searches only inside the whole text's matches: no paragraph match starts
elsewhere (`char_repetitions_in_paragraphs`).

One deliberate difference: Dolma's `paragraph_tokenizer_repetitions_v1` tokenizes " " + paragraph and can
report a span that starts one character before its paragraph (at -1 for the first one, outside the text);
here such a span starts at its paragraph.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.tagger import TAGGERS, Tagger
from taggers.paragraphs import paragraph_bounds
from taggers.text_stats import cached, cached_value
from taggers.tokenizer_lengths import TokenizerTagger

# A group of characters followed by at least three more copies, each optionally after one whitespace.
CHAR_REPETITION = re.compile(r"(.+?)(\s?\1){3,}")
MIN_PERIOD, MAX_PERIOD = 1, 13
CHUNK = 100_000


# Key of the whole text's `repetitions_v1` spans in the document's cache (`taggers.text_stats.cached`).
WHOLE_TEXT_SPANS = "_char_repetitions"


def _repetition(match: re.Match, offset: int = 0) -> Span:
    """A match as a span; the score is how often the group occurs in the match."""
    return Span(match.start() + offset, match.end() + offset, "repetition",
                float(match.group(0).count(match.group(1))))


def char_repetitions(text: str, offset: int = 0) -> list[Span]:
    """Dolma's `repetitions_v1` spans."""
    return [_repetition(m, offset) for m in CHAR_REPETITION.finditer(text)]


def char_repetitions_in_paragraphs(text: str, bounds: list[tuple[int, int]], whole: list[Span]) -> list[Span]:
    """The spans of `char_repetitions` run on each paragraph (`bounds`, which cover the text in order), found
    from the whole text's spans `whole`.

    The pattern has no anchors or lookarounds, so a match inside a paragraph is also a match at the same
    position of the whole text: where the whole text's search failed (every position outside its spans) no
    paragraph match starts. Each paragraph's `finditer` is replayed on the positions inside the whole text's
    spans only: a match tried at each (`pos`/`endpos` on the whole text, the same as matching the paragraph's
    slice for this pattern), and after a match the next try at its end. Exact, and about 200x less work on
    the corpus's `en` documents, whose paragraphs mostly repeat nothing.
    """
    spans: list[Span] = []
    paragraph = cursor = 0
    for start, end, _, _ in whole:
        position = max(start, cursor)
        while position < end:
            while bounds[paragraph][1] <= position:
                paragraph += 1
            match = CHAR_REPETITION.match(text, position, bounds[paragraph][1])
            if match is None:
                position += 1
            else:
                spans.append(_repetition(match))
                position = cursor = match.end()
    return spans


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
        return cached(doc, WHOLE_TEXT_SPANS, lambda d: char_repetitions(d.text))

    def predict(self, doc: Document) -> list[Span]:
        spans = self.find(doc)
        return spans + document_statistics(spans, len(doc.text))


@TAGGERS.register("paragraph_repetitions_v1")
class ParagraphCharRepetitions(CharRepetitions):
    """`repetitions_v1` within each paragraph (no repetition across a newline); faster on long texts."""

    def find(self, doc: Document) -> list[Span]:
        text, bounds = doc.text, paragraph_bounds(doc, keep_empty=True)
        whole = cached_value(doc, WHOLE_TEXT_SPANS)  # there when `repetitions_v1` ran first on the document
        if whole is not None:
            return char_repetitions_in_paragraphs(text, bounds, whole)
        return [span for s, e in bounds for span in char_repetitions(text[s:e], s)]


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

    def predict_batch(self, docs: list[Document]) -> list[list[Span]]:
        pieces = [self.pieces(doc) for doc in docs]
        texts = [text for p in pieces for _, text in p]
        ids = self.token_ids(texts)
        if ids is None:  # not a byte-level BPE tokenizer: every text through encode_batch
            encodings = iter(self.encode_batch(texts, add_special_tokens=False))
        else:  # offsets only for the texts that repeat something (the same ids, so the same runs)
            repeating = [next(periodic_runs(i), None) is not None for i in ids]
            full = iter(self.encode_batch([t for t, r in zip(texts, repeating) if r], add_special_tokens=False))
            encodings = iter([next(full) if r else _NO_RUNS for r in repeating])
        out = []
        for doc, doc_pieces in zip(docs, pieces):
            spans = [span for offset, _ in doc_pieces for span in self.spans_of(next(encodings), offset)]
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
