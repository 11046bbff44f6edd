"""`dolma mix` end to end: what is kept, masked and written, sized shards, report, determinism, resume."""

from __future__ import annotations

import gzip
import json
import os
import re

import pytest
import yaml

from dolma_pipeline.config import from_dict
from dolma_pipeline.io import iter_raw_lines
from mixers import command
from mixers.config import MixConfig
from tests.mixers.conftest import DUP, GOPHER, PARA, PII, attribute_rows, build_corpus, stream_config
from tests.sigkill import Case, sigkill_and_resume


def run_mix(streams: list[dict], **top) -> int:
    config = from_dict(MixConfig, {"streams": streams, "debug": True, **top})
    return command.run(config)


def read_output(out) -> list[dict]:
    rows = []
    for name in sorted(os.listdir(out)):
        if name.endswith((".jsonl.gz", ".jsonl.zst")):
            rows.extend(json.loads(line) for line in iter_raw_lines(os.path.join(out, name)))
    return rows


def tree_bytes(out) -> dict[str, bytes]:
    return {n: open(os.path.join(out, n), "rb").read() for n in sorted(os.listdir(out)) if not n.startswith(".")}


def expected_kept(docs_by_file) -> dict[str, str]:
    """The ids and texts the fixture's rules must produce, computed independently of the mixer."""
    kept = {}
    for _, docs in sorted(docs_by_file.items()):
        for i, doc in enumerate(docs):
            attrs = {k: v for rows in attribute_rows(doc, i).values() for k, v in rows.items()}
            if attrs[DUP][0][2] >= 0.5 or attrs[GOPHER][0][2] < 10 or attrs[f"{PII}doc_count"][0][2] > 5:
                continue
            text = doc["text"]
            spans = sorted([(s, e, " |||EMAIL_ADDRESS||| ") for s, e, _ in attrs.get(f"{PII}EMAIL_ADDRESS", [])]
                           + [(s, e, " |||PHONE_NUMBER||| ") for s, e, _ in attrs.get(f"{PII}PHONE_NUMBER", [])]
                           + [(s, e, "") for s, e, _ in attrs[PARA]])
            for s, e, rep in reversed(spans):
                text = text[:s] + rep + text[e:]
            kept[doc["id"]] = text
    return kept


def test_mix_keeps_masks_and_reports(mix_corpus, tmp_path):
    root, docs = mix_corpus
    out = tmp_path / "out"
    assert run_mix([stream_config(root, out)], report=str(tmp_path / "report.json")) == 0
    rows = read_output(out)
    want = expected_kept(docs)
    assert [r["id"] for r in rows] == list(want)  # input order
    assert {r["id"]: r["text"] for r in rows} == want
    assert all("attributes" not in r for r in rows)
    assert any("|||EMAIL_ADDRESS|||" in r["text"] for r in rows) and not any(
        re.search(r"user\d+@example", r["text"]) for r in rows)
    by_id = {d["id"]: (name, i + 1) for name, ds in docs.items() for i, d in enumerate(ds)}
    for r in rows:
        name, line = by_id[r["id"]]
        assert r["metadata"]["provenance"] == f"{name}:{line}"
        assert r["metadata"]["n"] == line - 1

    (report,) = json.loads((tmp_path / "report.json").read_text())
    total = sum(len(d) for d in docs.values())
    assert report["documents_in"] == total and report["documents_out"] == len(want)
    assert sum(report["dropped"].values()) == total - len(want)
    assert report["dropped"]["gopher word_count < 10"] > 0 and report["dropped"][f"dedupe {DUP}"] > 0
    assert any(k.startswith("filter.exclude") for k in report["dropped"])
    masked = sum(r["text"].count("|||EMAIL_ADDRESS|||") for r in rows)
    assert report["spans_replaced"]["EMAIL_ADDRESS"] == masked
    assert report["bytes_out"] == sum(len(line) + 1 for n in report["shards"] for line in iter_raw_lines(str(out / n)))
    assert not (out / ".parts").exists()


