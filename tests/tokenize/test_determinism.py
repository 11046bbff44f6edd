"""Same inputs and seed give byte-identical parts: across process counts, and after an interrupted run."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from dolma_pipeline.config import from_dict
from dolma_pipeline.errors import DataFormatError
from dolma_pipeline.tokenize.command import SUMMARY_NAME, Config, run
from dolma_pipeline.tokenize.tokenfile import list_parts, metadata_path, read_rows
from tests.sigkill import Case, sigkill_and_resume

from .conftest import make_docs, truncate, write_docs


def tokenize(documents: str, destination: str, **options) -> dict:
    options = {"debug": True, "max_size": 1000, **options}
    assert run(from_dict(Config, {"documents": [documents], "destination": destination, **options})) == 0
    with open(os.path.join(destination, SUMMARY_NAME)) as fh:
        return json.load(fh)


def part_bytes(destination: str) -> dict[str, bytes]:
    out = {}
    for part in list_parts(destination):
        for path in (part, metadata_path(part)):
            with open(path, "rb") as fh:
                out[os.path.basename(path)] = fh.read()
    return out


def test_resume_after_a_failed_run_gives_the_same_bytes(corpus, tmp_path):
    bad = os.path.join(corpus, "b.jsonl.gz")
    good = truncate(bad)
    resumed = str(tmp_path / "resumed")
    with pytest.raises(DataFormatError):
        tokenize(corpus, resumed)
    with open(bad, "wb") as fh:
        fh.write(good)
    summary = tokenize(corpus, resumed)
    assert summary["files_resumed"] == 1  # a.jsonl.gz was finished before the failure
    clean = str(tmp_path / "clean")
    tokenize(corpus, clean)
    assert len(part_bytes(clean)) > 4
    assert part_bytes(resumed) == part_bytes(clean)


def _tokenize_case(watch: str) -> Case:
    """`dolma tokenize` on 2 processes over 8*scale files, small parts; killed once a shard of the stage
    whose markers are in `watch` is complete: the encoded inputs, or the parts (the destination itself)."""
    def make(root, scale):
        for i in range(8 * scale):
            write_docs(str(root / "documents" / f"f{i:03d}.jsonl.gz"), make_docs(f"f{i}", 40 * scale))

    return Case(make=make,
                argv=lambda root: ["tokenize", "--documents", str(root / "documents" / "*.jsonl.gz"), "--destination",
                                   str(root / "out"), "--processes", "2", "--max_size", "2000"],
                finished=lambda root: (root / "out" / SUMMARY_NAME).exists(),
                outputs=lambda root: part_bytes(str(root / "out")),
                watch=lambda root: root / "out" / watch, recursive=watch != "")


@pytest.mark.parametrize("stage, watch", [("files", ".tokenize-work/encoded"),
                                          pytest.param("parts", "", marks=pytest.mark.slow)])
def test_sigkilled_run_resumes_to_the_same_bytes(tmp_path, stage, watch):
    """SIGKILL a real 2-process `dolma tokenize` once a shard of a stage is complete; rerun; compare bytes."""
    outcome = sigkill_and_resume(_tokenize_case(watch), tmp_path)
    with open(outcome.killed / "out" / SUMMARY_NAME) as fh:
        summary = json.load(fh)
    total = summary["files"] if stage == "files" else len(list_parts(str(outcome.killed / "out")))
    assert 1 <= len(outcome.at_kill) <= summary[f"{stage}_resumed"] < total, (summary, len(outcome.at_kill))
    ids = [row.id for part in list_parts(str(outcome.killed / "out")) for row in read_rows(metadata_path(part))]
    assert len(ids) == len(set(ids)) == summary["documents"] == total_docs(outcome.killed)  # each once
    assert not (outcome.killed / "out" / ".tokenize-work").exists()


def total_docs(root) -> int:
    return sum(1 for p in (root / "documents").iterdir() for _ in gzip.open(p))


def test_rerun_of_a_finished_run_does_nothing_and_a_changed_input_reruns(corpus, tmp_path, capsys):
    out = str(tmp_path / "out")
    tokenize(corpus, out)
    before = part_bytes(out)
    tokenize(corpus, out)
    assert "already complete" in capsys.readouterr().out
    assert part_bytes(out) == before
    write_docs(os.path.join(corpus, "a.jsonl.gz"), make_docs("new", 3))
    summary = tokenize(corpus, out, keep_work=True)
    assert summary["documents"] == 38 and part_bytes(out) != before
    write_docs(os.path.join(corpus, "a.jsonl.gz"), make_docs("newer", 4))  # kept work must not be reused
    summary = tokenize(corpus, out)
    assert summary["documents"] == 39 and summary["files_resumed"] == 2
    assert "newer-3" in {row.id for part in list_parts(out) for row in read_rows(metadata_path(part))}


def test_stale_parts_of_a_larger_earlier_run_are_removed(corpus, tmp_path):
    out = str(tmp_path / "out")
    tokenize(corpus, out, max_size=1000)
    many = len(list_parts(out))
    tokenize(corpus, out, max_size=100_000)
    assert many > 1 and len(list_parts(out)) == 1


@pytest.mark.parametrize("executor", [pytest.param("ray", marks=[pytest.mark.ray, pytest.mark.slow]), "local",
                                      "auto"])
def test_process_count_does_not_change_the_bytes(corpus, tmp_path, executor):
    for i in range(3):  # more files than processes
        write_docs(os.path.join(corpus, f"extra{i}.jsonl.gz"), make_docs(f"x{i}", 10))
    serial = str(tmp_path / "serial")
    tokenize(corpus, serial)
    parallel = str(tmp_path / "parallel")
    summary = tokenize(corpus, parallel, debug=False, processes=2, executor=executor)
    assert summary["executor"]["kind"] == {"auto": "local"}.get(executor, executor)
    assert summary["executor"]["workers"] == 2 and executor in summary["executor"]["reason"]
    assert len(part_bytes(serial)) > 4
    assert part_bytes(parallel) == part_bytes(serial)


def test_part_writer_with_few_inputs_mapped_gives_the_same_bytes(corpus, tmp_path, monkeypatch):
    from dolma_pipeline.tokenize import work as tokenize_work

    wide = str(tmp_path / "wide")
    tokenize(corpus, wide)
    monkeypatch.setattr(tokenize_work._PlanReader, "OPEN_INPUTS", 1)
    narrow = str(tmp_path / "narrow")
    tokenize(corpus, narrow)
    assert part_bytes(narrow) == part_bytes(wide)


def test_the_cached_encoder_and_tokenizers_write_the_same_bytes(corpus, tmp_path):
    cached = str(tmp_path / "cached")
    reference = str(tmp_path / "tokenizers")
    tokenize(corpus, cached)
    tokenize(corpus, reference, encoder="tokenizers")
    assert len(part_bytes(cached)) > 4
    assert part_bytes(cached) == part_bytes(reference)
