from __future__ import annotations

import random

import pytest

from dolma_pipeline.documents import Document
from taggers.gopher import SMALL_DOC_WORDS, gopher_spans
from tests.taggers.reference_dolma import gopher as dolma_gopher

VOCAB = ["the", "of", "and", "cat", "dog", "sat", "on", "mat", "#tag", "wait…", "42", "--", "a", "data", "é", "İ",
         "東京", "x", "²³", "Ⅻ", "½", "_", "x\u0301"]


def values(text: str) -> dict[str, float]:
    return {s.type: s.score for s in gopher_spans(Document.from_fields("d", text))}


def random_text(rng: random.Random, n_words: int) -> str:
    words = []
    while len(words) < n_words:
        if words and rng.random() < 0.3:  # repeat an earlier stretch: exercises the duplicate n-grams
            start = rng.randrange(len(words))
            words.extend(words[start : start + rng.randint(2, 14)])
        else:
            words.append(rng.choice(VOCAB))
    pieces = []
    for w in words[:n_words]:
        pieces.append(w)
        pieces.append(rng.choice([" ", " ", " ", "\n", "  ", "\t", "\n- ", "\n* ", "\x1c", "\u2028", "\xa0", "\u3000"]))
    return "".join(pieces)


def test_hand_checked():
    text = "the cat sat\nthe cat sat\n- a dog…"
    v = values(text)
    # words: the cat sat the cat sat - a dog… (9 words, 24 word characters)
    assert v["word_count"] == 9
    assert v["character_count"] == len(text)
    assert v["median_word_length"] == 3.0
    assert v["symbol_to_word_ratio"] == pytest.approx(1 / 9)
    assert v["fraction_of_words_with_alpha_character"] == pytest.approx(8 / 9)
    assert v["required_word_count"] == 2
    assert v["fraction_of_lines_starting_with_bullet_point"] == pytest.approx(1 / 3)
    assert v["fraction_of_lines_ending_with_ellipsis"] == pytest.approx(1 / 3)
    assert v["fraction_of_duplicate_lines"] == pytest.approx(2 / 3)
    assert v["fraction_of_characters_in_duplicate_lines"] == pytest.approx(22 / 24)
    # most common bigram "the cat" (first of the ties) occurs twice: 2 * 6 characters / 24
    assert v["fraction_of_characters_in_most_common_2grams"] == pytest.approx(12 / 24)
    assert "fraction_of_characters_in_duplicate_10grams" not in v  # only 9 words


def test_empty_document_has_only_zero_document_stats():
    v = values("")
    assert v["character_count"] == 0 and v["word_count"] == 0
    assert not any(k.startswith("fraction_of_characters_in_") and "grams" in k for k in v)


@pytest.mark.parametrize("n_words", [0, 1, 5, SMALL_DOC_WORDS - 1, SMALL_DOC_WORDS, 120, 800])
def test_matches_dolma_reference(n_words):
    rng = random.Random(n_words)
    for _ in range(30):
        text = random_text(rng, n_words)
        ours = values(text)
        ref = dolma_gopher(text)
        assert set(ref) <= set(ours)
        assert {k for k in ours if k.endswith("grams")} == {k for k in ref if k.endswith("grams")}, text
        for key, value in ref.items():
            assert ours[key] == pytest.approx(value, abs=1e-12), (key, text)


def test_tie_breaking_picks_first_seen_ngram():
    # "bb cc" and "a a" both occur twice; Dolma's Counter.most_common keeps the one seen first.
    text = "bb cc x bb cc y a a z a a"
    assert values(text)["fraction_of_characters_in_most_common_2grams"] == dolma_gopher(text)[
        "fraction_of_characters_in_most_common_2grams"]
    long_text = " ".join(["zz yy"] * 3 + [f"w{i}" for i in range(60)] + ["a b"] * 3)
    assert values(long_text)["fraction_of_characters_in_most_common_2grams"] == pytest.approx(
        dolma_gopher(long_text)["fraction_of_characters_in_most_common_2grams"])
