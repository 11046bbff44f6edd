"""Dolma's character repetition regex tried only where it can match gives `finditer`'s spans, on the whole
text and per paragraph, whichever of `repetitions_v1` and `paragraph_repetitions_v1` runs first."""

from __future__ import annotations

import random

import pytest

from dolma_pipeline.documents import Document
from dolma_pipeline.tagger import TAGGERS
from taggers.char_repetitions import CHAR_REPETITION, SHORT_GROUP, repetition, repetition_starts
from taggers.paragraphs import paragraph_bounds
from taggers.repetitions import (
    WHOLE_TEXT_ENCODING,
    WHOLE_TEXT_SPANS,
    paragraph_repetitions,
    whole_text_repetitions,
)
from taggers.text_stats import codepoints_of

# Pieces that make the pattern's hard cases: whitespace the group may hold or skip (Unicode ones, and
# U+0085 / U+2028, which `\s` matches but which do not end a paragraph), newlines that end one, astral
# characters, and groups that overlap their own copies.
PIECES = ["a", "b", "ab", "aba", "x y", " ", "  ", "\t", "\n", "\n\n", "\r", "\u3000", "\x85", "\u2028", "é",
          "😀", "-", "=-", "the cat ", "."]
SEPARATORS = ["", "", " ", "\n", "\t", "\u3000", "  ", "\n\n", "\x85"]


def hostile_text(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(0, 12)):
        # groups up to about 40 characters, on both sides of SHORT_GROUP
        chunk = "".join(rng.choice(PIECES) for _ in range(rng.choice([1, 2, 3, 6, 9])))
        if rng.random() < 0.6:  # repeated, each copy after nothing, a whitespace, a newline or two
            chunk += "".join(rng.choice(SEPARATORS) + chunk for _ in range(rng.randint(1, 6)))
        parts.append(chunk)
    return "".join(parts)


def finditer(text: str, bounds: list[tuple[int, int]]) -> list:
    """Dolma's spans: `finditer` on each piece's own slice."""
    return [repetition(m, s) for s, e in bounds for m in CHAR_REPETITION.finditer(text[s:e])]


def check(text: str) -> None:
    paragraphs = paragraph_bounds(Document.from_fields("d", text), keep_empty=True)
    whole, per_paragraph = finditer(text, [(0, len(text))]), finditer(text, paragraphs)
    assert set(s.start for s in whole) <= set(repetition_starts(codepoints_of(text)).tolist())
    assert whole_text_repetitions(Document.from_fields("d", text)) == whole
    assert paragraph_repetitions(Document.from_fields("d", text)) == per_paragraph  # from the possible starts
    shared = Document.from_fields("d", text)
    whole_text_repetitions(shared)
    assert paragraph_repetitions(shared) == per_paragraph  # from the whole text's spans


@pytest.mark.parametrize("seed", range(4))
def test_same_spans_as_finditer_on_generated_texts(seed):
    rng = random.Random(seed)
    for _ in range(1000):
        text = hostile_text(rng)
        try:
            check(text)
        except AssertionError:
            pytest.fail(f"differs on {text!r}")


@pytest.mark.parametrize("text", [
    "", "a", "\n", "\n\n\n", "aaaa", "aaa", "aaa\na", "a\na\na\na\n", "ab ab ab ab\nab ab ab ab",
    "ab\nab\nab\nab ab ab ab", "x\n\nyyyy\n\nzz zz zz zz zz\n", "😀😀😀😀\n😀 😀 😀 😀", "a\x85a\x85a\x85a",
    "a\u2028a\u2028a\u2028a\na", "ab" * 500 + "\n" + "abc " * 300, "no repetition here\nnor here",
    "aaaa\n" * 3 + "bbbb", " \n \n \n \n", "\t\t\t\t\n", "abababab\nb\nb\nb",
    # groups of SHORT_GROUP characters and one more, adjacent, after spaces, across newlines, 3 and 4 times
    *[sep.join([("0123456789abcdefghij" * 2)[:k]] * times) for k in (SHORT_GROUP, SHORT_GROUP + 1, 2 * SHORT_GROUP)
      for sep in ("", " ", "\n", "\u3000") for times in (3, 4, 5)],
    *[sep.join(["The quick brown fox jumps over the lazy dog."] * times) for sep in ("", " ", "\n")
      for times in (3, 4)],
])
def test_same_spans_as_finditer_on_hand_picked_texts(text):
    check(text)


def test_taggers_in_either_order_give_the_same_spans():
    whole_tagger, paragraph_tagger = TAGGERS.get("repetitions_v1")(), TAGGERS.get("paragraph_repetitions_v1")()
    rng = random.Random(7)
    for _ in range(300):
        text = hostile_text(rng)
        whole_first, paragraphs_first = Document.from_fields("d", text), Document.from_fields("d", text)
        first = whole_tagger.predict(whole_first), paragraph_tagger.predict(whole_first)
        assert WHOLE_TEXT_SPANS in whole_first.__dict__
        second = paragraph_tagger.predict(paragraphs_first)
        assert (whole_tagger.predict(paragraphs_first), second) == first, repr(text)


def test_token_names_in_one_run_give_their_own_spans():
    """`tokenizer_repetitions_v1` and `tokenizer_repetitions_v2r2` share a whole text's encoding."""
    names = ["tokenizer_repetitions_v1", "tokenizer_repetitions_v2r2", "paragraph_tokenizer_repetitions_v1"]
    taggers = [TAGGERS.get(name)() for name in names]
    texts = ["", "nothing repeats in this sentence", "la la la la la la\nla la la la", "a b c a b c a b c a b c\n\n",
             "one two three " * 5 + "\n" + "x" * 50, *[hostile_text(random.Random(seed)) for seed in range(30)]]
    alone = [[tagger.predict_batch([Document.from_fields("d", t)])[0] for t in texts] for tagger in taggers]
    shared = [Document.from_fields("d", t) for t in texts]
    together = [tagger.predict_batch(shared) for tagger in taggers]
    assert together == alone
    assert all(any(k.startswith(WHOLE_TEXT_ENCODING) for k in doc.__dict__) for doc in shared)
