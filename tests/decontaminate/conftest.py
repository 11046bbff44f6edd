"""Fixtures for `dolma decontaminate`: evaluation paragraphs, training documents that contain them (verbatim
and edited), and a runner of the command."""

from __future__ import annotations

import gzip
import os

import orjson
import pytest

from dolma_pipeline.config import load_config
from dolma_pipeline.decontaminate import command
from dolma_pipeline.io import write_jsonl

ATTR = "bff_duplicate_paragraph_spans_decontamination"
NGRAM_ATTR = "decontamination_ngram_spans"

# evaluation paragraphs of 13 or more uniseg words (the threshold), written for these tests
EVAL = [
    "The committee agreed that the proposal would be reviewed again at the next meeting in spring.",
    "Photosynthesis converts light energy into chemical energy stored in glucose within the plant cells.",
    "Le café était fermé ce matin, alors nous avons marché jusqu'à la boulangerie près de la gare.",
    "A careful reader will notice that the second chapter contradicts the first on several important points.",
]
SHORT_EVAL = "Only twelve words are in this evaluation paragraph so it is ignored"  # 12 uniseg words
CLEAN = [
    "Rivers carry sediment from the mountains down to the sea over many thousands of years.",
    "The library opens at nine in the morning and closes at six in the evening on weekdays.",
    "Most programming languages offer some way to group statements into reusable functions.",
]


def eval_docs() -> list[dict]:
    return [{"id": "e0", "text": EVAL[0] + "\n" + SHORT_EVAL + "\n" + EVAL[1], "source": "eval"},
            {"id": "e1", "text": EVAL[2] + "\n\n" + EVAL[3] + "\n", "source": "eval"}]


def write_corpus(root, docs: list[dict], name: str = "part-0000.jsonl.gz") -> str:
    path = os.path.join(str(root), "documents", name)
    write_jsonl(path, docs)
    return path


@pytest.fixture
def eval_set(tmp_path):
    return write_corpus(tmp_path / "eval", eval_docs(), "eval.jsonl.gz")


def run_decon(argv: list[str], config: dict | None = None, tmp_path=None) -> int:
    extra = config or {}
    cfg = load_config(command.Config, None, argv, extra=extra)
    return command.run(cfg)


def base_config(training: str, evaluation: str, **dedupe) -> dict:
    section = {"name": "decon", "paragraphs": {"attribute_name": ATTR}, "skip_empty": True}
    section.update(dedupe)
    return {"documents": [training], "evaluation": [{"name": "heldout", "documents": [evaluation]}],
            "dedupe": section}


def read_rows(path: str) -> list[dict]:
    with gzip.open(path) as fh:
        return [orjson.loads(line) for line in fh]


def attribute_file(root, name: str = "part-0000.jsonl.gz", experiment: str = "decon") -> str:
    return os.path.join(str(root), "attributes", experiment, name)


def flagged_texts(doc: dict, row: dict, key: str = ATTR) -> list[str]:
    return [doc["text"][s:e] for s, e, _ in row["attributes"][key]]
