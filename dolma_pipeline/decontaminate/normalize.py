"""What two pieces of text must share to count as the same: the normalisation and the word counts.

Paragraph normalisation (each step can be turned off in `dedupe.normalize`), applied to every line of a
document, never changing the number of lines:

1. `nfc`: Unicode canonical composition (NFC), so NFD and NFC spellings of a text are equal;
2. `case`: full Unicode case folding (`str.casefold`: "Straße" and "STRASSE" are equal), Turkish "ı" and
   "İ" folded to "i" (upper-casing Turkish loses the difference), then NFC again;
3. `whitespace`: whitespace at the ends is dropped and every run of whitespace inside is one space
   (whitespace as `str.split` knows it);
4. `punctuation`: at either end of a paragraph, every character that is not a letter or digit
   (`str.isalnum`: punctuation, symbols, the underscore, whitespace, combining marks) is dropped.

Word counts for paragraph mode are Dolma's (`uniseg_length_paragraphs_v1`): the uniseg word-break
segments of the stripped raw paragraph that are not all whitespace (punctuation marks count as words).
Word n-grams use the words `[\\w\\p{M}]+` of the text, NFC and case-folded.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import regex

from dolma_pipeline.decontaminate.config import NormalizeConfig
from dolma_pipeline.dedupe.words import OUTSIDE_THE_RULES as _OUTSIDE_THE_RULES
from dolma_pipeline.dedupe.words import ascii_words_pattern, unicode_words_pattern

# the ASCII characters that are neither letters nor digits ("\n" excepted: it separates the lines)
_ASCII_NON_ALNUM = "".join(chr(c) for c in range(128) if not chr(c).isalnum() and chr(c) != "\n")
_ASCII_OTHER_SPACES = [chr(c) for c in range(128) if chr(c).isspace() and chr(c) not in " \n"]
_SPACE_RUN = re.compile("  +")
_WORD = regex.compile(r"[\w\p{M}]+")
# Unicode word-break segments (dolma_pipeline/dedupe/words.py has the rules); a lone character is any
# that Python's str.isspace does not take for white space
_ASCII_SEGMENT = ascii_words_pattern(r"\S")
_UNICODE_SEGMENT = unicode_words_pattern(r"[^\s\x1c-\x1f]")


def normalize_lines(text: str, rules: NormalizeConfig) -> list[str]:
    """Every "\n"-separated line of `text` normalised on its own (as many lines as `text.split("\n")`)."""
    ascii_text = text.isascii()
    if not ascii_text and rules.nfc and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if rules.case:
        if ascii_text:
            text = text.lower()
        else:
            text = _fold(text)
            if rules.nfc and not unicodedata.is_normalized("NFC", text):  # folding may decompose
                text = unicodedata.normalize("NFC", text)
    if ascii_text:
        return _ascii_lines(text, rules)
    lines = text.split("\n")
    if rules.whitespace:
        lines = [" ".join(line.split()) for line in lines]
    if rules.punctuation:
        lines = [_strip_non_alnum(line) for line in lines]
    return lines


def _ascii_lines(text: str, rules: NormalizeConfig) -> list[str]:
    """`normalize_lines` for ASCII text, by whole-text C-level passes where the general path loops."""
    if rules.whitespace:
        for space in _ASCII_OTHER_SPACES:
            if space in text:
                text = text.replace(space, " ")
        if "  " in text:
            text = _SPACE_RUN.sub(" ", text)
    lines = text.split("\n")
    if rules.punctuation:
        return [line.strip(_ASCII_NON_ALNUM) for line in lines]
    if rules.whitespace:
        return [line.strip(" ") for line in lines]
    return lines


def _fold(text: str) -> str:
    """Full case folding, then Turkish dotless "ı" and dotted "İ" (folded to "i" + U+0307) as plain "i":
    upper-casing Turkish text maps "ı" to "I", so without this an upper-cased paragraph would not match."""
    text = text.casefold()
    if "ı" in text:
        text = text.replace("ı", "i")
    if "i\u0307" in text:
        text = text.replace("i\u0307", "i")
    return text


def _strip_non_alnum(line: str) -> str:
    """`line` without the characters that are not letters or digits (`str.isalnum`) at either end."""
    start, end = 0, len(line)
    while start < end and not line[start].isalnum():
        start += 1
    while end > start and not line[end - 1].isalnum():
        end -= 1
    return line[start:end]


def normalize_paragraph(paragraph: str, rules: NormalizeConfig) -> str:
    """One paragraph normalised (a "\n" inside it counts as a space)."""
    return normalize_lines(paragraph.replace("\n", " "), rules)[0]


# ------------------------------------------------------------------------------------------ word counts
def uniseg_word_count(paragraph: str) -> int:
    """Dolma's word count of a paragraph: uniseg word segments of the stripped text that are not blank."""
    import uniseg.wordbreak

    text = paragraph.strip()
    return sum(1 for w in uniseg.wordbreak.words(text) if w.strip()) if text else 0


def has_min_words(paragraph: str, n: int) -> bool:
    """`uniseg_word_count(paragraph) >= n`, mostly without running uniseg (pure Python, slow).

    Every whitespace-separated token holds at least one counted segment and no segment spans two tokens
    (word-break rules never join across white space, except U+202F, which is ExtendNumLet), so the
    token count is a lower bound; every counted segment holds a non-space character, so their number is
    an upper bound. Only paragraphs between the two bounds are segmented: ASCII ones, and most others, by
    a regular expression with the same rules (checked against uniseg in the tests and on 5,486 non-ASCII
    paragraphs of 50 languages), the rest by uniseg.
    """
    if paragraph.isascii():
        return len(_ASCII_SEGMENT.findall(paragraph)) >= n
    tokens = paragraph.split()
    if len(tokens) >= n and "\u202f" not in paragraph:
        return True
    if sum(map(len, tokens)) < n:
        return False
    if not _OUTSIDE_THE_RULES.search(paragraph):
        return len(_UNICODE_SEGMENT.findall(paragraph)) >= n
    return _cached_count(paragraph) >= n


@lru_cache(maxsize=65536)
def _cached_count(paragraph: str) -> int:
    return uniseg_word_count(paragraph)


# ------------------------------------------------------------------------------------------------- words
def words(text: str, rules: NormalizeConfig) -> list[str]:
    """The normalised words of a text, in order."""
    if text.isascii():
        return _WORD.findall(text.lower() if rules.case else text)
    return [_normalize_word(w, rules) for w in _WORD.findall(text)]


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) code point offsets of the words `words` returns, in the same order."""
    return [m.span() for m in _WORD.finditer(text)]


def _normalize_word(word: str, rules: NormalizeConfig) -> str:
    if rules.nfc:
        word = unicodedata.normalize("NFC", word)
    if rules.case:
        word = _fold(word)
        if rules.nfc:
            word = unicodedata.normalize("NFC", word)
    return word
