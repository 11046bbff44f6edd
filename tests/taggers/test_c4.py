from __future__ import annotations

import random

import pytest

from dolma_pipeline.documents import Document
from taggers.c4 import C4, _contains_naughty_phrase
from taggers.naughty_words import NAUGHTY_PHRASES
from tests.taggers.reference_dolma import c4 as dolma_c4


def spans(text: str) -> list[tuple[int, int, str, float]]:
    return [(s.start, s.end, s.type, s.score) for s in C4().predict(Document.from_fields("d", text))]


def test_hand_checked():
    text = "Hello there my friend.\nshort line\n{code}"
    got = spans(text)
    assert (0, len(text), "has_curly_brace", 1.0) in got
    # line 2 "short line\n" = [23, 34): no final punctuation, two words
    assert (23, 34, "lines_with_no_ending_punctuation", 1.0) in got
    assert (23, 34, "lines_with_too_few_words", 1.0) in got
    assert (0, 23, "lines_with_no_ending_punctuation", 1.0) not in got
    # the last line has no newline: its span ends at the end of the text
    assert (34, len(text), "lines_with_too_few_words", 1.0) in got
    assert got[-1] == (0, len(text), "line_count", 3.0)


def test_flags():
    assert any(s[2] == "has_lorem_ipsum" for s in spans("Lorem Ipsum dolor sit amet."))
    assert any(s[2] == "has_javascript" for s in spans("Please enable JavaScript to continue."))
    assert not any(s[2] == "has_naughty_word" for s in spans("A perfectly clean sentence."))


VOCAB = ["the", "a", "on", "top", "girl", "tied", "up", "Lorem", "ipsum", "{", "x.", "end!", '"q"', "İ", "JavaScript"]


@pytest.mark.parametrize("seed", range(5))
def test_matches_dolma_reference(seed):
    rng = random.Random(seed)
    for _ in range(200):
        words = [rng.choice(VOCAB) for _ in range(rng.randint(0, 40))]
        if rng.random() < 0.2:
            words.insert(rng.randint(0, len(words)), rng.choice(NAUGHTY_PHRASES))
        text = "".join(w + rng.choice([" ", " ", "\n", "\n\n", "  "]) for w in words)
        if "İ" in text:  # Dolma computes offsets on the lower-cased text, where İ takes two code points
            continue
        assert spans(text) == dolma_c4(text), text


def test_dotted_capital_i_keeps_spans_inside_text():
    text = "İİİİ\nshort\n" * 3
    for start, end, _, _ in spans(text):
        assert 0 <= start <= end <= len(text)
    assert ("\n".join(text.split("\n")[:1]) + "\n") == text[0:5]
    assert (0, 5, "lines_with_too_few_words", 1.0) in spans(text)


@pytest.mark.parametrize("seed", range(3))
def test_phrase_prefilter_is_exact(seed):
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz  \n-'é"
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        if rng.random() < 0.5:
            phrase = rng.choice(NAUGHTY_PHRASES)
            cut = rng.randint(0, len(text))
            text = text[:cut] + phrase + text[cut:]
        assert _contains_naughty_phrase(text) == any(p in text for p in NAUGHTY_PHRASES), text