def test_shards_are_sized_by_compressed_bytes_and_named(mix_corpus, tmp_path):
    root, docs = mix_corpus
    out = tmp_path / "out"
    run_mix([stream_config(root, out, output={"path": str(out), "max_size_in_bytes": 400})])
    names = sorted(n for n in os.listdir(out) if not n.startswith("."))
    assert len(names) > 3
    assert names == [f"mixed-{i:04d}.jsonl.gz" for i in range(len(names))]
    sizes = [os.path.getsize(out / n) for n in names]
    assert max(sizes) < 400 + 400  # the limit + the document that crossed it + the gzip trailer
    assert [r["id"] for r in read_output(out)] == list(expected_kept(docs))
    for n in names:  # every shard is a complete gzip file
        gzip.decompress((out / n).read_bytes())


def test_zst_output_sampling_and_upsampling(mix_corpus, tmp_path):
    root, docs = mix_corpus
    base = stream_config(root, tmp_path / "x", filter=None, rules=[], dedupe=[], span_replacement=[])
    full = tmp_path / "full"
    run_mix([{**base, "output": {"path": str(full)}, "compression": {"output": "zst"}}])
    assert sorted(os.listdir(full))[-1] == "mixed-0000.jsonl.zst"
    all_ids = [r["id"] for r in read_output(full)]
    assert len(all_ids) == 120

    def sampled(rate, where, seed=0):
        run_mix([{**base, "output": {"path": str(tmp_path / where)}, "sample": rate, "seed": seed}])
        return [r["id"] for r in read_output(tmp_path / where)]
    third = sampled(0.3, "s1")
    assert third == sampled(0.3, "s2") and 20 < len(third) < 60
    assert set(third) <= set(all_ids) and third != sampled(0.3, "s3", seed=1)
    double = sampled(2.0, "s4")
    assert double == [i for i in all_ids for _ in range(2)]


def test_min_text_length_after_replacement(mix_corpus, tmp_path):
    root, docs = mix_corpus
    out = tmp_path / "out"
    stream = stream_config(root, out, rules=[], dedupe=[], filter=None,
                           span_replacement=[{"span": f"$.attributes.{GOPHER}", "min_score": 0, "replacement": ""}])
    stream["output"]["min_text_length"] = 1
    run_mix([stream])
    assert read_output(out) == []  # every text became empty


@pytest.mark.parametrize("executor", [pytest.param("ray", marks=[pytest.mark.ray, pytest.mark.slow]), "local",
                                      "auto"])
def test_one_vs_two_workers_identical_bytes(mix_corpus, tmp_path, executor):
    root, _ = mix_corpus
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    reports = tmp_path / "serial.json", tmp_path / "parallel.json"
    run_mix([stream_config(root, serial, output={"path": str(serial), "max_size_in_bytes": 3000})],
            debug=False, report=str(reports[0]))
    config = from_dict(MixConfig, {"streams": [stream_config(root, parallel, output={
        "path": str(parallel), "max_size_in_bytes": 3000})], "processes": 2, "executor": executor,
        "report": str(reports[1])})
    assert command.run(config) == 0
    assert tree_bytes(serial) == tree_bytes(parallel)
    (one,), (two,) = (json.loads(path.read_text()) for path in reports)
    assert one["executor"]["kind"] == "serial" and one["executor"]["workers"] == 1
    assert two["executor"]["kind"] == {"auto": "local"}.get(executor, executor)
    assert two["executor"]["workers"] == 2  # two distinct worker processes ran files
    assert one["executor"]["worker_pids"][0] not in two["executor"]["worker_pids"]
    # the shards are packed by workers too (they read the parts and write the shards), not by this process
    assert len(json.loads(reports[1].read_text())[0]["shards"]) == 2
    assert two["executor"]["pack"]["kind"] == two["executor"]["kind"]
    assert os.getpid() not in [pid for _, pid in two["executor"]["pack"]["worker_pids"]]
    assert [pid for _, pid in one["executor"]["pack"]["worker_pids"]] == [os.getpid()]


