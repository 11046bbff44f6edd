"""A small Dolma corpus with hand-built attribute files (no tagger involved)."""

from __future__ import annotations

import re

import pytest

from dolma_pipeline.io import write_jsonl

EMAIL = re.compile(r"[\w.]+@[\w.]+\.\w+")
PHONE = re.compile(r"\d{3}-\d{3}-\d{4}")
WORDS = ["data", "model", "corpus", "token", "filter", "über", "naïve", "東京", "river", "fox"]
PII = "pii__pii_regex_with_counts_fast_v2__"
GOPHER = "gopher__gopher_v1__word_count"
DUP = "dedupe__minhash_v1__duplicate"
PARA = "bff_duplicate_paragraph_spans"


def doc_text(file_index: int, i: int) -> str:
    words = " ".join(WORDS[(i * 7 + k + file_index) % len(WORDS)] for k in range(5 + (i * 13) % 60))
    extra = ""
    if i % 5 == 0:
        extra += f" write to user{i}@example.org today"
    if i % 7 == 0:
        extra += f" call 555-{i % 1000:03d}-{(i * 31) % 10000:04d} now"
    if i % 11 == 0:  # a PII-heavy document: six e-mail addresses
        extra += " " + " ".join(f"a{k}@x.org" for k in range(6))
    return f"{words}.{extra}\nSecond paragraph {i % 3}.\n"


def attribute_rows(doc: dict, i: int) -> dict:
    """What gopher/pii/dedupe taggers would write for this document, computed by hand."""
    text = doc["text"]
    n = len(text)
    emails = [[m.start(), m.end(), 1.0] for m in EMAIL.finditer(text)]
    phones = [[m.start(), m.end(), 1.0] for m in PHONE.finditer(text)]
    pii = {f"{PII}doc_count": [[0, n, float(len(emails) + len(phones))]]}
    if emails:
        pii[f"{PII}EMAIL_ADDRESS"] = emails
    if phones:
        pii[f"{PII}PHONE_NUMBER"] = phones
    # Word counts as ints for some rows and floats for others: rules must not care.
    count = len(text.split())
    gopher = {GOPHER: [[0, n, count if i % 2 else float(count)]]}
    dup = {DUP: [[0, n, 1.0 if i % 9 == 4 else 0.0]]}
    second = text.index("\n") + 1
    para = {PARA: [[second, n, 1.0]] if i % 4 == 1 else []}
    return {"pii": pii, "gopher": gopher, "dedupe": {**dup, **para}}


def build_corpus(root, files: int = 3, per_file: int = 40) -> dict[str, list[dict]]:
    docs_by_file = {}
    for f in range(files):
        name = f"part-{f}.jsonl.gz"
        docs = [{"id": f"f{f}-{i}", "text": doc_text(f, i), "source": "fixture", "metadata": {"n": i}}
                for i in range(per_file)]
        write_jsonl(str(root / "documents" / name), docs)
        rows: dict[str, list[dict]] = {"pii": [], "gopher": [], "dedupe": []}
        for i, doc in enumerate(docs):
            for attribute_set, attrs in attribute_rows(doc, i).items():
                rows[attribute_set].append({"id": doc["id"], "attributes": attrs, "source": "fixture"})
        for attribute_set, set_rows in rows.items():
            write_jsonl(str(root / "attributes" / attribute_set / name), set_rows)
        docs_by_file[name] = docs
    return docs_by_file


@pytest.fixture
def mix_corpus(tmp_path):
    root = tmp_path / "corpus"
    docs = build_corpus(root)
    return root, docs


def stream_config(root, out, **overrides) -> dict:
    stream = {
        "name": "mixed",
        "documents": [str(root / "documents" / "*.jsonl.gz")],
        "attributes": ["pii", "gopher", "dedupe"],
        "output": {"path": str(out), "max_size_in_bytes": 1_000_000, "discard_fields": ["attributes"]},
        "filter": {"syntax": "jq", "exclude": [f"(.attributes.{PII}doc_count // [[0,0,0]])[0][2] > 5"]},
        "rules": [{"attribute": GOPHER, "op": "lt", "value": 10, "name": "gopher word_count < 10"}],
        "dedupe": [DUP],
        "span_replacement": [
            {"span": f"$.attributes.{PII}EMAIL_ADDRESS", "min_score": 0.5, "replacement": " |||EMAIL_ADDRESS||| "},
            {"span": f"$.attributes.{PII}PHONE_NUMBER", "min_score": 0.5, "replacement": " |||PHONE_NUMBER||| "},
            {"span": f"$.attributes.{PARA}", "min_score": 0.5, "replacement": ""},
        ],
    }
    stream.update(overrides)
    return stream
