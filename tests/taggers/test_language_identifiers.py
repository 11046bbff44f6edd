"""The language identifiers' shared engine: a text's scores are computed once per process (`ScoreMemo`), with
the values the library gives for each text on its own."""

from __future__ import annotations

import pytest

from dolma_pipeline.documents import Document
from dolma_pipeline.tagger import TAGGERS
from taggers.language_identifiers import ScoreMemo

BOILERPLATE = "Required properties:\n"
PAGES = [
    f"{BOILERPLATE}The committee approved the budget for next year.\nExample:\n{BOILERPLATE}",
    f"Le comité a approuvé le budget de l'année prochaine.\n{BOILERPLATE}Example:\n",
    f"{BOILERPLATE}Der Ausschuss hat den Haushalt genehmigt.\n",
]


def test_memo_keeps_the_most_recently_used_texts_within_its_bounds():
    memo = ScoreMemo(max_texts=3, max_chars=10)
    for text in ("a", "bb", "ccc"):
        memo.put(text, [("en", float(len(text)))])
    assert memo.get("a") == [("en", 1.0)]  # "a" is now the most recent
    memo.put("dddd", [])  # 10 characters: within both bounds
    assert len(memo) == 4 - 1 and memo.get("bb") is None and memo.chars == 1 + 3 + 4
    memo.put("eeeee", [])  # a fourth text: the least recently used ("ccc") goes
    assert memo.get("ccc") is None and memo.get("a") == [("en", 1.0)] and memo.chars == 1 + 4 + 5
    memo.put("ffffff", [])  # 16 characters: the least recently used go until it fits
    assert memo.get("dddd") is None and memo.get("eeeee") is None and memo.chars == 1 + 6
    memo.put("x" * 11, [])  # longer than the whole memo: not kept
    assert memo.get("x" * 11) is None and len(memo) == 2


def test_memo_scores_each_distinct_text_once():
    memo, calls = ScoreMemo(), []

    def score(texts):
        calls.append(list(texts))
        return [[("en", float(len(t)))] for t in texts]

    assert memo.scores(["ab", "c", "ab"], score) == [[("en", 2.0)], [("en", 1.0)], [("en", 2.0)]]
    assert memo.scores(["c", "def"], score) == [[("en", 1.0)], [("en", 3.0)]]
    assert calls == [["ab", "c"], ["def"]]


def _library_langdetect(text: str) -> list[tuple[str, float]]:
    """Dolma's langdetect taggers on one text: a seed-0 detector from the library itself."""
    from langdetect import PROFILES_DIRECTORY, DetectorFactory, LangDetectException

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)
    detector = factory.create()
    try:
        detector.append(text)
        return [(r.lang, r.prob) for r in detector.get_probabilities()]
    except LangDetectException:
        return []


def _paragraph_scores(spans, language_types):
    return [(s.start, s.end, s.type, s.score) for s in spans if s.type in language_types]


def test_langdetect_paragraphs_score_each_distinct_paragraph_once(monkeypatch):
    pytest.importorskip("langdetect")
    from taggers.language_langdetect import shared_detector

    tagger = TAGGERS.get("langdetect_paragraph_v1")()
    tagger.setup()
    detector = shared_detector()
    asked: list[str] = []
    probabilities = detector.probabilities
    monkeypatch.setattr(detector, "probabilities", lambda texts: asked.extend(texts) or probabilities(texts))
    docs = [Document.from_fields(str(i), text) for i, text in enumerate(PAGES)]
    got = tagger.predict_batch(docs)
    assert len(asked) == len(set(asked)) and asked.count(BOILERPLATE) <= 1
    for doc, spans in zip(docs, got):
        expected = []
        for start, end in _paragraphs(doc.text):
            expected += [(start, end, lang, p) for lang, p in _library_langdetect(doc.text[start:end])]
        assert [(s.start, s.end, s.type, s.score) for s in spans] == expected
    asked.clear()
    again = [Document.from_fields("again", f"{BOILERPLATE}Example:\n")]
    assert tagger.predict_batch(again)[0] and asked == []  # both lines remembered


def _paragraphs(text: str) -> list[tuple[int, int]]:
    from taggers.paragraphs import paragraph_bounds

    return paragraph_bounds(Document.from_fields("p", text))


def test_lingua_with_memo_gives_the_librarys_values():
    """Within 1e-9: Lingua's own sums vary in the last bits from call to call on the same text."""
    lingua = pytest.importorskip("lingua")
    detector = lingua.LanguageDetectorBuilder.from_languages(*lingua.Language.all()).build()
    tagger = TAGGERS.get("lingua_par_v1")()
    tagger.setup()
    docs = [Document.from_fields(str(i), text) for i, text in enumerate(PAGES + PAGES)]
    for doc, spans in zip(docs, tagger.predict_batch(docs)):
        got: dict[tuple[int, int], list[tuple[str, float]]] = {}
        for s in spans:
            got.setdefault((s.start, s.end), []).append((s.type, s.score))
        expected = {}
        for start, end in _paragraphs(doc.text):
            values = detector.compute_language_confidence_values(doc.text[start:end])
            expected[start, end] = {v.language.iso_code_639_1.name.lower(): v.value for v in values}
        assert list(got) == list(expected)
        for bounds, pairs in got.items():
            assert dict(pairs) == pytest.approx(expected[bounds], abs=1e-9)
            # by confidence, then code: Lingua's own order of equal confidences changes between processes,
            # and the attribute keys follow this order
            assert pairs == sorted(pairs, key=lambda p: (-p[1], p[0]))


LIBRARIES = {"cld2": "pycld2", "cld3": "gcld3", "langdetect": "langdetect", "lingua": "lingua"}


@pytest.mark.parametrize("name", sorted(n for n in TAGGERS.names() if n.split("_")[0] in LIBRARIES))
def test_attribute_values_group_the_spans_as_the_runtime_would(name):
    """The identifiers' `attribute_values` (which builds no `Span`s) against the default grouping of their
    `predict_batch` spans, on the same scores (the last texts' scores are shared)."""
    pytest.importorskip(LIBRARIES[name.split("_")[0]])
    from dolma_pipeline.tagger import Tagger

    tagger = TAGGERS.get(name)()
    docs = [Document.from_fields(str(i), text) for i, text in enumerate([*PAGES, "", "\n\n"])]
    expected = Tagger.attribute_values(tagger, docs)
    got = tagger.attribute_values(docs)
    assert [list(d.items()) for d in got] == [list(d.items()) for d in expected]
