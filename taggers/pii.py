"""PII taggers: Dolma's `pii_regex_with_counts_fast_v2`, the corrected `pii_regex_v3`, and `pii_presidio_v1`.

`pii_regex_with_counts_fast_v2` reproduces Dolma 1.2.1 value for value, bugs included (spans that include
surrounding whitespace and punctuation, an e-mail at the very end of the text is missed, IPv4 without word
boundaries, `doc_frac` = 1 + PII fraction), because mixer configs written for Dolma rely on its numbers.
It is faster: Dolma runs three regexes over every line; here the lines (or digit runs) that can hold a
match are found first, with `str.find` or numpy over the code points shared with `c4_v2`, and only those
are scanned with Dolma's regexes, which gives the same matches.

`pii_regex_v3` fixes those bugs; see `taggers/pii_patterns.py` for what it matches.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.tagger import TAGGERS, Tagger
from taggers.pii_dolma_scan import dolma_email_matches, dolma_phone_matches
from taggers.pii_patterns import EMAIL, IP, PHONE, find_pii
from taggers.text_stats import char_table, codepoints, codepoints_of

log = logging.getLogger(__name__)

# Dolma 1.2.1's patterns, verbatim.
DOLMA_EMAIL = re.compile("[.\\s@,?!;:)(]*([^\\s@]+@[^\\s@,?!;:)(]+?)[.\\s@,?!;:)(]?[\\s\n\r]")
DOLMA_PHONE = re.compile("\\s+\\(?(\\d{3})\\)?[-\\. ]*(\\d{3})[-. ]?(\\d{4})")
_PHONE_AFTER_NON_SPACE = re.compile("(?<!\\s)" + DOLMA_PHONE.pattern)  # see pii_dolma_scan
DOLMA_IP = re.compile(
    "(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)")
# Dolma skips PII detection for documents with more than this many question marks.
MAX_QUESTION_MARKS = 10_000


def _line_bounds(text: str, position: int) -> tuple[int, int]:
    """Dolma's paragraph around `position`: the line including its trailing newline."""
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return start, len(text) if end < 0 else end + 1


def _lines_with(text: str, positions: list[int]) -> list[tuple[int, int]]:
    """The distinct lines holding `positions` (sorted), in order."""
    lines: list[tuple[int, int]] = []
    for position in positions:
        if lines and position < lines[-1][1]:
            continue
        lines.append(_line_bounds(text, position))
    return lines


def dolma_email_spans(text: str) -> list[Span]:
    if "@" not in text:
        return []
    positions, at = [], text.find("@")
    while at >= 0:
        positions.append(at)
        at = text.find("@", at + 1)
    spans = []
    for start, end in _lines_with(text, positions):
        for match_start, match_end, group_start, group_end in dolma_email_matches(text, start, end):
            addressee, domain = text[group_start:group_end].split("@", 1)
            if addressee.strip() == "(" or "." not in domain:
                continue
            spans.append(Span(match_start, match_end, "EMAIL_ADDRESS"))
    return spans


def dolma_phone_spans(text: str, codes: np.ndarray | None = None) -> list[Span]:
    """Dolma's phone regex on the lines that hold at least the 10 digits (regex `\\d`: any Unicode decimal
    digit) every match needs."""
    if codes is None:
        codes = codepoints_of(text)
    digits = char_table("decimal")[codes]
    if np.count_nonzero(digits) < 10:
        return []
    newlines = (codes == 10).nonzero()[0]
    per_line = np.bincount(np.searchsorted(newlines, digits.nonzero()[0]), minlength=len(newlines) + 1)
    spans = []
    for line in (per_line >= 10).nonzero()[0].tolist():
        start = int(newlines[line - 1]) + 1 if line else 0
        end = int(newlines[line]) + 1 if line < len(newlines) else len(text)
        # Dolma matches inside the line: `\s+` cannot reach back into the previous line.
        spans.extend(Span(m.start(), m.end(), "PHONE_NUMBER")
                     for m in dolma_phone_matches(DOLMA_PHONE, _PHONE_AFTER_NON_SPACE, text, start, end))
    return spans


