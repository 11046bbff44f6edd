"""Dolma's older regex PII taggers, `pii_regex_v1`, `pii_regex_v2` and `pii_regex_with_counts_v2`.

One engine, Dolma's: the e-mail, US phone and IPv4 regexes run over the whole text (not per paragraph, as
in `pii_regex_with_counts_fast_v2`); an e-mail is kept when its match has a "." after the "@" and is not
"(" before it; a phone or IP is dropped when the 100 characters around it hold "isbn", "doi" or "#", and a
phone too when the text holds a URL by Dolma's URL regex (whose `\\b` was written in a plain string, so
it is a backspace character and the regex matches only text that holds one: kept as is). The `doc` score
is PII spans per whitespace word.

Deliberate difference: Dolma's `pii_regex_v1` and `pii_regex_with_counts_v2` crash (ZeroDivisionError)
on a document without words; here their `doc` score is then -1, as `pii_regex_v2`'s is.
"""

from __future__ import annotations

import re
from typing import ClassVar

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.tagger import TAGGERS, Tagger
from taggers.pii import DOLMA_EMAIL, DOLMA_IP, DOLMA_PHONE

_DIGIT = re.compile(r"\d")
WINDOW = 100
FALSE_POSITIVE_CONTEXT = ("isbn", "doi", "#")
# Dolma's URL regex, "\b" included as the backspace character Dolma's plain string makes of it.
DOLMA_URL = re.compile(
    "(?i)\b((?:https?://|www\\d{0,3}[.]|[a-z0-9.\\-]+[.][a-z]{2,4}/)(?:[^\\s()<>]+|\\(([^\\s()<>]+|"
    "(\\([^\\s()<>]+\\)))*\\))+(?:\\(([^\\s()<>]+|(\\([^\\s()<>]+\\)))*\\)|[^\\s`!()\\[\\]"
    "{};:'\".,<>?«»“”‘’]))"
)


def _is_email(mention: str) -> bool:
    parts = mention.split("@")
    return parts[0].strip() != "(" and "." in parts[1]


def _clean_context(text: str, start: int, end: int) -> bool:
    context = text[max(0, start - WINDOW) : end + WINDOW]
    return not any(marker in context for marker in FALSE_POSITIVE_CONTEXT)


def regex_pii_spans(text: str) -> list[Span]:
    """Dolma's post-processed regex PII spans: e-mails, then phones, then IPs, each in text order."""
    spans: list[Span] = []
    if "@" in text:
        spans += [Span(m.start(), m.end(), "EMAIL_ADDRESS") for m in DOLMA_EMAIL.finditer(text)
                  if _is_email(m.group(0))]
    has_url: bool | None = None
    if _DIGIT.search(text):
        for m in DOLMA_PHONE.finditer(text):
            if not _clean_context(text, m.start(), m.end()):
                continue
            if has_url is None:
                has_url = "\b" in text and DOLMA_URL.search(text) is not None
            if not has_url:
                spans.append(Span(m.start(), m.end(), "PHONE_NUMBER"))
    if "." in text:
        spans += [Span(m.start(), m.end(), "IP_ADDRESS") for m in DOLMA_IP.finditer(text)
                  if _clean_context(text, m.start(), m.end())]
    return spans


class RegexPii(Tagger):
    """PII spans, `doc` (spans per word, -1 without words) and, with `COUNTS`, `doc_count`."""

    COUNTS: ClassVar[bool] = False

    def predict(self, doc: Document) -> list[Span]:
        text = doc.text
        spans = regex_pii_spans(text)
        words = len(doc.words)
        count = len(spans)
        spans.append(Span(0, len(text), "doc", count / words if words else -1.0))
        if self.COUNTS:
            spans.append(Span(0, len(text), "doc_count", float(count)))
        return spans


@TAGGERS.register("pii_regex_v1")
class PiiRegexV1(RegexPii):
    """Dolma's first regex PII tagger: e-mail, US phone and IPv4 spans with context rules, and `doc`."""


@TAGGERS.register("pii_regex_v2")
class PiiRegexV2(RegexPii):
    """`pii_regex_v1` with `doc` = -1 for a document without words (Dolma's v2)."""


@TAGGERS.register("pii_regex_with_counts_v2")
class PiiRegexWithCountsV2(RegexPii):
    """`pii_regex_v1` plus the number of PII spans (`doc_count`)."""

    COUNTS = True
