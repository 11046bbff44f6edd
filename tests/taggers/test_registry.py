"""Every registered tagger on awkward documents: spans inside the text, offsets in code points."""

from __future__ import annotations

import math

import pytest

from dolma_pipeline.documents import Document
from dolma_pipeline.tagger import TAGGERS

AWKWARD_TEXTS = {
    "empty": "",
    "whitespace": " \n\t \n\n  ",
    "newlines_only": "\n\n\n",
    "one_word": "hello",
    "very_long": ("The quick brown fox jumps over the lazy dog. " * 40 + "\n") * 120
    + "write to someone@example.com or call (555) 123-4567 from 10.0.0.1\n" * 50,
    "chinese": "东京是日本的首都。\n北京是中国的首都，人口众多。联系 li@example.cn",
    "arabic_rtl": "مرحبا بالعالم\nهذا نص عربي للاختبار.",
    "emoji_astral": "😀 mail 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 a@b.com 🎉\n𝒜 line two…\n- bullet #tag",
    "combining_and_dotted_i": "İstanbul İİİ café\u0301 naïve\nİzmir { lorem ipsum }",
    "control_chars": "a\x00b\x1cc\x1fd\r\ne\x0bf\x0cg\u2028h\u00a0i",
    "lone_surrogate": "broken \ud800 text with a@example.com",
}

# Metadata some of Dolma's taggers read: the page's HTML (`cc_re`), URL (URL taggers), extension (code).
METADATA = {"html": '<a href="https://creativecommons.org/licenses/by/4.0/">cc</a>', "url": "https://ads.example.com/x",
            "ext": "py"}


@pytest.mark.parametrize("text_name", sorted(AWKWARD_TEXTS))
@pytest.mark.parametrize("name", TAGGERS.names())
def test_spans_inside_text(name, text_name, tagger_factory):
    tagger = tagger_factory(name)
    text = AWKWARD_TEXTS[text_name]
    doc = Document.from_fields(f"{name}-{text_name}", text, metadata=METADATA)
    spans = tagger.predict(doc)
    assert isinstance(spans, list)
    for span in spans:
        assert 0 <= span.start <= span.end <= len(text), (span, len(text))
        assert isinstance(span.type, str) and span.type
        assert math.isfinite(float(span.score))
        assert len(span.to_json()) == 3


@pytest.mark.parametrize("name", TAGGERS.names())
def test_batch_equals_single(name, tagger_factory):
    tagger = tagger_factory(name)
    texts = ["First document.\nWith two lines.", "", "Zweites Dokument auf Deutsch, bitte.", "x " * 300]
    batch = tagger.predict_batch([Document.from_fields(str(i), t, metadata=METADATA) for i, t in enumerate(texts)])
    singles = [tagger.predict(Document.from_fields(str(i), t, metadata=METADATA)) for i, t in enumerate(texts)]
    assert len(batch) == len(texts)
    for got, want in zip(batch, singles, strict=True):
        assert [(s.start, s.end, s.type) for s in got] == [(s.start, s.end, s.type) for s in want]
        assert [s.score for s in got] == pytest.approx([s.score for s in want], abs=1e-6)


@pytest.mark.parametrize("name", ["pii_regex_v3", "pii_presidio_v1"])
def test_offsets_are_code_points(name, tagger_factory):
    text = "😀😀 𝔘𝔫𝔦 write to bob@example.org now"
    spans = [s for s in tagger_factory(name).predict(Document.from_fields("x", text)) if s.type == "EMAIL_ADDRESS"]
    assert [text[s.start : s.end] for s in spans] == ["bob@example.org"]
