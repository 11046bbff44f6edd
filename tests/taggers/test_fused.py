"""Taggers of one `dolma tag` run share per-document work and give the same values as separate runs."""

from __future__ import annotations

import gzip
import json

from dolma_pipeline.documents import Document
from dolma_pipeline.tag import TagConfig, run
from taggers import text_stats
from taggers.c4 import C4
from taggers.gopher import Gopher

TEXTS = [
    "The cat sat on the mat.\nThe cat sat on the mat.\n- a list item…\nmail me: jo@example.com\n",
    "",
    "Eine Zeile ohne Punkt\n{ curly } and javascript\n" + "word " * 200,
    "call (555) 123-4567 or +44 20 7946 0958, server 10.0.0.1\n\n",
]


def write_corpus(root) -> str:
    path = root / "documents" / "part-0.jsonl.gz"
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wt") as f:
        for i, text in enumerate(TEXTS):
            f.write(json.dumps({"id": str(i), "text": text, "source": "t"}) + "\n")
    return str(path)


def read_attributes(root, experiment) -> list[dict]:
    with gzip.open(root / "attributes" / experiment / "part-0.jsonl.gz", "rt") as f:
        return [json.loads(line)["attributes"] for line in f]


def test_fused_run_equals_separate_runs(tmp_path):
    path = write_corpus(tmp_path)
    names = ["gopher_v1", "c4_v2", "pii_regex_with_counts_fast_v2", "pii_regex_v3"]
    assert run(TagConfig(documents=[path], experiment="fused", taggers=names, debug=True)) == 0
    fused = read_attributes(tmp_path, "fused")
    for name in names:
        assert run(TagConfig(documents=[path], experiment=name, taggers=[name], debug=True)) == 0
        alone = read_attributes(tmp_path, name)
        for fused_row, alone_row in zip(fused, alone, strict=True):
            for key, value in alone_row.items():
                assert fused_row[key.replace(f"{name}__{name}__", f"fused__{name}__", 1)] == value


def test_shared_word_arrays_computed_once(monkeypatch):
    built = []
    original = text_stats.WordArrays

    class Counting(original):
        def __init__(self, words, lengths):
            built.append(len(words))
            super().__init__(words, lengths)

    monkeypatch.setattr(text_stats, "WordArrays", Counting)
    doc = Document.from_fields("d", "word " * 100)
    Gopher().predict(doc)
    Gopher().predict(doc)
    C4().predict(doc)
    assert built == [100]
    assert doc.__dict__["_lower_text"] == doc.text.lower()