def _mix_case() -> Case:
    """`dolma mix` on 2 processes over 8*scale files, sized shards: killed once one file's parts are done."""
    def make(root, scale):
        build_corpus(root, files=8 * scale, per_file=40 * scale)
        out = root / "out"
        stream = stream_config(root, out, output={"path": str(out), "max_size_in_bytes": 2000,
                                                  "discard_fields": ["attributes"]})
        (root / "mix.yaml").write_text(yaml.safe_dump({"streams": [stream], "processes": 2}))

    return Case(make=make, argv=lambda root: ["-c", str(root / "mix.yaml"), "mix"],
                finished=lambda root: (root / "out" / ".mixed.mix.done.json").exists(),
                outputs=lambda root: tree_bytes(root / "out"),
                watch=lambda root: root / "out" / ".parts")


def test_sigkilled_run_resumes_to_identical_bytes(tmp_path):
    """SIGKILL a real 2-process `dolma mix` once a file's parts are complete; the rerun keeps those files."""
    outcome = sigkill_and_resume(_mix_case(), tmp_path)
    files = len(list((outcome.killed / "documents").iterdir()))
    assert 1 <= len(outcome.at_kill) < files
    resumed = re.search(rf"mixed {files} file\(s\) \((\d+) already done\)", outcome.rerun_log)
    assert resumed and len(outcome.at_kill) <= int(resumed[1]) < files, outcome.rerun_log[-3000:]
    assert not (outcome.killed / "out" / ".parts").exists()  # parts packed into shards, then removed
    ids = [r["id"] for r in read_output(outcome.killed / "out")]
    assert len(ids) == len(set(ids)) and ids == [r["id"] for r in read_output(outcome.clean / "out")]


def test_cli_runs_a_dolma_config_unchanged(mix_corpus, tmp_path):
    import subprocess
    import sys

    import yaml

    root, docs = mix_corpus
    out = tmp_path / "out"
    stream = stream_config(root, out)
    for key in ("rules", "dedupe"):
        stream.pop(key)
    stream["compression"] = {"input": "gz", "output": "gz"}
    config = {"streams": [stream], "processes": 1, "work_dir": {"input": "/tmp/x", "output": "/tmp/y"}}
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "DOLMA_NO_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, "-m", "dolma_pipeline.cli", "-c", str(path), "mix", "--debug"],
                          capture_output=True, text=True, env=env, cwd=os.path.dirname(os.path.dirname(
                              os.path.dirname(os.path.abspath(__file__)))))
    assert proc.returncode == 0, proc.stderr
    assert "stream mixed" in proc.stderr and "spans replaced: EMAIL_ADDRESS" in proc.stderr
    assert len(read_output(out)) > 0


def test_rerun_with_another_config_replaces_the_shards(mix_corpus, tmp_path):
    root, docs = mix_corpus
    out = tmp_path / "out"
    run_mix([stream_config(root, out, output={"path": str(out), "max_size_in_bytes": 400})])
    many = sorted(n for n in os.listdir(out) if not n.startswith("."))
    run_mix([stream_config(root, out, output={"path": str(out), "max_size_in_bytes": 10_000_000,
                                               "discard_fields": ["attributes"]})])
    assert sorted(n for n in os.listdir(out) if not n.startswith(".")) == ["mixed-0000.jsonl.gz"] != many
    assert [r["id"] for r in read_output(out)] == list(expected_kept(docs))


def test_compression_level_and_dryrun(mix_corpus, tmp_path, capsys):
    root, _ = mix_corpus
    fast, default, dry = tmp_path / "fast", tmp_path / "default", tmp_path / "dry"
    run_mix([stream_config(root, fast, output={"path": str(fast), "compression_level": 1})])
    run_mix([stream_config(root, default, output={"path": str(default)})])
    assert read_output(fast) == read_output(default)
    assert (fast / "mixed-0000.jsonl.gz").read_bytes() != (default / "mixed-0000.jsonl.gz").read_bytes()
    assert run_mix([stream_config(root, dry)], dryrun=True) == 0
    assert not dry.exists() and "3 document file(s)" in capsys.readouterr().out