def dolma_ip_spans(text: str, codes: np.ndarray | None = None) -> list[Span]:
    """Dolma's IPv4 regex on the runs of at least 7 digits and dots (a match is made of nothing else).

    A match never crosses a newline, so this equals Dolma's line-by-line scan. Dolma's URL exclusion is a
    non-raw regex that cannot match and is therefore left out.
    """
    if codes is None:
        codes = codepoints_of(text)
    digits_or_dots = ((codes >= 48) & (codes <= 57)) | (codes == 46)
    padded = np.zeros(len(codes) + 2, dtype=np.int8)
    padded[1:-1] = digits_or_dots
    edges = padded[1:] - padded[:-1]
    starts, ends = (edges == 1).nonzero()[0], (edges == -1).nonzero()[0]
    long_runs = (ends - starts >= 7).nonzero()[0]
    spans = []
    for run in long_runs.tolist():
        for m in DOLMA_IP.finditer(text, int(starts[run]), int(ends[run])):
            spans.append(Span(m.start(), m.end(), "IP_ADDRESS"))
    return spans


@TAGGERS.register("pii_regex_with_counts_fast_v2")
class DolmaFastPiiRegex(Tagger):
    """Dolma's fast PII regexes (e-mail, US phone, IPv4) with `doc_count` and Dolma's `doc_frac`."""

    def predict(self, doc: Document) -> list[Span]:
        text = doc.text
        spans: list[Span] = []
        if text.count("?") <= MAX_QUESTION_MARKS:
            codes = codepoints(doc)
            spans = dolma_email_spans(text) + dolma_phone_spans(text, codes) + dolma_ip_spans(text, codes)
        end = len(text)
        count = float(len(spans))
        # Dolma sums the lengths of all spans including the `doc_count` one, so this is 1 + PII fraction.
        frac = (sum(s.end - s.start for s in spans) + end) / end if end else -1.0
        spans.append(Span(0, end, "doc_count", count))
        spans.append(Span(0, end, "doc_frac", frac))
        return spans


@TAGGERS.register("pii_regex_v3")
class PiiRegexV3(Tagger):
    """E-mail, phone (international) and IPv4/IPv6 spans covering exactly the PII; correct `doc_frac`."""

    def predict(self, doc: Document) -> list[Span]:
        text = doc.text
        spans = [Span(start, end, kind) for start, end, kind in find_pii(text)]
        end = len(text)
        pii_chars = sum(s.end - s.start for s in spans)
        spans.append(Span(0, end, "doc_count", float(len(spans))))
        spans.append(Span(0, end, "doc_frac", pii_chars / end if end else 0.0))
        return spans


@TAGGERS.register("pii_presidio_v1")
class PiiPresidio(Tagger):
    """presidio-analyzer's e-mail, IP and phone recognizers, offline; presidio's confidence as score."""

    ENTITIES = (EMAIL, PHONE, IP)

    def __init__(self, threshold: float = 0.0, language: str = "en",
                 phone_regions: list[str] | None = None, **options: Any):
        if options:
            raise ConfigError(f"tagger pii_presidio_v1: unknown option(s) {sorted(options)}; "
                              "valid: threshold, language, phone_regions")
        self.threshold = float(threshold)
        self.language = language
        self.phone_regions = tuple(phone_regions) if phone_regions else None
        self.analyzer: Any = None

    def setup(self) -> None:
        from taggers.pii_presidio import build_analyzer

        self.analyzer = build_analyzer(self.language, self.phone_regions)

    def predict(self, doc: Document) -> list[Span]:
        if self.analyzer is None:
            self.setup()
        text = doc.text
        spans: list[Span] = []
        if text.strip():
            results = self.analyzer.analyze(text=text, entities=list(self.ENTITIES), language=self.language,
                                            score_threshold=self.threshold)
            ips = [(r.start, r.end) for r in results if r.entity_type == IP]
            for r in sorted(results, key=lambda r: (r.start, r.end)):
                # presidio's phone recognizer also reads IPv4 addresses as phone numbers.
                if r.entity_type == PHONE and any(s < r.end and r.start < e for s, e in ips):
                    continue
                spans.append(Span(r.start, r.end, r.entity_type, float(r.score)))
        words = len(text.split())
        # Dolma's document score for presidio: PII spans per word (-1 for a document without words).
        spans.append(Span(0, len(text), "doc", len(spans) / words if words else -1.0))
        return spans
