"""`NumpyDetector` gives langdetect's own probabilities, bit for bit, on real and made-up texts; its draws
are `random.Random`'s."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from dolma_pipeline.documents import Document
from taggers.language_langdetect_draws import SeededDraws
from taggers.paragraphs import paragraph_bounds

langdetect = pytest.importorskip("langdetect")

CATALOGUE = Path(__file__).parent / "data" / "catalogue_docs.jsonl.gz"
EDGE_CASES = [
    "", "   ", "1234 5678 !!!", "The committee approved the budget.", "THE COMMITTEE APPROVED THE BUDGET",
    "iPhone NASA USA a", "A", "a", "東京は日本の首都です。", "서울은 한국의 수도입니다", "مرحبا بالعالم، هذا نص عربي",
    "Tiếng Việt có dấu: a\u0300 e\u0301 o\u0303", "Привет, мир! Hello world", "see https://example.com/x?y=1 or "
    "mail me@example.org now", "word  with   many    spaces\t\tand\n\nlines", "«Citation» au 20° degré\u00a0!",
    "ș ț Ș Ț românește", "ひらがな カタカナ ㄅㄆ 漢字", "x" * 12_000, ("abc " * 3000) + "tail",
    "ABC def GHi jKL MNOP qrs", "\ud800 lone surrogate", "Ω≈ç√∫˜µ≤≥÷ ÅÍÎÏ˝ÓÔÒÚÆ☃",
]


def _factory(seed: int = 0):
    from langdetect import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(seed)
    return factory


@pytest.fixture(scope="module")
def detectors():
    from taggers.language_langdetect_numpy import NumpyDetector

    factory = _factory()
    return factory.create(), NumpyDetector(factory)


def library_probabilities(detector, texts: list[str]) -> list[list[tuple[str, float]] | None]:
    """What Dolma's langdetect taggers do with each text: append, get_probabilities, reset."""
    from langdetect import LangDetectException

    out = []
    for text in texts:
        try:
            detector.append(text)
            out.append([(r.lang, r.prob) for r in detector.get_probabilities()])
        except LangDetectException:
            out.append(None)
        finally:
            detector.text = ""
            detector.langprob = None
    return out


def batch_probabilities(detector, texts: list[str]) -> list[list[tuple[str, float]] | None]:
    return [None if langs is None else [(r.lang, r.prob) for r in langs] for langs in detector.probabilities(texts)]


def catalogue_texts(documents: int) -> tuple[list[str], list[str]]:
    with gzip.open(CATALOGUE, "rt", encoding="utf-8") as fh:
        docs = [json.loads(line)["text"] for line in fh][:documents]
    paragraphs = [d[s:e] for d in docs for s, e in paragraph_bounds(Document.from_fields("d", d))]
    return docs, paragraphs


def random_texts(count: int, seed: int) -> list[str]:
    """Texts of words drawn from several scripts, capitals, digits and punctuation."""
    rng = random.Random(seed)
    pool = ("abcdefghijklmnopqrstuvwxyz" "ABCDEFGHIJKLMNOPQRSTUVWXYZ" "éèàçñöüßøåæœ" "абвгдежзийклмн" "αβγδεζηθ"
            "あいうえおアイウエオ" "中文字漢語" "한국어" "عربية" "हिन्दी" "ไทย" "0123456789.,;:!?-'\"()[]" "  \n\t")
    return ["".join(rng.choice(pool) for _ in range(rng.choice([1, 3, 8, 20, 60, 200, 900])))
            for _ in range(count)]


def test_catalogue_documents_and_paragraphs_are_langdetects(detectors):
    library, ours = detectors
    docs, paragraphs = catalogue_texts(12)
    for texts in (docs, paragraphs):
        expected = library_probabilities(library, texts)
        assert batch_probabilities(ours, texts) == expected
        assert library_probabilities(ours, texts) == expected  # one text at a time, through get_probabilities
    assert any(p is None for p in library_probabilities(library, paragraphs))  # code lines with no letters


def test_edge_cases_and_random_texts_are_langdetects(detectors):
    library, ours = detectors
    texts = EDGE_CASES + random_texts(300, seed=1)
    expected = library_probabilities(library, texts)
    assert batch_probabilities(ours, texts) == expected
    assert library_probabilities(ours, texts) == expected
    assert expected[0] is None and expected[3][0][0] == "en"


def test_other_seed_and_more_texts_than_slots():
    from taggers.language_langdetect_numpy import NumpyDetector

    factory = _factory(seed=7)
    texts = random_texts(600, seed=2)[::2] + catalogue_texts(3)[1]
    assert batch_probabilities(NumpyDetector(factory), texts) == library_probabilities(factory.create(), texts)


@pytest.mark.parametrize("seed", [0, 7, 2**40 + 3])
def test_draws_are_random_randoms(seed):
    draws = SeededDraws(seed)
    assert draws.matches_random()
    rng = random.Random(seed)
    position = 0
    for length in (1, 5, 64, 65, 9_999):
        first, second = draws.gauss_pair(position)
        assert (rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0)) == (first, second)
        indices, ends = draws.choices(position + 4, length, 500)
        assert indices.tolist() == [rng.choice(range(length)) for _ in range(500)]
        position = int(ends[-1])
        assert rng.getrandbits(32) == int(draws.words(position, 1)[0])
        position += 1
