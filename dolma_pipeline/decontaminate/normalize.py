"""What two pieces of text must share to count as the same: the normalisation and the word counts.

Paragraph normalisation (each step can be turned off in `dedupe.normalize`), applied to every line of a
document at once with C-level string operations, never changing the number of lines:

1. `nfc`: Unicode canonical composition (NFC), so NFD and NFC spellings of a text are equal;
2. `case`: full Unicode case folding (`str.casefold`: "Straße" and "STRASSE" are equal), then NFC again;
3. `punctuation`: at either end of a paragraph, every character that is not a letter or digit (Python's
   `\\w` less the underscore: punctuation, symbols, whitespace, combining marks) is dropped;
4. `whitespace`: whitespace at the ends is dropped and every run of whitespace inside is one space.

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

_LEADING_NON_WORD = re.compile(r"\n(?:[^\w\n]|_)+")
_LEADING_SPACE = re.compile(r"\n[^\S\n]+")
# runs of two or more whitespace characters, or one that is not a plain space ("\n" is the line separator)
_ODD_SPACE = re.compile(r"[^\S\n]{2,}|[^\S \n]")
_WORD = regex.compile(r"[\w\p{M}]+")


def normalize_lines(text: str, rules: NormalizeConfig) -> str:
    """`text` with every "\\n"-separated line normalised on its own; the line count is unchanged."""
    ascii_text = text.isascii()
    if not ascii_text and rules.nfc and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if rules.case:
        if ascii_text:
            text = text.lower()
        else:
            text = text.casefold()
            if rules.nfc and not unicodedata.is_normalized("NFC", text):  # folding may decompose
                text = unicodedata.normalize("NFC", text)
    if rules.punctuation:
        text = _strip_line_ends(text, _LEADING_NON_WORD)
    elif rules.whitespace:
        text = _strip_line_ends(text, _LEADING_SPACE)
    if rules.whitespace:
        text = _ODD_SPACE.sub(" ", text)
    return text


def _strip_line_ends(text: str, leading: re.Pattern) -> str:
    """Drop what `leading` matches after every "\\n" at the start and, on the reversed text, at the end
    of every line. Patterns anchored on a literal "\\n" are searched in linear time, where a pattern
    anchored at the line end would rescan a long run of punctuation from each of its characters."""
    text = leading.sub("\n", "\n" + text)[1:]
    return leading.sub("\n", "\n" + text[::-1])[1:][::-1]


def normalize_paragraph(paragraph: str, rules: NormalizeConfig) -> str:
    """One paragraph normalised (a separator inside it counts as a space)."""
    return normalize_lines(paragraph.replace("\n", " "), rules)


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
    an upper bound. Only paragraphs between the two bounds are segmented.
    """
    tokens = paragraph.split()
    if len(tokens) >= n and "\u202f" not in paragraph:
        return True
    if sum(map(len, tokens)) < n:
        return False
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
        word = word.casefold()
        if rules.nfc:
            word = unicodedata.normalize("NFC", word)
    return word
