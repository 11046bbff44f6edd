from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from dolma_pipeline.assets import asset_path
from dolma_pipeline.documents import Document
from dolma_pipeline.errors import ConfigError
from taggers.fasttext_lid import huffman_paths
from taggers.language import EnglishDocument, EnglishParagraphWithDocScore, prepare

ENGLISH = "The committee approved the budget for next year after a long discussion about priorities."
FRENCH = "Le comité a approuvé le budget de l'année prochaine après une longue discussion sur les priorités."


def by_type(spans):
    out = {}
    for s in spans:
        out.setdefault(s.type, []).append(s)
    return out


def test_english_document(tagger_factory):
    tagger = tagger_factory("ft_lang_id_en_doc_v2")
    en, fr = tagger.predict_batch([Document.from_fields("en", ENGLISH), Document.from_fields("fr", FRENCH)])
    assert by_type(en)["en"][0].score > 0.8
    assert by_type(fr)["en"][0].score < 0.1
    assert by_type(fr)["not_en"][0].score == pytest.approx(1 - by_type(fr)["en"][0].score)
    assert (en[0].start, en[0].end) == (0, len(ENGLISH))


def test_paragraphs_with_doc_score(tagger_factory):
    tagger = tagger_factory("ft_lang_id_en_paragraph_with_doc_score_v2")
    text = f"{ENGLISH}\n\n   \n{FRENCH}"
    spans = by_type(tagger.predict(Document.from_fields("d", text)))
    en = spans["en"]
    # Dolma's paragraphs: a line with its newline; the empty and whitespace-only lines are skipped
    assert [(s.start, s.end) for s in en] == [(0, len(ENGLISH) + 1), (len(text) - len(FRENCH), len(text))]
    assert en[0].score > 0.8 and en[1].score < 0.1
    expected = sum((s.end - s.start) * s.score for s in en) / len(text)
    assert spans["doc_en"][0].score == pytest.approx(expected)
    assert spans["doc_not_en"][0].score == pytest.approx(1 - expected)


def test_all_languages_threshold(tagger_factory):
    from taggers.language import AllLanguagesDocument

    tagger = AllLanguagesDocument(threshold=0.5)
    tagger.setup()
    spans = tagger.predict(Document.from_fields("fr", FRENCH))
    assert [s.type for s in spans] == ["fr"]


EDGE_CASES = [ENGLISH, FRENCH, "", "東京は日本の首都です。", "Ein kurzer deutscher Satz mit\tTab.", "a " * 500,
              "x" * 300 + " a word longer than the hashed limit, then </s> and an\x00embedded NUL",
              "</s>", "ein satz </s> then english words </s> more", "</s>x is one word, not the end"]
PARITY_TEXTS = 2400


def _round_robin(groups: dict[str, list[str]], n: int) -> list[str]:
    """Up to n texts, taking one from each language in turn (so no language crowds out the others)."""
    out: list[str] = []
    queues = [list(reversed(texts)) for _, texts in sorted(groups.items())]
    while len(out) < n and any(queues):
        for queue in queues:
            if queue and len(out) < n:
                out.append(queue.pop())
    return out


def multilingual_texts(n: int = PARITY_TEXTS) -> tuple[list[str], int]:
    """Real human-written texts in many languages, and the number of languages.

    The test corpus when present ($DOLMA_TEST_CORPUS, default /tmp/dolma-corpus/dolma: `lid_eval` paragraphs
    and `multilingual` documents with their language labels); otherwise the system's manual pages in every
    language it ships (dolma_pipeline/demo_data.py), whole and cut into paragraphs."""
    import glob
    import gzip

    import orjson

    corpus = os.environ.get("DOLMA_TEST_CORPUS", "/tmp/dolma-corpus/dolma")
    groups: dict[str, list[str]] = {}
    files = sorted(glob.glob(f"{corpus}/lid_eval/documents/*.jsonl.gz"))[:1]
    files += sorted(glob.glob(f"{corpus}/multilingual/documents/*.jsonl.gz"))[:1]
    for path in files:
        with gzip.open(path) as fh:
            for line in fh:
                doc = orjson.loads(line)
                groups.setdefault(doc["metadata"].get("lang_base", "?"), []).append(doc["text"])
    if not groups:
        from dolma_pipeline.demo_data import manpages

        for doc in manpages(limit_per_language=40):
            pieces = [doc["text"], *(p for p in doc["text"].split("\n\n") if len(p.strip()) > 20)]
            groups.setdefault(doc["metadata"]["lang"], []).extend(pieces)
    return _round_robin(groups, n), len(groups)


