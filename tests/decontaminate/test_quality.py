"""Planted contamination in real text: every planted paragraph is found, verbatim or edited, and nothing
else is flagged that an independent comparison does not confirm."""

from __future__ import annotations

import random
import re
import unicodedata

import pytest

from dolma_pipeline.decontaminate.normalize import uniseg_word_count
from dolma_pipeline.demo_data import python_docstrings
from tests.decontaminate.conftest import ATTR, attribute_file, base_config, read_rows, run_decon, write_corpus

EDITS = {
    "verbatim": lambda p: p,
    "upper": str.upper,
    "spacing": lambda p: "\t " + re.sub(" ", "  ", p) + "   ",
    "punctuation": lambda p: "-- " + p.rstrip(".:;!?") + " ...",
    "nfd": lambda p: unicodedata.normalize("NFD", p.replace("e", "é")),  # é decomposed
}


def _independent(text: str) -> str:
    """A second, simpler spelling of the documented normalisation (regular expressions, no fast paths)."""
    text = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())
    text = re.sub(r"\s+", " ", text)
    return re.sub(r"^(?:\W|_)+|(?:\W|_)+$", "", text)


@pytest.mark.slow
def test_planted_paragraphs_are_found_in_real_text(tmp_path):
    rng = random.Random(11)
    docs = list(python_docstrings(160))
    assert len(docs) >= 100
    eval_docs, train_docs = docs[::4], [d for i, d in enumerate(docs) if i % 4]
    candidates = sorted({p.strip() for d in eval_docs for p in d["text"].split("\n")
                         if len(p.split()) >= 13 and uniseg_word_count(p) >= 13})
    assert len(candidates) >= 40
    planted: dict[str, tuple[str, str]] = {}
    for doc in train_docs[:120]:
        kind = rng.choice(sorted(EDITS))
        original = rng.choice(candidates)
        if kind == "nfd":  # the evaluation side must hold the accented spelling too
            eval_docs.append({"id": f"accented-{doc['id']}", "text": original.replace("e", "é")})
        text = EDITS[kind](original)
        lines = doc["text"].split("\n")
        lines.insert(rng.randrange(len(lines) + 1), text)
        doc["text"] = "\n".join(lines)
        planted[doc["id"]] = (kind, text)
    write_corpus(tmp_path / "eval", eval_docs, "eval.jsonl.gz")
    write_corpus(tmp_path / "train", train_docs)
    config = base_config(str(tmp_path / "train" / "documents"), str(tmp_path / "eval" / "documents" / "*.gz"))
    assert run_decon([], config) == 0

    indexed = {_independent(p) for d in eval_docs for p in d["text"].split("\n")
               if p.strip() and uniseg_word_count(p) >= 13}
    rows = read_rows(attribute_file(tmp_path / "train"))
    found = {kind: 0 for kind in EDITS}
    total = {kind: 0 for kind in EDITS}
    for doc, row in zip(train_docs, rows, strict=True):
        assert doc["id"] == row["id"]
        spans = [doc["text"][s:e].removesuffix("\n") for s, e, _ in row["attributes"][ATTR]]
        if doc["id"] in planted:
            kind, text = planted[doc["id"]]
            total[kind] += 1
            found[kind] += text in spans
        for span in spans:  # every hit, planted or natural, is evaluation text by an independent comparison
            assert _independent(span) in indexed, span
    assert found == total and all(total.values())
