"""Dolma's e-mail and phone regexes in linear time: the same matches as `re.finditer`, bounded time."""

from __future__ import annotations

import random
import time

import pytest

from dolma_pipeline.documents import Document
from taggers.pii import _PHONE_AFTER_NON_SPACE, DOLMA_EMAIL, DOLMA_PHONE, DolmaFastPiiRegex, PiiRegexV3
from taggers.pii_dolma_scan import dolma_email_matches, dolma_phone_matches

EMAIL_ALPHABET = "ab.@ \n,()x:é\t?;\r!\u00a0"
PHONE_ALPHABET = "1234 -.()\n\ta"


def _texts(alphabet: str, count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        yield "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def test_email_matches_equal_finditer_on_random_texts():
    for text in _texts(EMAIL_ALPHABET, 60000, 3):
        expected = [(m.start(), m.end(), m.start(1), m.end(1)) for m in DOLMA_EMAIL.finditer(text)]
        assert list(dolma_email_matches(text, 0, len(text))) == expected, text


def test_email_matches_equal_finditer_within_lines():
    for text in _texts(EMAIL_ALPHABET, 20000, 4):
        start = 0
        for line in text.split("\n"):
            end = min(len(text), start + len(line) + 1)
            expected = [(m.start(), m.end(), m.start(1), m.end(1)) for m in DOLMA_EMAIL.finditer(text, start, end)]
            assert list(dolma_email_matches(text, start, end)) == expected, (text, start, end)
            start = end


def test_phone_matches_equal_finditer_on_random_texts():
    for text in _texts(PHONE_ALPHABET, 60000, 5):
        start = 0
        for line in text.split("\n"):
            end = min(len(text), start + len(line) + 1)
            expected = [m.span() for m in DOLMA_PHONE.finditer(text, start, end)]
            got = [m.span() for m in dolma_phone_matches(DOLMA_PHONE, _PHONE_AFTER_NON_SPACE, text, start, end)]
            assert got == expected, (text, start, end)
            start = end


HOSTILE = {  # 200 KB lines on which Dolma's regexes backtrack for minutes to hours
    "word then @": "x" * 200_000 + "@",
    "dots then @": "." * 200_000 + "@",
    "minified code": "a.b(c,d);if(e){f=g[0]}else{h=1};" * 6000 + "u@v.org",
    "many @": "a@" * 100_000,
    "spaces then digits": " " * 200_000 + "1234567890",
    "commas and spaces": " ," * 100_000 + "a@b.c",
}


@pytest.mark.parametrize("tagger_class", [DolmaFastPiiRegex, PiiRegexV3])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_pii_regexes_are_linear_on_hostile_lines(name, tagger_class):
    tagger = tagger_class()
    started = time.process_time()
    spans = tagger.predict(Document.from_fields("h", HOSTILE[name]))
    assert time.process_time() - started < 2  # ~0.05 s; hours before
    assert [s.type for s in spans[-2:]] == ["doc_count", "doc_frac"]
