"""Dolma's paragraphs, computed once per document and shared by every paragraph-level tagger of a run.

A paragraph is a line with its newline, or the text after the last newline when that is not empty (Dolma's
`split_paragraphs`, the regex `[^\\n]*\\n|[^\\n]+$`). Dolma's default drops whitespace-only paragraphs;
`keep_empty=True` keeps them (`remove_empty=False` in Dolma).
"""

from __future__ import annotations

from dolma_pipeline.documents import Document
from taggers.text_stats import cached


def _all_lines(doc: Document) -> list[tuple[int, int]]:
    text = doc.text
    bounds: list[tuple[int, int]] = []
    start = 0
    for line in doc.lines:
        end = start + len(line) + 1
        if end <= len(text):
            bounds.append((start, end))
        elif line:
            bounds.append((start, len(text)))
        start = end
    return bounds


def paragraph_bounds(doc: Document, keep_empty: bool = False) -> list[tuple[int, int]]:
    """(start, end) of each paragraph in code points; whitespace-only ones only with `keep_empty`."""
    if keep_empty:
        return cached(doc, "_paragraphs_all", _all_lines)
    return cached(doc, "_paragraphs_nonempty",
                  lambda d: [(s, e) for s, e in paragraph_bounds(d, True) if not d.text[s:e].isspace()])
