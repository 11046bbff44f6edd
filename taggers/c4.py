"""C4 line and document flags (Raffel et al. 2020) with Dolma's `c4_v2` keys and values.

Dolma's `c4_v2` lower-cases the text and computes its line offsets on the lower-cased copy; `str.lower`
changes the length of a few characters (U+0130 "İ" becomes two code points), which shifts every later
span and can put spans past the end of the text. Here offsets come from the original text (the shared
line split), so spans are always inside the text; values are otherwise Dolma's.
"""

from __future__ import annotations

import numpy as np

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.tagger import TAGGERS, Tagger
from taggers.naughty_words import NAUGHTY_PHRASES, NAUGHTY_WORDS
from taggers.text_stats import codepoints_of, lower_codepoints, lower_text, lower_word_set

MIN_WORDS_PER_LINE = 3
END_OF_LINE_PUNCTUATION = (".", "?", "!", '"')


def _window_code(chars: np.ndarray | list[int]) -> int | np.ndarray:
    """Two characters before and two after a space, packed into one integer (non-ASCII clamped to 127)."""
    c0, c1, c2, c3 = chars
    return ((c0 * 128 + c1) * 128 + c2) * 128 + c3


def _phrase_window(phrase: str) -> int | None:
    """The window code of the first space in `phrase` with two non-space characters on both sides."""
    for i in range(2, len(phrase) - 2):
        if phrase[i] == " " and " " not in phrase[i - 2 : i] + phrase[i + 1 : i + 3]:
            return int(_window_code([min(ord(c), 127) for c in phrase[i - 2 : i] + phrase[i + 1 : i + 3]]))
    return None


_PHRASES_BY_WINDOW: dict[int, list[str]] = {}
_PHRASES_WITHOUT_WINDOW: list[str] = []
for _phrase in NAUGHTY_PHRASES:
    _code = _phrase_window(_phrase)
    if _code is None:
        _PHRASES_WITHOUT_WINDOW.append(_phrase)
    else:
        _PHRASES_BY_WINDOW.setdefault(_code, []).append(_phrase)
_WINDOW_CODES = np.array(sorted(_PHRASES_BY_WINDOW), dtype=np.int64)


def _contains_naughty_phrase(text: str, codes: np.ndarray | None = None) -> bool:
    """Dolma's `any(phrase in text ...)` over 124 phrases costs ~0.2 ms per KB; instead look up the windows
    around the text's spaces and search only for the phrases whose window occurs (an exact pre-filter)."""
    if any(phrase in text for phrase in _PHRASES_WITHOUT_WINDOW):
        return True
    if codes is None:
        codes = codepoints_of(text)
    spaces = (codes[2 : len(codes) - 2] == 32).nonzero()[0] + 2
    if not len(spaces):
        return False
    clamped = np.minimum(codes, 127).astype(np.int64)
    windows = _window_code([clamped[spaces - 2], clamped[spaces - 1], clamped[spaces + 1], clamped[spaces + 2]])
    found = _WINDOW_CODES[np.minimum(np.searchsorted(_WINDOW_CODES, windows), len(_WINDOW_CODES) - 1)]
    hits = np.unique(windows[found == windows])
    return any(phrase in text for code in hits.tolist() for phrase in _PHRASES_BY_WINDOW[code])


def has_naughty_word(doc: Document) -> bool:
    """A listed word among the lower-cased words, or a listed phrase anywhere in the lower-cased text."""
    if not NAUGHTY_WORDS.isdisjoint(lower_word_set(doc)):
        return True
    return _contains_naughty_phrase(lower_text(doc), lower_codepoints(doc))


def line_flag_spans(doc: Document) -> list[Span]:
    """`lines_with_no_ending_punctuation` / `lines_with_too_few_words` for each line, newline included."""
    spans: list[Span] = []
    append = spans.append
    # Most lines of most documents get a span: build the tuples directly (Span is a NamedTuple), which
    # skips the generated Python-level `__new__` and halves the cost per span.
    new_span = tuple.__new__
    start = 0
    text_end = len(doc.text)
    for line in doc.lines:
        end = start + len(line)
        if end != text_end:
            end += 1
        stripped = line.strip()
        if not stripped.endswith(END_OF_LINE_PUNCTUATION):
            append(new_span(Span, (start, end, "lines_with_no_ending_punctuation", 1.0)))
        # Counting up to three words is enough and avoids splitting long lines.
        if len(stripped.split(None, MIN_WORDS_PER_LINE - 1)) < MIN_WORDS_PER_LINE:
            append(new_span(Span, (start, end, "lines_with_too_few_words", 1.0)))
        start = end
    return spans


@TAGGERS.register("c4_v2")
class C4(Tagger):
    """C4 heuristics as Dolma's `c4_v2`: per-line punctuation/word-count flags and document flags."""

    def predict(self, doc: Document) -> list[Span]:
        text = lower_text(doc)
        end = len(doc.text)
        spans: list[Span] = []
        if "{" in text:
            spans.append(Span(0, end, "has_curly_brace"))
        if "lorem ipsum" in text:
            spans.append(Span(0, end, "has_lorem_ipsum"))
        if "javascript" in text:
            spans.append(Span(0, end, "has_javascript"))
        if has_naughty_word(doc):
            spans.append(Span(0, end, "has_naughty_word"))
        spans.extend(line_flag_spans(doc))
        spans.append(Span(0, end, "line_count", float(len(doc.lines))))
        return spans
