"""The documented normalisation and Dolma's word count."""

from __future__ import annotations

import random
import unicodedata

import pytest

from dolma_pipeline.decontaminate.config import NormalizeConfig
from dolma_pipeline.decontaminate.normalize import (
    has_min_words,
    normalize_lines,
    normalize_paragraph,
    uniseg_word_count,
    words,
)
from tests.decontaminate.conftest import CLEAN, EVAL, SHORT_EVAL

ON = NormalizeConfig()
PARAGRAPH = "Le Café était fermé ce matin, alors nous avons marché jusqu'à la gare."


@pytest.mark.parametrize("variant", [
    PARAGRAPH.upper(),
    PARAGRAPH.casefold(),
    "  " + PARAGRAPH.replace(" ", " \t  ") + "\t ",
    "\u00a0" + PARAGRAPH.replace(" ", "\u2003") + "\r",
    "— " + PARAGRAPH[:-1] + " !!",
    "* « " + PARAGRAPH + " »",
    unicodedata.normalize("NFD", PARAGRAPH),
    unicodedata.normalize("NFD", PARAGRAPH.upper()),
])
def test_each_documented_normalisation_gives_the_same_paragraph(variant):
    assert normalize_paragraph(variant, ON) == normalize_paragraph(PARAGRAPH, ON)


@pytest.mark.parametrize("other", [
    PARAGRAPH.replace("matin, alors", "matin alors"),  # punctuation inside the paragraph counts
    PARAGRAPH.replace("était", "etait"),  # accents are not folded
    PARAGRAPH.replace("gare", "garde"),
])
def test_differences_inside_a_paragraph_are_kept(other):
    assert normalize_paragraph(other, ON) != normalize_paragraph(PARAGRAPH, ON)


def test_each_step_can_be_turned_off():
    assert normalize_paragraph(PARAGRAPH.upper(), NormalizeConfig(case=False)) != normalize_paragraph(PARAGRAPH, ON)
    assert normalize_paragraph(PARAGRAPH + "!", NormalizeConfig(punctuation=False)).endswith("gare.!")
    assert "  " in normalize_paragraph("a  b", NormalizeConfig(whitespace=False))
    nfd = unicodedata.normalize("NFD", PARAGRAPH)
    assert normalize_paragraph(nfd, NormalizeConfig(nfc=False)) != normalize_paragraph(PARAGRAPH, ON)


def test_case_folding_is_full_folding():
    assert normalize_paragraph("STRASSE im Winter", ON) == normalize_paragraph("Straße im Winter", ON)
    turkish = "İmli biçim için pozitif bir sayıdan önce bir boşluk bırakılması gerekir."
    assert normalize_paragraph(turkish.upper(), ON) == normalize_paragraph(turkish, ON)
    assert words(turkish.upper(), ON) == words(turkish, ON)


def test_lines_are_normalised_one_by_one_and_none_is_lost():
    text = "  First LINE.\r\n\n---\n\u2028x\u3000y\n«\u202fBonjour\u202f»\n"
    lines = normalize_lines(text, ON)
    assert len(lines) == len(text.split("\n"))
    assert lines == ["first line", "", "", "x y", "bonjour", ""]
    # the ASCII fast path and the general path agree (a non-ASCII line forces the general one)
    ascii_text = "\n".join(EVAL[:2] + CLEAN + ["  a -- b  ", "...", "x_y_", "(1) Item: one;"])
    assert normalize_lines(ascii_text + "\né", ON)[:-1] == normalize_lines(ascii_text, ON)


def test_a_long_run_of_punctuation_is_stripped():
    line = "=" * 200_000 + " title " + "-" * 200_000
    assert normalize_lines(line, ON) == ["title"]


def test_word_count_is_dolmas_uniseg_count():
    assert uniseg_word_count(SHORT_EVAL) == 12
    assert all(uniseg_word_count(p) >= 13 for p in EVAL)
    rng = random.Random(3)
    alphabet = "ab1_:.',;\" -!?\t\x1c()"
    fuzz = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(2000)]
    samples = [*EVAL, *CLEAN, SHORT_EVAL, "l'été 1,5 km: 3.14 a.b.c e.g. U.S.A. x_y don't", "«\u202fBonjour\u202f» le monde",
               "東京は日本の首都です。とても大きい都市です。", "word\u202fword " * 7, "Über den Wolken, 1.234,5 km \x1c weit",
               "Привет, мир: 3,14 и ещё «\u00a0цитата\u00a0» l'été", "Ελληνικά: α·β γ' δ. 2,5", "שלום עולם וגם “שם”",
               "カタカナの文 テスト", "नमस्ते दुनिया, यह एक परीक्षण है", "🇫🇷 drapeau 👍🏽 ok", *fuzz]
    for text in samples:
        count = uniseg_word_count(text)
        for n in (count - 1, count, count + 1):
            if n >= 1:
                assert has_min_words(text, n) == (count >= n), (text, n, count)


def test_ngram_words_are_normalised():
    text = "Cafe\u0301 au LAIT, s'il vous plaît!"
    assert words(text, ON) == ["café", "au", "lait", "s", "il", "vous", "plaît"]
    assert words(text.upper(), ON) == words(unicodedata.normalize("NFC", text), ON)
