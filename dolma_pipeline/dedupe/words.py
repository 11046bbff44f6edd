"""Dolma's word tokenizer for n-gram paragraph dedupe: Unicode (UAX #29) word-break segments that hold a
character that is not white space.

This is dolma 1.2.1's `wimbd::tokens::tokenize` (Rust): `split_word_bounds()` of the `unicode-segmentation`
crate, keeping the segments with a character for which `char::is_whitespace` is false. Punctuation marks
are words ("(", "-", "–"); "1,000", "2.0" and "don't" are one word each; runs of white space are dropped.

Three ways to the same segments, chosen per paragraph by what it contains:
- ASCII text: one regular expression of the ASCII word-break rules (letters, digits and "_" join; ":",
  ".", "'" join two letters; ",", ";", ".", "'" join two digits; any other character stands alone),
  by the standard library's `re` (2x faster than `regex` here);
- text without the Word_Break classes those rules leave out (Extend, Format, ZWJ, Katakana, Hebrew
  letters, regional indicators, line breaks): the same expression over Unicode's Word_Break classes;
- anything else: the `regex` module's UAX #29 word boundaries (`(?w)\\b`), segment by segment.
White space is Rust's (the Unicode White_Space property): unlike Python's `str.isspace`, the ASCII
separators U+001C..U+001F are not white space, so they are words here as in Dolma.
"""

from __future__ import annotations

import re

import regex

# Unicode White_Space (Rust's char::is_whitespace)
_WHITE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# letters, digits and "_" join (WB5, WB8-WB10, WB13a/b); ":", ".", "'" join two letters (WB6/7); ",", ";",
# ".", "'" join two digits (WB11/12); any other character is a segment of its own (WB999)
_ASCII_JOINED = (r"[A-Za-z0-9_]+(?:(?:(?<=[A-Za-z])[:.'](?=[A-Za-z])|(?<=[0-9])[,;.'](?=[0-9]))"
                 r"[A-Za-z0-9_]+)*")
_L, _N, _E = r"\p{WB=ALetter}", r"\p{WB=Numeric}", r"\p{WB=ExtendNumLet}"
_UNICODE_JOINED = (rf"[{_L}{_N}{_E}]+(?:(?:(?<={_L})[\p{{WB=MidLetter}}\p{{WB=MidNumLet}}\p{{WB=Single_Quote}}](?={_L})"
                   rf"|(?<={_N})[\p{{WB=MidNum}}\p{{WB=MidNumLet}}\p{{WB=Single_Quote}}](?={_N}))[{_L}{_N}{_E}]+)*")
#: the Word_Break classes (and U+202F, the one white space that joins words) the two expressions leave out
OUTSIDE_THE_RULES = regex.compile(r"[\p{WB=Extend}\p{WB=ZWJ}\p{WB=Format}\p{WB=Katakana}\p{WB=Hebrew_Letter}"
                                  r"\p{WB=Regional_Indicator}\p{WB=CR}\p{WB=LF}\p{WB=Newline}\u202f]")


def ascii_words_pattern(single: str) -> re.Pattern:
    """Word-break segments of ASCII text: joined runs, or one character of the class `single`."""
    return re.compile(f"{_ASCII_JOINED}|{single}")


def unicode_words_pattern(single: str) -> regex.Pattern:
    """Word-break segments of text without OUTSIDE_THE_RULES characters: joined runs over Unicode's
    Word_Break classes, or one character of the class `single`."""
    return regex.compile(f"{_UNICODE_JOINED}|{single}")


_ASCII_WORDS = ascii_words_pattern(r"[^\t\n\x0b\x0c\r ]")
_UNICODE_WORDS = unicode_words_pattern(f"[^{_WHITE}]")
_BOUNDARY = regex.compile(r"(?w)\b")
_NOT_WHITE = regex.compile(f"[^{_WHITE}]")


def tokenize(text: str) -> list[str]:
    """The words of `text` as Dolma's n-gram dedupe sees them (see the module docstring)."""
    if text.isascii():
        return _ASCII_WORDS.findall(text)
    if not OUTSIDE_THE_RULES.search(text):
        return _UNICODE_WORDS.findall(text)
    return uax29_words(text)


def uax29_words(text: str) -> list[str]:
    """The general path: every UAX #29 segment that holds a character that is not white space."""
    cuts = sorted({0, len(text), *(m.start() for m in _BOUNDARY.finditer(text))})
    segments = (text[a:b] for a, b in zip(cuts, cuts[1:]))
    return [s for s in segments if _NOT_WHITE.search(s)]
