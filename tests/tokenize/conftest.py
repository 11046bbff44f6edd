"""Small Dolma corpora and tokenizers for the tokenize tests."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from dolma_pipeline.assets import asset_path


def write_docs(path: str, docs: list[dict]) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps(doc) + "\n")
    return path


def truncate(path: str) -> bytes:
    """Cut a file in half (a killed writer); returns the original bytes."""
    with open(path, "rb") as fh:
        data = fh.read()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])
    return data


TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "  Leading and trailing whitespace is stripped, as Dolma does.\n\n",
    "Contact me at |||EMAIL_ADDRESS||| or |||PHONE_NUMBER||| from |||IP_ADDRESS|||.",
    "Unicode: naïve café, 東京, emoji 🎉, and a tab\tinside.",
    "A longer paragraph. " * 40,
    "Code: def f(x):\n    return x ** 2\n",
    "short",
    "Lines\nand\nmore\nlines\n" * 5,
]


def make_docs(prefix: str, count: int, source: str = "test") -> list[dict]:
    return [{"id": f"{prefix}-{i}", "text": f"{TEXTS[i % len(TEXTS)]} ({prefix} #{i})", "source": source}
            for i in range(count)]


@pytest.fixture()
def corpus(tmp_path) -> str:
    """Three files, two sources, 60 documents; returns the documents directory."""
    root = tmp_path / "corpus" / "documents"
    write_docs(str(root / "a.jsonl.gz"), make_docs("a", 25, "alpha"))
    write_docs(str(root / "b.jsonl.gz"), make_docs("b", 20, "beta"))
    write_docs(str(root / "sub" / "c.jsonl.gz"), make_docs("c", 15, "alpha"))
    return str(root)


@pytest.fixture(scope="session")
def olmo_tokenizer_path() -> str:
    return asset_path("allenai_gpt-neox-olmo-dolma-v1_5.json")


@pytest.fixture(scope="session")
def olmo_tokenizer(olmo_tokenizer_path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(olmo_tokenizer_path)


@pytest.fixture(scope="session")
def big_vocab_tokenizer_path(tmp_path_factory) -> str:
    """A WordLevel tokenizer with 70,002 ids (more than uint16 holds); `w69999` is id 69,999, EOS 70,001."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {f"w{i}": i for i in range(70_000)}
    vocab["[UNK]"] = 70_000
    vocab["<eos>"] = 70_001
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    path = str(tmp_path_factory.mktemp("big_vocab") / "tokenizer.json")
    tokenizer.save(path)
    return path
