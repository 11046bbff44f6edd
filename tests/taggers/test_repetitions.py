"""`paragraph_repetitions_v1` from the whole text's `repetitions_v1` matches equals the plain per-paragraph search."""

from __future__ import annotations

import random

import pytest

from dolma_pipeline.documents import Document
from dolma_pipeline.tagger import TAGGERS
from taggers.paragraphs import paragraph_bounds
from taggers.repetitions import WHOLE_TEXT_SPANS, char_repetitions, char_repetitions_in_paragraphs

# Pieces that make the pattern's hard cases: whitespace the group may hold or skip (Unicode ones, and
# U+0085 / U+2028, which `\s` matches but which do not end a paragraph), newlines that end one, astral
# characters, and groups that overlap their own copies.
PIECES = ["a", "b", "ab", "aba", "x y", " ", "  ", "\t", "\n", "\n\n", "\r", "\u3000", "\x85", "\u2028", "é",
          "😀", "-", "=-", "the cat ", "."]


def hostile_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 12)):
        chunk = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 3)))
        if rng.random() < 0.6:  # repeated, each copy after nothing, a space, a newline or another separator
            separators = [rng.choice(["", "", " ", "\n", "\t", "\u3000", "  ", "\n\n"]) for _ in range(rng.randint(1, 6))]
            chunk = chunk + "".join(sep + chunk for sep in separators)
        parts.append(chunk)
    return "".join(parts)


def per_paragraph(text: str) -> list:
    """Dolma's `paragraph_repetitions_v1` spans: `finditer` on each paragraph's own slice."""
    doc = Document.from_fields("d", text)
    return [span for s, e in paragraph_bounds(doc, keep_empty=True) for span in char_repetitions(text[s:e], s)]


def from_whole_text(text: str) -> list:
    doc = Document.from_fields("d", text)
    return char_repetitions_in_paragraphs(text, paragraph_bounds(doc, keep_empty=True), char_repetitions(text))


@pytest.mark.parametrize("seed", range(4))
def test_from_whole_text_equals_per_paragraph_on_generated_texts(seed):
    rng = random.Random(seed)
    for _ in range(1500):
        text = hostile_text(rng)
        assert from_whole_text(text) == per_paragraph(text), repr(text)


@pytest.mark.parametrize("text", [
    "", "\n", "\n\n\n", "aaaa", "aaa\na", "a\na\na\na\n", "ab ab ab ab\nab ab ab ab", "ab\nab\nab\nab ab ab ab",
    "x\n\nyyyy\n\nzz zz zz zz zz\n", "😀😀😀😀\n😀 😀 😀 😀", "a\x85a\x85a\x85a", "a\u2028a\u2028a\u2028a\na",
    "ab" * 500 + "\n" + "abc " * 300, "no repetition here\nnor here", "aaaa\n" * 3 + "bbbb",
    " \n \n \n \n", "\t\t\t\t\n", "abababab\nb\nb\nb",
])
def test_from_whole_text_equals_per_paragraph_on_hand_picked_texts(text):
    assert from_whole_text(text) == per_paragraph(text)


def test_paragraph_tagger_after_whole_text_tagger_gives_the_plain_result():
    whole_tagger, paragraph_tagger = TAGGERS.get("repetitions_v1")(), TAGGERS.get("paragraph_repetitions_v1")()
    rng = random.Random(7)
    for _ in range(300):
        text = hostile_text(rng)
        shared = Document.from_fields("d", text)
        whole_tagger.predict(shared)
        assert WHOLE_TEXT_SPANS in shared.__dict__  # the fast path runs
        alone = Document.from_fields("d", text)
        assert paragraph_tagger.predict(shared) == paragraph_tagger.predict(alone), repr(text)
        assert WHOLE_TEXT_SPANS not in alone.__dict__  # the plain path does not compute the whole text's
