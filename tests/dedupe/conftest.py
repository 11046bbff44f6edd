"""Fixtures for `dolma dedupe`: a small labelled near-duplicate corpus and a runner of the command."""

from __future__ import annotations

import os
import re

import pytest

from dolma_pipeline.config import load_config
from dolma_pipeline.dedupe import command
from dolma_pipeline.dedupe.synthetic import generate, write_corpus
from tests.sigkill import Case, Outcome


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


def dedupe_case(name: str, argv: list[str], watch: str, config_file: str | None = None) -> Case:
    """`dolma dedupe` on 2 processes over a near-duplicate corpus of 6*scale files, to be killed as soon as
    a shard of the stage whose markers live in `watch` (relative to the corpus root) is complete."""
    def make(root, scale):
        docs = generate(num_clusters=12 * scale, variants=3, min_words=60, max_words=120, vocab_size=2000, seed=7)
        write_corpus(str(root), docs, files=6 * scale)

    return Case(make=make,
                argv=lambda root: [*(["-c", config_file] if config_file else []), "dedupe", "--documents", str(root / "documents"), "--processes", "2", *argv],
                finished=lambda root: (root / "attributes" / name / command.SUMMARY_NAME).exists(),
                outputs=lambda root: read_attributes(root, name),
                watch=lambda root: root / watch)


def assert_resumed_stage(outcome: Outcome, stage: str) -> None:
    """The rerun kept the shards of `stage` finished before the kill and ran the rest."""
    found = re.search(rf"stage {stage}: (\d+) shards \((\d+) already done\)", outcome.rerun_log)
    assert found, outcome.rerun_log[-3000:]
    total, done = int(found[1]), int(found[2])
    assert 1 <= len(outcome.at_kill) <= done < total, (stage, len(outcome.at_kill), done, total)
