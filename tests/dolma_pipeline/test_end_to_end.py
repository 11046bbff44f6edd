"""The demo pipeline end to end on a small real corpus: every stage's outputs, lineage, skipping, reruns."""

from __future__ import annotations

import glob
import gzip
import json
import os

import numpy as np
import pytest
import yaml

from dolma_pipeline.demo_data import build
from dolma_pipeline.lineage import trace
from dolma_pipeline.pipeline import load_pipeline, run_pipeline
from dolma_pipeline.warc.sample import bad_records, pydoc_pages, write_warc
from tests.chromium import render_in_headless_chromium
from tests.conftest import REPO

ALL_STAGES = ["web", "classifier", "tag", "dedupe_paragraphs", "dedupe_minhash", "mix", "decontaminate", "remove_contamination",
              "tokenize_train", "tokenize_eval", "train", "export", "sample", "report"]
TINY_TRAINING = {"model.preset": "tiny", "model.max_sequence_length": 64, "data.sequence_length": 64,
                 "trainer.max_steps": 6, "trainer.eval_interval": 3, "trainer.log_interval": 1,
                 "checkpoint.save_interval": 3, "trainer.global_batch_size": 4, "trainer.micro_batch_size": 4}


def _pipeline_file(tmp_path, min_text_length: int = 200) -> str:
    with open(os.path.join(REPO, "configs", "pipeline", "demo.yaml")) as fh:
        config = yaml.safe_load(fh)
    config["workdir"] = str(tmp_path)
    config["processes"] = 1
    for stage in config["stages"]:
        if stage["command"] == "train":
            stage["config"]["config"] = os.path.join(REPO, stage["config"]["config"])
            stage["config"]["overrides"].update(TINY_TRAINING)
        if stage["command"] == "mix":
            for stream in stage["config"]["streams"]:
                stream["output"]["min_text_length"] = min_text_length
        if stage["command"] == "generate":
            stage["config"]["max_new_tokens"] = 5
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return str(path)


def _jsonl(pattern: str) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(pattern, recursive=True)):
        with gzip.open(path, "rt") as fh:
            rows += [json.loads(line) for line in fh]
    return rows


@pytest.mark.slow
def test_demo_pipeline_end_to_end(tmp_path):
    counts = build(str(tmp_path / "corpus"), python_limit=60, man_limit_per_language=6, copyright_limit=60)
    assert sum(counts.values()) > 150
    web = pydoc_pages(("json", "csv", "textwrap", "heapq")) + bad_records()
    write_warc(str(tmp_path / "web" / "web-00000.warc.gz"), web, corrupt_after=2)
    config_file = _pipeline_file(tmp_path)
    assert run_pipeline(load_pipeline(config_file)) == ALL_STAGES

    docs = _jsonl(f"{tmp_path}/corpus/documents/**/*.jsonl.gz")
    assert len([d for d in docs if d["source"] == "web"]) == 5  # four pydoc pages and the Latin-1 one
    for name in ("demo", "dedupe_para", "minhash"):
        rows = _jsonl(f"{tmp_path}/corpus/attributes/{name}/**/*.jsonl.gz")
        assert [r["id"] for r in rows] == [d["id"] for d in docs], name
    before = _jsonl(f"{tmp_path}/mixed/documents/train/*.jsonl.gz")
    decon = _jsonl(f"{tmp_path}/mixed/attributes/decon/train/*.jsonl.gz")  # the training split, checked
    assert [r["id"] for r in decon] == [d["id"] for d in before]
    flagged = {r["id"] for r in decon if r["attributes"]["bff_duplicate_paragraph_spans_decontamination"]}
    mixed = _jsonl(f"{tmp_path}/decontaminated/train/*.jsonl.gz")
    assert 0 < len(mixed) <= len(before) - len(flagged) and not flagged & {d["id"] for d in mixed}
    assert 0 < len(mixed) < len(docs)
    assert all(":" in d["metadata"]["provenance"] for d in mixed)
    assert not any("@debian.org" in d["text"] for d in mixed)  # e-mail addresses are masked
    summary = json.loads((tmp_path / "tokens/train/dolma_tokenize.summary.json").read_text())
    assert summary["documents"] == len(mixed)
    tokens = np.memmap(glob.glob(f"{tmp_path}/tokens/train/part-*.npy")[0], dtype=np.uint16, mode="r")
    assert int((tokens == 50279).sum()) == len(mixed)
    assert (tmp_path / "hf-model" / "config.json").exists()
    assert json.loads((tmp_path / "sample" / "sample.json").read_text())["text"].startswith("The command")
    report = (tmp_path / "report" / "index.html").read_text()
    for image in ("waterfall.png", "drops.png", "languages.png", "score_0.png", "pii.png", "loss.png",
                  "rule_train_0.png"):
        assert image in report and (tmp_path / "report" / image).stat().st_size > 1000
    # every typed rule of the demo's training stream has its plot and examples
    assert "What each rule removed: stream train" in report and report.count("Removed by this rule") >= 4
    assert "log x (heavy-tailed)" in report  # count-like scores (word counts) on a log axis
    assert "Decontamination (decontaminate)" in report and "heldout" in report
    card = json.loads((tmp_path / "classifier" / "model_card.json").read_text())
    assert card["validation"]["units"] > 0 and card["validation"]["accuracy"] is not None  # a tiny corpus here
    assert "Classifier (classifier)" in report
    for image in ("classifier_classifier_pr_curve.png", "classifier_classifier_scores_0.png"):
        assert image in report and (tmp_path / "report" / image).stat().st_size > 1000
    scored = _jsonl(f"{tmp_path}/corpus/attributes/demo/**/*.jsonl.gz")
    assert all(len(r["attributes"]["demo__fasttext_classifier_v1__hq"]) == 1 for r in scored)
    render_in_headless_chromium(tmp_path / "report" / "index.html")

    chain = {record.stage for record in trace(str(tmp_path / "train"))}
    assert {"train", "tokenize_train", "tokenize_eval", "mix", "tag", "dedupe_paragraphs",
            "dedupe_minhash", "decontaminate", "remove_contamination"} <= chain
    first = trace(str(tmp_path / "corpus" / "attributes" / "demo"))[0]
    assert first.inputs == [str(tmp_path / "corpus" / "documents"), str(tmp_path / "classifier")]

    assert run_pipeline(load_pipeline(config_file)) == []
    changed = _pipeline_file(tmp_path, min_text_length=400)
    assert run_pipeline(load_pipeline(changed)) == ALL_STAGES[ALL_STAGES.index("mix"):]