def test_cached_classifier_equals_fasttext(tagger_factory):
    tagger = tagger_factory("ft_lang_id_doc_v1")
    real, languages = multilingual_texts()
    # never silently fewer: thousands of real texts in many languages, plus the edge cases
    assert len(real) == PARITY_TEXTS and languages >= 15, (len(real), languages)
    texts = EDGE_CASES + real
    ours = tagger.scores(texts)
    assert ours.shape == (len(texts), len(tagger.labels))
    # fastText's own probabilities; the labels it leaves out (probability underflowed) are 0
    expected = np.zeros_like(ours)
    top = []
    for i, text in enumerate(texts):
        labels, probabilities = tagger.model.predict(prepare(text), k=-1)
        for label, p in zip(labels, probabilities, strict=True):
            expected[i, tagger.label_index[label.removeprefix("__label__")]] = p
        top.append(tagger.label_index[labels[0].removeprefix("__label__")])
    bad = np.nonzero(np.abs(ours - expected).max(axis=1) > 1e-4)[0]
    assert not len(bad), texts[bad[0]]
    assert np.array_equal(np.argmax(ours, axis=1), np.array(top))
    assert len(set(top)) >= 15  # the texts really are in many languages, as fastText itself sees them
    # the English taggers evaluate only the tree nodes on the path to `en`: same probability
    english = tagger_factory("ft_lang_id_en_doc_v2").scores(texts)
    assert english.shape == (len(texts), 1)
    assert english[:, 0] == pytest.approx(ours[:, tagger.label_index["en"]], abs=1e-12)


def test_huffman_paths_give_a_distribution():
    right, left = huffman_paths([50, 30, 10, 5, 5])
    assert right.shape == (5, 4)
    # every label has a path; a fair tree (sigmoid 0.5 everywhere) gives probabilities summing to 1
    depth = (right + left).sum(axis=1)
    assert np.all(depth >= 1)
    assert np.sum(0.5 ** depth) == pytest.approx(1.0)


def test_model_path_option(tmp_path):
    local = tmp_path / "model.ftz"
    shutil.copy(asset_path("lid.176.ftz"), local)
    tagger = EnglishDocument(model_path=str(local))
    tagger.setup()
    assert tagger.predict(Document.from_fields("en", ENGLISH))[0].score > 0.8
    with pytest.raises(ConfigError, match="does not exist"):
        EnglishDocument(model_path=str(tmp_path / "missing.bin")).setup()
    with pytest.raises(ConfigError, match="unknown option"):
        EnglishParagraphWithDocScore(modle_path="typo")


def test_vectorised_ngrams_equal_fasttext_subwords(tagger_factory):
    from taggers.fasttext_ngrams import NgramModel

    model = tagger_factory("ft_lang_id_doc_v1").model
    ngrams = NgramModel(asset_path("lid.176.ftz"))
    words = ["the", "</s>", "<", ">", "<>", "naïve", "東京都", "😀x", "a", "", "x" * 40, "données", "ab\udc80".encode("utf-8", "replace").decode()]
    sums, sizes = ngrams.word_sums(words)
    for i, word in enumerate(words):
        ids = model.get_subwords(word)[1]
        assert sizes[i] == len(ids), word
        expected = np.asarray(model.get_word_vector(word), dtype=np.float64) * len(ids)
        assert sums[i] == pytest.approx(expected, abs=1e-4), word


def test_cache_eviction_keeps_predictions(tagger_factory, monkeypatch):
    import taggers.fasttext_lid as lid

    tagger = tagger_factory("ft_lang_id_doc_v1")
    classifier = lid.CachedWordClassifier(tagger.model, asset_path("lid.176.ftz"))
    texts = [ENGLISH, FRENCH, ENGLISH + " " + FRENCH, "", "zzq yyx " * 20]
    before = classifier.predict_all(texts)
    monkeypatch.setattr(lid, "CACHE_LIMIT", 5)
    classifier.predict_all(texts)  # words used twice survive the next eviction
    after = classifier.predict_all(texts)
    assert len(classifier.index) < 200
    assert after == pytest.approx(before, abs=1e-9)
    assert classifier.predict_all([]).shape == (0, len(classifier.labels))
