"""Fixtures for `dolma dedupe`: a small labelled near-duplicate corpus and a runner of the command."""

from __future__ import annotations

import os

import pytest

from dolma_pipeline.config import load_config
from dolma_pipeline.dedupe import command
from dolma_pipeline.dedupe.synthetic import generate, write_corpus


@pytest.fixture(scope="session")
def near_dup_docs() -> list[dict]:
    return generate(num_clusters=12, variants=3, min_words=60, max_words=120, vocab_size=2000, seed=7)


@pytest.fixture
def near_dup_corpus(tmp_path, near_dup_docs):
    root = tmp_path / "corpus"
    write_corpus(str(root), near_dup_docs, files=3)
    return root


def run_dedupe(argv: list[str], config_file: str | None = None) -> int:
    config = load_config(command.Config, config_file, argv)
    return command.run(config)


def read_attributes(root, name: str) -> dict[str, bytes]:
    """Every attribute file of the run (markers and run records excluded) with its bytes."""
    out = {}
    base = os.path.join(root, "attributes", name)
    for dirpath, _, files in os.walk(base):
        for file in files:
            if file.startswith(".") or file.startswith("dolma_dedupe."):
                continue
            with open(os.path.join(dirpath, file), "rb") as fh:
                out[os.path.relpath(os.path.join(dirpath, file), base)] = fh.read()
    return out


def assert_resumes_after_a_crash(monkeypatch, module, stage: str, documents, clean_documents,
                                 argv: list[str], config_file: str | None, name: str) -> None:
    """Kill a run at the second shard of `stage`, rerun it, and compare with an uninterrupted run."""
    assert run_dedupe(["--documents", str(clean_documents / "documents"), *argv], config_file) == 0
    real = getattr(module, stage)
    calls = []

    def crash_on_second(shard):
        calls.append(shard)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated kill")
        return real(shard)

    monkeypatch.setattr(module, stage, crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_dedupe(["--documents", str(documents / "documents"), *argv], config_file)
    monkeypatch.setattr(module, stage, real)
    assert len(calls) == 2
    assert run_dedupe(["--documents", str(documents / "documents"), *argv], config_file) == 0
    assert read_attributes(documents, name) == read_attributes(clean_documents, name)
