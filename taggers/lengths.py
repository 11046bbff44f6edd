"""Lengths and counts with Dolma's names, keys and values: bytes, characters, words, Unicode word segments,
pre-tokens and tokens, per document and per paragraph.

One engine: a tagger is a `measure(text) -> float` applied to the document and, for the `*_paragraphs*`
names, to each of Dolma's paragraphs (`taggers.paragraphs`), with the document value the sum (or the whole
text's measure, as Dolma does for each name).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import regex

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.tagger import TAGGERS, Tagger
from dolma_pipeline.tokenize.bpe_cache import WHITESPACE
from taggers.chunk_counts import ChunkCounts
from taggers.paragraphs import paragraph_bounds

# Dolma's word-ish pieces (`regex`, not `re`: its `\w` also covers combining marks, as Dolma's does).
_PIECES = regex.compile(r"\w+|[^\w\s]+")
_WORD_BOUNDARY = regex.compile(r"(?w)\b")
_HAS_ALPHANUM = regex.compile(r"[a-zA-Z0-9]")
_ALL_PUNCTUATION = regex.compile(
    r"^([[:punct:]]|\s|[" "\U0001f300-\U0001f64f\U0001f680-\U0001f6ff\u2600-\u26ff\u2700-\u27bf" r"]+)+$")


def pieces(text: str) -> int:
    """Dolma's `whitespace_tokenizer`: the number of pieces left by splitting on word or punctuation runs."""
    return len(_PIECES.split(text))


def uniseg_words(text: str, skip_space: bool) -> int:
    """Unicode (UAX #29) word segments of `text`; whitespace-only segments left out with `skip_space`.

    Dolma counts the words of the pure-Python `uniseg` package; the `regex` module's default word
    boundaries (`(?w)\\b`) are the same UAX #29 rules in C, about 100x faster (the parity tests compare
    the two on real text).
    """
    if not text:
        return 0
    cuts = sorted({0, len(text), *(m.start() for m in _WORD_BOUNDARY.finditer(text))})
    if not skip_space:
        return len(cuts) - 1
    return sum(1 for a, b in zip(cuts, cuts[1:]) if not text[a:b].isspace())


@TAGGERS.register("bytes_length_v1")
class BytesLength(Tagger):
    """UTF-8 length of the document in bytes (`bytes`)."""

    def predict(self, doc: Document) -> list[Span]:
        return [Span(0, len(doc.text), "bytes", float(len(doc.text.encode("utf-8", "surrogatepass"))))]


@TAGGERS.register("doc_count_v1")
class DocCount(Tagger):
    """1 per document (`docs`), to count documents through attribute sums."""

    def predict(self, doc: Document) -> list[Span]:
        return [Span(0, len(doc.text), "docs", 1.0)]


@TAGGERS.register("char_length_strip_ws_v1")
class CharLengthStripWs(Tagger):
    """Characters of the document without leading and trailing whitespace (`length_no_ws`)."""

    def predict(self, doc: Document) -> list[Span]:
        return [Span(0, len(doc.text), "length_no_ws", float(len(doc.text.strip())))]


@TAGGERS.register("uniseg_length_v1")
class UnisegLength(Tagger):
    """Unicode word segments of the stripped document, whitespace segments included (`length`)."""

    def predict(self, doc: Document) -> list[Span]:
        text = doc.text.strip()
        return [Span(0, len(doc.text), "length", float(uniseg_words(text, False) if text else 0))]


class ParagraphMeasure(Tagger):
    """`paragraph` spans scored by `measure` over Dolma's non-empty paragraphs, then a `document` span."""

    SUM_FOR_DOCUMENT: ClassVar[bool] = True  # document value: the sum of the paragraphs' or the text's own

    def measure(self, text: str) -> float:
        raise NotImplementedError

    def predict(self, doc: Document) -> list[Span]:
        text = doc.text
        spans = [Span(s, e, "paragraph", float(self.measure(text[s:e]))) for s, e in paragraph_bounds(doc)]
        total = sum(s.score for s in spans) if self.SUM_FOR_DOCUMENT else float(self.measure(text))
        spans.append(Span(0, len(text), "document", total))
        return spans


@TAGGERS.register("char_length_with_paragraphs_v1")
class CharLengthWithParagraphs(ParagraphMeasure):
    """Characters of each non-empty paragraph (`paragraph`) and of the document (`document`)."""

    SUM_FOR_DOCUMENT = False

    def measure(self, text: str) -> float:
        return float(len(text))


@TAGGERS.register("whitespace_tokenizer_with_paragraphs_v1")
class WhitespaceTokenizerWithParagraphs(ParagraphMeasure):
    """Dolma's word-ish pieces of each non-empty paragraph (`paragraph`) and their sum (`document`)."""

    def measure(self, text: str) -> float:
        return float(pieces(text))


