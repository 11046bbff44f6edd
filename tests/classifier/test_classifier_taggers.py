"""The classifier taggers: fast path against fastText, Dolma's semantics, sentence splitting, model errors."""

from __future__ import annotations

import random

import numpy as np
import pytest

from dolma_pipeline.classifier.text import split_paragraphs, split_sentences, units
from dolma_pipeline.documents import Document
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.tagger import TAGGERS

EDGE = ["", " ", "</s>", "a </s> b c", "__label__docs foo bar", "word " * 300, "x" * 400 + " y",
        "über straße 日本語", "\x00a\tb\x0bc\x0cd\re", "__label__zzz", "tab\tseparated\twords", "\ud800 lone surrogate"]


@pytest.fixture(scope="module")
def lines(texts) -> list[str]:
    out = [u[2] for d in texts["docs"][:60] + texts["legal"][:60] for u in units(d["text"], "sentence")]
    return out + [u[2] for d in texts["docs"][60:90] + texts["legal"][60:90] for u in units(d["text"], "document")]


def write_training_file(path, texts) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for label in ("docs", "legal"):
            for d in texts[label]:
                for _, _, line in units(d["text"], "sentence"):
                    fh.write(f"__label__{label} {line}\n")


@pytest.mark.parametrize("loss,word_ngrams,quantize", [("softmax", 2, False), ("softmax", 3, True),
                                                        ("ova", 2, False), ("hs", 1, False), ("softmax", 1, False)])
def test_linear_engine_equals_fasttext(tmp_path, texts, lines, loss, word_ngrams, quantize):
    from dolma_pipeline.classifier.fit import fit
    from taggers.fasttext_classifier import FastTextClassifierModel

    train = tmp_path / "train.txt"
    write_training_file(train, texts)
    fit(str(train), str(tmp_path / "m.bin"), dict(dim=8, epoch=3, lr=0.1, wordNgrams=word_ngrams, bucket=5000,
                                                 loss=loss, thread=1, seed=0, verbose=0),
        {"cutoff": 500, "retrain": False, "qnorm": True} if quantize else None)
    path = str(tmp_path / ("m.ftz" if quantize else "m.bin"))
    fast = FastTextClassifierModel(path)
    reference = FastTextClassifierModel(path, engine="fasttext")
    assert fast.linear is not None and fast.labels == reference.labels
    batch = lines + EDGE
    ours, theirs = fast.values(batch), reference.values(batch)
    ours_again = fast.values(batch[::-1])[::-1]  # the word cache changes nothing
    tolerance = 1e-5 if loss == "ova" else 1e-6  # ova: fastText's 512-step sigmoid table
    close = np.abs(ours - theirs).max(axis=1) <= tolerance
    assert close.mean() >= 0.999, [batch[i][:60] for i in np.flatnonzero(~close)]
    np.testing.assert_array_equal(ours, ours_again)


def test_sentences_are_blingfire_s(texts):
    import blingfire

    rng = random.Random(0)
    alphabet = "ab .!?\n\t\u00e9\u65e5\U0001f600\x00\"'"
    samples = [d["text"] for d in texts["docs"][:40] + texts["legal"][:40]]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 80))) for _ in range(300)]
    for text in samples:
        assert split_sentences(text) == blingfire.text_to_sentences_and_offsets(text)[1], repr(text)
    assert split_sentences("") == []


def test_sentences_after_a_longer_text_are_blingfire_s(texts):
    """The output buffers are reused: a short text after a long one must not read the long one's leftovers."""
    import blingfire

    long = "\n".join(d["text"] for d in texts["docs"][:10] + texts["legal"][:10])
    for text in [long, "Hi. There.", "\u00e9t\u00e9. Oui!", long[:50], "  ", "a", long[-300:] + " \u65e5\u672c.", "x"]:
        assert split_sentences(text) == blingfire.text_to_sentences_and_offsets(text)[1], repr(text[:80])


