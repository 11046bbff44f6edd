"""Other versions of the rule taggers: Dolma's `gopher_v2` and `c4_v1`, over the `gopher_v1` and `c4_v2`
engines (`taggers.gopher`, `taggers.c4`).

- `gopher_v2` is `gopher_v1` with lines split on runs of newlines (empty lines ignored) for the four line
  statistics.
- `c4_v1` is `c4_v2` with `has_javascript` set by the word "javascript" (after lower-casing and splitting
  on whitespace) rather than by the substring. Its line offsets are on the original text in Dolma too.
"""

from __future__ import annotations

import re
from collections import Counter

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.tagger import TAGGERS, Tagger
from taggers.c4 import has_naughty_word, line_flag_spans
from taggers.gopher import gopher_spans
from taggers.text_stats import lower_text, lower_word_set

_NEWLINES = re.compile(r"\n+")
_LINE_STATS = ("fraction_of_lines_starting_with_bullet_point", "fraction_of_lines_ending_with_ellipsis",
               "fraction_of_duplicate_lines", "fraction_of_characters_in_duplicate_lines")


def line_statistics(lines: list[str], character_count: int) -> dict[str, float]:
    """Gopher's four line statistics of `lines`; `character_count` is the characters of all words."""
    n = max(len(lines), 1)
    counts = Counter(lines)
    return {
        "fraction_of_lines_starting_with_bullet_point": sum(line.startswith(("*", "-")) for line in lines) / n,
        "fraction_of_lines_ending_with_ellipsis": sum(line.endswith("\u2026") for line in lines) / n,
        "fraction_of_duplicate_lines": sum(c for c in counts.values() if c > 1) / n,
        "fraction_of_characters_in_duplicate_lines":
            sum(len(line) * c for line, c in counts.items() if c > 1) / max(character_count, 1),
    }


@TAGGERS.register("gopher_v2")
class GopherV2(Tagger):
    """Gopher quality statistics as `gopher_v1`, with empty lines ignored in the line statistics."""

    def predict(self, doc: Document) -> list[Span]:
        spans = gopher_spans(doc)
        if not doc.text:
            return spans
        stats = line_statistics(_NEWLINES.split(doc.text), sum(map(len, doc.words)))
        return [Span(s.start, s.end, s.type, stats[s.type]) if s.type in stats else s for s in spans]


@TAGGERS.register("c4_v1")
class C4V1(Tagger):
    """C4 heuristics as Dolma's `c4_v1`: per-line flags and document flags, `javascript` as a word."""

    def predict(self, doc: Document) -> list[Span]:
        text = lower_text(doc)
        end = len(doc.text)
        spans = line_flag_spans(doc)
        if has_naughty_word(doc):
            spans.append(Span(0, end, "has_naughty_word"))
        if "javascript" in lower_word_set(doc):
            spans.append(Span(0, end, "has_javascript"))
        if "lorem ipsum" in text:
            spans.append(Span(0, end, "has_lorem_ipsum"))
        if "{" in text:
            spans.append(Span(0, end, "has_curly_brace"))
        spans.append(Span(0, end, "line_count", float(len(doc.lines))))
        return spans