class UnisegParagraphs(Tagger):
    """Per paragraph: non-space Unicode word segments (`paragraph`) and their negation (`negative_paragraph`)."""

    KEEP_EMPTY: ClassVar[bool] = False
    WITH_DOCUMENT: ClassVar[bool] = False

    def predict(self, doc: Document) -> list[Span]:
        text = doc.text
        spans: list[Span] = []
        total = 0.0
        for s, e in paragraph_bounds(doc, keep_empty=self.KEEP_EMPTY):
            paragraph = text[s:e].strip()
            n = float(uniseg_words(paragraph, True)) if paragraph else 0.0
            total += n
            # Dolma records the negated length too: mixer rules only compare with "greater than".
            spans += (Span(s, e, "paragraph", n), Span(s, e, "negative_paragraph", -n))
        if self.WITH_DOCUMENT:
            spans += (Span(0, len(text), "document", total), Span(0, len(text), "negative_document", -total))
        return spans


@TAGGERS.register("uniseg_length_paragraphs_v1")
class UnisegLengthParagraphs(UnisegParagraphs):
    """Non-space Unicode word segments of each non-empty paragraph, and their negation."""


@TAGGERS.register("uniseg_length_paragraphs_with_empty_v1")
class UnisegLengthParagraphsWithEmpty(UnisegParagraphs):
    """Non-space Unicode word segments of every paragraph, empty ones included, and their negation."""

    KEEP_EMPTY = True


@TAGGERS.register("uniseg_length_paragraphs_with_doc_length_v1")
class UnisegLengthParagraphsWithDocLength(UnisegParagraphs):
    """Per-paragraph Unicode word segments plus `document` / `negative_document` sums."""

    WITH_DOCUMENT = True


@TAGGERS.register("not_alphanum_paragraph_v1")
class NotAlphanumParagraph(Tagger):
    """Paragraphs made only of punctuation, spaces and emoji (`all_punct` 1), or one `all_punct` 0 span."""

    def predict(self, doc: Document) -> list[Span]:
        text = doc.text
        spans = [Span(s, e, "all_punct", 1.0) for s, e in paragraph_bounds(doc)
                 if not _HAS_ALPHANUM.search(text, s, e) and _ALL_PUNCTUATION.search(text[s:e])]
        return spans or [Span(0, len(text), "all_punct", 0.0)]


def olmo_pre_tokenizer() -> Any:
    """OLMo's pre-tokeniser: punctuation and digits isolated, then byte-level (no model needed).

    Dolma writes the punctuation class as `[[:punct:]]`, which the Oniguruma of `tokenizers` <= 0.19 (the
    version Dolma pins) reads as Unicode punctuation `\\p{P}` but later versions read with ASCII symbols
    ("=", "+", "$", ...) too; `\\p{P}` keeps Dolma's counts whatever the `tokenizers` version.
    """
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern=Regex(" ?\\p{P}"), behavior="isolated", invert=False),
        pre_tokenizers.Split(pattern=Regex(" ?\\d"), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])


# A run of whitespace (as the pre-tokeniser's regex engine reads `\s`) and the non-whitespace after it.
_CHUNK = re.compile(f"[{WHITESPACE}]*[^{WHITESPACE}]+|[{WHITESPACE}]+")


@TAGGERS.register("olmo_pretokenizer_v1")
class OlmoPreTokenizer(Tagger):
    """Number of OLMo pre-tokens of the document (`length`).

    Counted per chunk (a whitespace run and the non-whitespace after it), each distinct chunk once: no
    pre-token crosses the start of a whitespace run that follows non-whitespace (`" ?\\p{P}"` and
    `" ?\\d"` hold one space at most, before their character; the byte-level pieces are whitespace runs or
    an optional space and non-whitespace), and no piece depends on text before it, so a text's count is the
    sum of its chunks' counts, whatever was cached (`bpe_cache` makes the same argument for token ids).
    """

    def setup(self) -> None:
        self._pre = olmo_pre_tokenizer()
        pre_tokenize = self._pre.pre_tokenize_str
        # lone surrogates read as "?", one character each, as for the whole text
        self._chunks = ChunkCounts(lambda chunks: [
            len(pre_tokenize(c.encode("utf-8", "replace").decode("utf-8"))) for c in chunks])

    def count(self, text: str) -> float:
        if not hasattr(self, "_pre"):
            self.setup()
        return float(self._chunks.totals([_CHUNK.findall(text)])[0])

    def predict(self, doc: Document) -> list[Span]:
        return [Span(0, len(doc.text), "length", self.count(doc.text))]


@TAGGERS.register("olmo_pretokenizer_with_paragraphs_v1")
class OlmoPreTokenizerWithParagraphs(ParagraphMeasure, OlmoPreTokenizer):
    """OLMo pre-tokens of each non-empty paragraph (`paragraph`) and their sum (`document`)."""

    def measure(self, text: str) -> float:
        return self.count(text)
