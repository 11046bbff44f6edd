"""Straight ports of dolma 1.2.1's `gopher_v1`, `c4_v2` and `pii_regex_with_counts_fast_v2` logic (Counter
per n-gram size, per-line loops, per-paragraph regexes), used as the oracle for the fast implementations."""

from __future__ import annotations

import re
from collections import Counter
from statistics import median

from taggers.naughty_words import NAUGHTY_PHRASES, NAUGHTY_WORDS
from taggers.pii import DOLMA_EMAIL, DOLMA_IP, DOLMA_PHONE

REQUIRED = {"the", "be", "to", "of", "and", "that", "have", "with"}


def gopher(text: str) -> dict[str, float]:
    out: dict[str, float] = {"character_count": len(text)}
    if not text:
        return out
    words = text.split()
    character_count = sum(len(w) for w in words)
    out["word_count"] = len(words)
    out["median_word_length"] = float(median([len(w) for w in words])) if words else 0.0
    out["symbol_to_word_ratio"] = sum(1 for w in words if any(s in w for s in {"#", "\u2026"})) / max(len(words), 1)
    out["fraction_of_words_with_alpha_character"] = sum(
        1 for w in words if any(c.isalpha() for c in w)) / max(len(words), 1)
    out["required_word_count"] = sum(1 for w in words if w in REQUIRED)
    for n in range(2, 11):
        counts = Counter(zip(*[words[i:] for i in range(n)]))
        if not counts:
            continue
        if n <= 4:
            ngram, count = counts.most_common(1)[0]
            out[f"fraction_of_characters_in_most_common_{n}grams"] = count * sum(len(w) for w in ngram) / max(
                character_count, 1)
        else:
            total = sum(c * sum(len(w) for w in ng) for ng, c in counts.items())
            dup = sum(c * sum(len(w) for w in ng) for ng, c in counts.items() if c > 1)
            out[f"fraction_of_characters_in_duplicate_{n}grams"] = dup / max(total, 1)
    lines = text.split("\n")
    out["fraction_of_lines_starting_with_bullet_point"] = sum(
        1 for line in lines if line.startswith(("*", "-"))) / len(lines)
    out["fraction_of_lines_ending_with_ellipsis"] = sum(1 for line in lines if line.endswith("\u2026")) / len(lines)
    line_counts = Counter(lines)
    out["fraction_of_duplicate_lines"] = sum(c for c in line_counts.values() if c > 1) / len(lines)
    out["fraction_of_characters_in_duplicate_lines"] = sum(
        len(line) * c for line, c in line_counts.items() if c > 1) / max(character_count, 1)
    return out


def c4(text: str) -> list[tuple[int, int, str, float]]:
    spans = []
    lowered = text.lower()
    end = len(text)
    if "{" in lowered:
        spans.append((0, end, "has_curly_brace", 1.0))
    if "lorem ipsum" in lowered:
        spans.append((0, end, "has_lorem_ipsum", 1.0))
    if "javascript" in lowered:
        spans.append((0, end, "has_javascript", 1.0))
    if any(w in NAUGHTY_WORDS for w in lowered.split()) or any(p in lowered for p in NAUGHTY_PHRASES):
        spans.append((0, end, "has_naughty_word", 1.0))
    start = count = 0
    for sent in lowered.split("\n"):
        stop = start + len(sent)
        if stop != len(lowered):
            stop += 1
        sent = sent.strip()
        if not sent.endswith((".", "?", "!", '"')):
            spans.append((start, stop, "lines_with_no_ending_punctuation", 1.0))
        if len(sent.split()) < 3:
            spans.append((start, stop, "lines_with_too_few_words", 1.0))
        count += 1
        start = stop
    spans.append((0, end, "line_count", float(count)))
    return spans


def pii_fast_v2(text: str) -> list[tuple[int, int, str, float]]:
    spans: list[tuple[int, int, str, float]] = []
    paragraphs = [m.span() for m in re.finditer(r"([^\n]*\n|[^\n]+$)", text) if m.group().strip()]
    if text.count("?") > 10_000:
        paragraphs = []
    for start, stop in paragraphs:
        para = text[start:stop]
        if "@" in para:
            for m in DOLMA_EMAIL.finditer(para):
                addressee, domain = m.group(1).split("@", 1)
                if addressee.strip() == "(" or "." not in domain:
                    continue
                spans.append((m.start() + start, m.end() + start, "EMAIL_ADDRESS", 1.0))
        if re.search(r"\d", para):
            spans.extend((m.start() + start, m.end() + start, "PHONE_NUMBER", 1.0) for m in DOLMA_PHONE.finditer(para))
        if re.search(r"\.[^\s]", para):
            spans.extend((m.start() + start, m.end() + start, "IP_ADDRESS", 1.0) for m in DOLMA_IP.finditer(para))
    count = float(len(spans))
    spans.append((0, len(text), "doc_count", count))
    frac = sum(s[1] - s[0] for s in spans) / len(text) if text else -1.0
    spans.append((0, len(text), "doc_frac", frac))
    return spans