def test_paragraphs_are_dolma_s():
    import re

    for text in ["a\nb", "a\n\n  \nb\n", "", "\n", "one line", "x\n y \n\tz"]:
        expected = [(m.start(), m.end()) for m in re.finditer(r"([^\n]*\n|[^\n]+$)", text)
                    if text[m.start():m.end()].strip()]
        assert split_paragraphs(text) == expected


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, texts) -> str:
    from dolma_pipeline.classifier.fit import fit

    root = tmp_path_factory.mktemp("model")
    train = root / "train.txt"
    with open(train, "w", encoding="utf-8") as fh:
        for label, name in (("docs", "hq"), ("legal", "cc")):
            for d in texts[label]:
                fh.write(f"__label__{name} {d['text'].replace(chr(10), ' ').strip()}\n")
    fit(str(train), str(root / "m.bin"), dict(dim=8, epoch=5, wordNgrams=2, bucket=5000, thread=1, seed=0, verbose=0))
    return str(root / "m.bin")


def build(name: str, **options):
    tagger = TAGGERS.get(name)(**options)
    tagger.setup()
    return tagger


def test_dolma_named_taggers_follow_dolma(model_path, texts):
    from fasttext.FastText import _FastText

    ft = _FastText(model_path)
    docs = [Document(d) for d in texts["docs"][:20] + texts["legal"][:20]]
    jigsaw = build("jigsaw_nsfw_sencence_v2", model_path=model_path)
    quality = build("dolma17-quality", model_path=model_path)
    dclm = build("dclm-oh-eli5", model_path=model_path)
    for doc, j_spans, q_spans, d_spans in zip(docs, jigsaw.predict_batch(docs), quality.predict_batch(docs),
                                              dclm.predict_batch(docs), strict=True):
        # Dolma: per blingfire sentence, the two labels, the one without "non" first
        expected = []
        for start, end in split_sentences(doc.text):
            labels, probs = ft.predict(doc.text[start:end].replace("\n", " ").strip(), k=-1)
            index = 1 if "non" in labels[0] else 0
            expected += [(start, end, labels[index], probs[index]), (start, end, labels[1 - index], probs[1 - index])]
        assert [(s.start, s.end, s.type) for s in j_spans] == [e[:3] for e in expected]
        np.testing.assert_allclose([s.score for s in j_spans], [e[3] for e in expected], atol=1e-6)
        # dolma17-quality: whitespace-split words joined by one space, every label best first, no prefix
        labels, probs = ft.predict(" ".join(doc.text.split()), k=-1)
        assert [s.type for s in q_spans] == [label.replace("__label__", "") for label in labels]
        np.testing.assert_allclose([s.score for s in q_spans], probs, atol=1e-6)
        # dclm-oh-eli5: the best label only, `cc` turned into its complement, called `score`
        (label,), (prob,) = ft.predict(" ".join(doc.text.strip().splitlines()))
        (span,) = d_spans
        assert span.type == "score" and (span.start, span.end) == (0, len(doc.text))
        assert span.score == pytest.approx(1 - prob if label == "__label__cc" else prob, abs=1e-6)


def test_generic_tagger_modes_and_labels(model_path, texts):
    doc = Document(texts["docs"][0])
    paragraphs = build("fasttext_classifier_v1", model_path=model_path, mode="paragraph", labels=["hq"])
    spans = paragraphs.predict(doc)
    assert [(s.start, s.end) for s in spans] == split_paragraphs(doc.text) and {s.type for s in spans} == {"hq"}
    with pytest.raises(ConfigError, match="not in model"):
        build("fasttext_classifier_v1", model_path=model_path, labels=["nope"])
    with pytest.raises(ConfigError, match="mode 'word' is not one of"):
        TAGGERS.get("fasttext_classifier_v1")(model_path=model_path, mode="word")


def test_model_errors(tmp_path):
    with pytest.raises(ConfigError, match="needs `model_path`"):
        TAGGERS.get("fasttext_classifier_v1")()
    with pytest.raises(ConfigError, match="jigsaw_fasttext_bigrams_hatespeech_final.bin.*model_path"):
        TAGGERS.get("jigsaw_hatespeech_document_v2")()
    with pytest.raises(ConfigError, match="does not exist"):
        TAGGERS.get("dolma17-quality")(model_path=str(tmp_path / "missing.bin"))
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"this is not a fastText model" * 10)
    with pytest.raises(ConfigError, match="cannot read fastText model"):
        build("fasttext_classifier_v1", model_path=str(garbage))
