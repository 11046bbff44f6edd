"""`dolma train-classifier` end to end on real text: every label source, the card, determinism, bad input."""

from __future__ import annotations

import gzip
import hashlib
import json
import os

import numpy as np
import pytest

from dolma_pipeline.cli import main
from dolma_pipeline.io import write_jsonl

TINY = {"dim": 16, "bucket": 20000, "epoch": 25, "wordNgrams": 2, "lr": 0.5}


def fasttext_flags(**extra) -> list[str]:
    return [f"--fasttext.{k}={v}" for k, v in {**TINY, **extra}.items()]


def train(root, *args: str) -> int:
    return main(["train-classifier", *args, *fasttext_flags()])


def by_globs(root) -> list[str]:
    return ["--labels.docs", str(root / "documents" / "docs" / "*.jsonl.gz"),
            "--labels.legal", str(root / "documents" / "legal" / "*.jsonl.zst")]


def card_of(out) -> dict:
    with open(os.path.join(out, "model_card.json")) as fh:
        return json.load(fh)


def sha(path) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def test_labels_from_globs_card_curve_and_tagging(labelled, texts):
    out = labelled / "model"
    assert train(labelled, *by_globs(labelled), "--output", str(out)) == 0
    card = card_of(out)
    assert sorted(card["labels"]) == ["docs", "legal"]
    counts = card["label_counts"]
    assert sum(counts["train_units"].values()) + sum(counts["valid_units"].values()) == 480
    # balanced: the kept training units of the two labels are within sampling noise of each other
    kept = counts["train_units_kept"]
    assert abs(kept["docs"] - kept["legal"]) <= 0.15 * max(kept.values())
    assert counts["valid_units_kept"] == counts["valid_units"]
    assert len(card["data"]["files"]) == 3 and all(len(f["sha256_of_ids_and_texts"]) == 64 for f in card["data"]["files"])
    validation = card["validation"]
    assert validation["units"] == sum(counts["valid_units"].values()) > 20
    assert validation["accuracy"] >= 0.9
    for label in ("docs", "legal"):
        metrics = validation["labels"][label]
        assert metrics["roc_auc"] >= 0.95 and metrics["f1"] >= 0.85
        assert [row["threshold"] for row in metrics["thresholds"]] == [round(0.05 * i, 2) for i in range(1, 20)]
        recalls = [row["recall"] for row in metrics["thresholds"]]
        assert recalls == sorted(recalls, reverse=True)
    assert card["fasttext"]["deterministic"] is True and card["fasttext"]["args"]["dim"] == 16
    assert card["fasttext"]["test_on_validation"]["precision_at_1"] == pytest.approx(validation["accuracy"], abs=1e-4)
    with open(out / "pr_curve.png", "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"

    # tag the same documents with the model and read the attributes back
    model = str(out / "model.bin")
    documents = str(labelled / "documents" / "**" / "*.jsonl.*")
    assert main(["tag", "--documents", documents, "--experiment", "clf", "--taggers", "fasttext_classifier_v1",
                 "jigsaw_hatespeech_document_v2", f"--tagger_options.fasttext_classifier_v1.model_path={model}",
                 f"--tagger_options.jigsaw_hatespeech_document_v2.model_path={model}"]) == 0
    from fasttext.FastText import _FastText

    ft = _FastText(model)
    rows = []
    with gzip.open(labelled / "attributes" / "clf" / "docs" / "part-0.jsonl.gz", "rt") as fh:
        rows = [json.loads(line) for line in fh]
    docs = texts["docs"][: len(texts["docs"]) // 2]
    assert [r["id"] for r in rows] == [d["id"] for d in docs]
    right = 0
    for row, doc in zip(rows, docs, strict=True):
        attributes = row["attributes"]
        labels, values = ft.predict(doc["text"].replace("\n", " ").strip(), k=-1)
        expected = {label[len("__label__"):]: round(float(v), 5) for label, v in zip(labels, values)}
        for label in ("docs", "legal"):
            (start, end, value), = attributes[f"clf__fasttext_classifier_v1__{label}"]
            assert (start, end) == (0, len(doc["text"]))
            assert value == pytest.approx(expected[label], abs=1.01e-5)
            assert attributes[f"clf__jigsaw_hatespeech_document_v2____label__{label}"] == [[start, end, value]]
        right += expected["docs"] > expected["legal"]
    assert right >= 0.9 * len(docs)


def test_one_thread_gives_identical_model_bytes_whatever_the_worker_count(labelled):
    first, second, third = (labelled / name for name in ("m1", "m2", "m3"))
    assert train(labelled, *by_globs(labelled), "--output", str(first)) == 0
    assert train(labelled, *by_globs(labelled), "--output", str(second)) == 0
    assert train(labelled, *by_globs(labelled), "--output", str(third), "--processes", "2",
                 "--executor", "local") == 0
    assert sha(first / "model.bin") == sha(second / "model.bin") == sha(third / "model.bin")
    assert sha(first / "work" / "train.txt") == sha(third / "work" / "train.txt")
    # a rerun with nothing changed reuses the model
    before = os.stat(first / "model.bin").st_mtime_ns
    assert train(labelled, *by_globs(labelled), "--output", str(first)) == 0
    assert os.stat(first / "model.bin").st_mtime_ns == before


def test_training_and_tagging_see_the_same_text(labelled, texts):
    """Sentence mode: every validation line fastText trained against scores exactly as the tagger's unit."""
    from dolma_pipeline.classifier import text as shared
    from dolma_pipeline.classifier.dataset import id_fraction
    from dolma_pipeline.documents import Document
    from taggers import fasttext_classifier

    assert fasttext_classifier.prepare is shared.prepare and fasttext_classifier.split_units is shared.split_units
    out = labelled / "sentences"
    assert train(labelled, *by_globs(labelled), "--output", str(out), "--mode", "sentence",
                 "--validation_fraction", "0.2") == 0
    tagger = fasttext_classifier.FastTextClassifier(model_path=str(out / "model.bin"), mode="sentence",
                                                    labels=["docs"])
    # validation documents in input order: docs/part-0, docs/part-1, legal/part-0
    docs = [d for d in texts["docs"] + texts["legal"] if id_fraction(d["id"]) < 0.2]
    tagged = [s.score for spans in tagger.predict_batch([Document(d) for d in docs]) for s in spans]
    from fasttext.FastText import _FastText

    ft = _FastText(str(out / "model.bin"))
    with open(out / "work" / "valid.txt", encoding="utf-8") as fh:
        lines = [line.rstrip("\n").split(" ", 1)[1] for line in fh]
    assert len(lines) == len(tagged) > 50
    trained = [dict(zip(*ft.predict(line, k=-1)))["__label__docs"] for line in lines]
    np.testing.assert_allclose(tagged, trained, atol=1e-6)


def test_labels_from_a_metadata_field_and_from_a_map(labelled):
    documents = str(labelled / "documents" / "**" / "*.jsonl.*")
    out = labelled / "by_field"
    assert train(labelled, "--documents", documents, "--label_field.field", "metadata.kind", "--output", str(out)) == 0
    assert sorted(card_of(out)["labels"]) == ["code-docs", "legal"]
    out = labelled / "by_map"
    assert train(labelled, "--documents", documents, "--label_field.field", "source",
                 "--label_field.map.python-docs", "good", "--label_field.map.copyright", "bad", "--output", str(out)) == 0
    card = card_of(out)
    assert sorted(card["labels"]) == ["bad", "good"]
    assert card["validation"]["accuracy"] >= 0.9


def test_labels_from_an_attribute_and_a_threshold(labelled, texts):
    documents = str(labelled / "documents" / "**" / "*.jsonl.*")
    assert main(["tag", "--documents", documents, "--experiment", "len", "--taggers", "char_length_v1"]) == 0
    out = labelled / "by_attribute"
    assert train(labelled, "--documents", documents, "--label_attribute.name", "len__char_length_v1__length",
                 "--label_attribute.threshold", "600", "--label_attribute.above", "long",
                 "--label_attribute.below", "short", "--output", str(out)) == 0
    counts = card_of(out)["label_counts"]
    long_docs = sum(len(d["text"]) >= 600 for d in texts["docs"] + texts["legal"])
    assert counts["train_units"]["long"] + counts["valid_units"]["long"] == long_docs
    assert counts["train_units"]["short"] + counts["valid_units"]["short"] == 480 - long_docs


def test_quantized_model_is_written_scored_and_tagged(labelled):
    out = labelled / "quantized"
    assert train(labelled, *by_globs(labelled), "--output", str(out), "--quantize") == 0
    card = card_of(out)
    assert card["model_path"].endswith("model.ftz") and os.path.getsize(out / "model.ftz") < os.path.getsize(out / "model.bin")
    assert set(card["validation_by_model"]) == {"model.bin", "model.ftz"}
    assert card["validation"]["accuracy"] >= 0.85


def test_bad_input_gives_clear_errors(labelled, capsys):
    documents = str(labelled / "documents" / "**" / "*.jsonl.*")
    # a label without any units
    assert train(labelled, "--documents", documents, "--label_field.field", "source", "--label_field.map.python-docs",
                 "good", "--label_field.map.nothing-like-this", "bad", "--output", str(labelled / "x1")) == 1
    assert "['bad'] have no training units" in capsys.readouterr().err
    # one class only
    only_docs = str(labelled / "documents" / "docs" / "*.jsonl.gz")
    assert train(labelled, "--documents", only_docs, "--label_field.field", "source",
                 "--output", str(labelled / "x2")) == 1
    assert "only one class" in capsys.readouterr().err
    # two label sources, or none
    assert train(labelled, *by_globs(labelled), "--documents", documents, "--label_field.field", "source",
                 "--output", str(labelled / "x3")) == 1
    assert "exactly one label source" in capsys.readouterr().err
    # an empty unit: error naming file and line, or skipped and counted
    empty = labelled / "documents" / "legal" / "part-1.jsonl.zst"
    write_jsonl(str(empty), [{"id": "e1", "text": "A licence paragraph. " * 20}, {"id": "e2", "text": "  \n "}])
    assert train(labelled, *by_globs(labelled), "--output", str(labelled / "x4")) == 1
    assert f"{empty}:2: empty text (document id 'e2')" in capsys.readouterr().err
    assert train(labelled, *by_globs(labelled), "--output", str(labelled / "x5"), "--on_error", "skip_line") == 0
    assert card_of(labelled / "x5")["skipped"]["empty_documents"] == 1
    os.remove(empty)
    # a label with a glob that matches nothing
    assert train(labelled, "--labels.docs", only_docs, "--labels.legal", str(labelled / "nowhere" / "*.gz"),
                 "--output", str(labelled / "x6")) == 1
    assert "nowhere" in capsys.readouterr().err
