"""`dolma dedupe` with MinHash: clusters of near-duplicates, deterministic, resumable, on Ray."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess

import numpy as np
import orjson
import pytest

from dolma_pipeline.dedupe.config import MinHashConfig
from dolma_pipeline.dedupe.minhash import MinHasher, jaccard
from dolma_pipeline.errors import DataFormatError
from tests.conftest import DOLMA, REPO
from tests.dedupe.conftest import assert_resumed_stage, dedupe_case, read_attributes, run_dedupe
from tests.sigkill import sigkill_and_resume

CONFIG = os.path.join(REPO, "configs", "dedupe", "minhash.yaml")
KEYS = ("minhash__minhash_v1__duplicate", "minhash__minhash_v1__cluster_id", "minhash__minhash_v1__cluster_size")


def _results(root) -> dict[str, tuple[float, float, float]]:
    """doc id -> (duplicate, cluster id, cluster size), checking the rows line up with the documents."""
    out = {}
    for name in sorted(os.listdir(root / "documents")):
        with gzip.open(root / "documents" / name) as fh:
            docs = [orjson.loads(line) for line in fh]
        with gzip.open(root / "attributes" / "minhash" / name) as fh:
            rows = [orjson.loads(line) for line in fh]
        assert [d["id"] for d in docs] == [r["id"] for r in rows]
        for doc, row in zip(docs, rows, strict=True):
            spans = [row["attributes"][k] for k in KEYS]
            assert all(s[0][:2] == [0, len(doc["text"])] and isinstance(s[0][2], float) for s in spans)
            out[doc["id"]] = tuple(s[0][2] for s in spans)
    return out


def test_near_duplicates_cluster_and_all_but_the_first_are_flagged(near_dup_corpus, near_dup_docs):
    assert run_dedupe(["--documents", str(near_dup_corpus / "documents"), "--debug"], CONFIG) == 0
    results = _results(near_dup_corpus)
    by_cluster: dict[float, list[str]] = {}
    for doc_id, (_, cluster, _) in results.items():
        by_cluster.setdefault(cluster, []).append(doc_id)
    for members in by_cluster.values():
        flags = [results[m][0] for m in members]
        assert flags.count(0.0) == 1  # exactly one kept copy per cluster
        assert all(results[m][2] == len(members) for m in members)
        assert len({m.split("-")[0] for m in members}) == 1  # never merges different base documents
    # a variant with true word 5-gram Jaccard >= 0.9 to its base is in the base's cluster; one below 0.5 is not
    hasher = MinHasher(MinHashConfig())
    shingles = {d["id"]: np.unique(hasher.shingle_hashes(d["text"])) for d in near_dup_docs}
    checked = {"close": 0, "far": 0}
    for doc in near_dup_docs:
        base = f"{doc['id'].split('-')[0]}-base"
        similarity = jaccard(shingles[doc["id"]], shingles[base])
        same = results[doc["id"]][1] == results[base][1]
        if similarity >= 0.9 and doc["id"] != base:
            assert same, doc["id"]
            checked["close"] += 1
        elif similarity < 0.5:
            assert not same or any(
                jaccard(shingles[doc["id"]], shingles[m]) >= 0.8 for m in by_cluster[results[doc["id"]][1]]
                if m != doc["id"]), doc["id"]
            checked["far"] += 1
    assert checked["close"] >= 5 and checked["far"] >= 3


def test_the_kept_copy_is_the_first_in_path_and_line_order(near_dup_corpus):
    assert run_dedupe(["--documents", str(near_dup_corpus / "documents"), "--debug"], CONFIG) == 0
    seen_clusters = set()
    for name in sorted(os.listdir(near_dup_corpus / "attributes" / "minhash")):
        if not name.endswith(".gz"):
            continue
        with gzip.open(near_dup_corpus / "attributes" / "minhash" / name) as fh:
            for row in fh:
                attrs = orjson.loads(row)["attributes"]
                cluster, dup = attrs[KEYS[1]][0][2], attrs[KEYS[0]][0][2]
                assert dup == (1.0 if cluster in seen_clusters else 0.0)
                seen_clusters.add(cluster)


def test_second_run_flags_the_same_documents(near_dup_corpus):
    args = ["--documents", str(near_dup_corpus / "documents"), "--debug"]
    assert run_dedupe(args, CONFIG) == 0
    first = read_attributes(near_dup_corpus, "minhash")
    assert run_dedupe([*args, "--ignore_existing"], CONFIG) == 0
    assert read_attributes(near_dup_corpus, "minhash") == first


@pytest.mark.parametrize("stage, watch", [("sign", "dedupe_work/minhash/sign"),
                                          pytest.param("verify", "dedupe_work/minhash/verify", marks=pytest.mark.slow),
                                          pytest.param("write", "attributes/minhash", marks=pytest.mark.slow)])
def test_sigkilled_run_resumes_to_the_same_bytes(tmp_path, stage, watch):
    """SIGKILL a real 2-process `dolma dedupe` once `stage` has finished a shard; rerun; compare bytes."""
    outcome = sigkill_and_resume(dedupe_case("minhash", [], watch, CONFIG), tmp_path)
    assert_resumed_stage(outcome, stage)
    results = _results(outcome.killed)  # one row per document, in document order, in every file
    assert results == _results(outcome.clean) and sum(dup for dup, _, _ in results.values()) > 0


def test_partition_count_does_not_change_the_bytes(near_dup_corpus, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(near_dup_corpus / "documents", other / "documents")
    assert run_dedupe(["--documents", str(near_dup_corpus / "documents"), "--debug"], CONFIG) == 0
    assert run_dedupe(["--documents", str(other / "documents"), "--debug", "--partitions", "1"], CONFIG) == 0
    assert read_attributes(near_dup_corpus, "minhash") == read_attributes(other, "minhash")


def test_corrupted_intermediate_file_fails_with_its_name(near_dup_corpus):
    args = ["--documents", str(near_dup_corpus / "documents"), "--debug", "--keep_work_dir"]
    assert run_dedupe(args, CONFIG) == 0
    work = near_dup_corpus / "dedupe_work" / "minhash"
    victim = work / "sign" / "000001.bin"
    data = bytearray(victim.read_bytes())
    data[40] ^= 0xFF
    victim.write_bytes(bytes(data))
    # forget every finished stage after the signatures: the rerun must read the damaged file again
    for marker in [*work.glob("bucket/.*.done.json"), *(near_dup_corpus / "attributes").glob("**/.*.done.json")]:
        marker.unlink()
    with pytest.raises(DataFormatError, match="000001.bin.*checksum"):
        run_dedupe(args, CONFIG)


@pytest.mark.ray
@pytest.mark.slow
def test_cli_on_ray_one_and_two_workers_identical(near_dup_corpus, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(near_dup_corpus / "documents", other / "documents")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    for root, processes in ((near_dup_corpus, "1"), (other, "2")):
        proc = subprocess.run([*DOLMA, "-c", CONFIG, "dedupe", "--documents", str(root / "documents"),
                               "--processes", processes, "--executor", "ray"], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_attributes(near_dup_corpus, "minhash") == read_attributes(other, "minhash")
    one, two = (orjson.loads((root / "attributes/minhash/dolma_dedupe.summary.json").read_bytes())["summary"]
                for root in (near_dup_corpus, other))
    assert one["executor"]["kind"] == two["executor"]["kind"] == "ray"
    # the 2-process run ran its shards (the components rounds among them) in two distinct Ray workers
    assert one["executor"]["workers"] == 1 and two["executor"]["workers"] == 2
    assert len({pid for _, pid in two["executor"]["worker_pids"]}) >= 2
    for summary in (one, two):  # clusters found and the large/small-star rounds ran on the workers
        assert summary["extra"]["clusters"] > 0 and summary["extra"]["large_star_seconds"] > 0
    assert one["extra"]["clusters"] == two["extra"]["clusters"]


def test_cli_runs_the_shipped_config_and_rejects_unknown_keys(near_dup_corpus):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    ok = subprocess.run([*DOLMA, "-c", CONFIG, "dedupe", "--documents", str(near_dup_corpus / "documents"), "--debug"],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "dolma dedupe (minhash)" in ok.stdout
    assert len(_results(near_dup_corpus)) == 48
    bad = subprocess.run([*DOLMA, "-c", CONFIG, "dedupe", "--documents", str(near_dup_corpus / "documents"),
                          "--dedupe.minhash.band", "3"], cwd=REPO, env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "unknown key dedupe.minhash.band" in bad.stderr


def test_local_process_pool_gives_the_same_bytes_as_a_serial_run(near_dup_corpus, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(near_dup_corpus / "documents", other / "documents")
    assert run_dedupe(["--documents", str(near_dup_corpus / "documents"), "--debug"], CONFIG) == 0
    assert run_dedupe(["--documents", str(other / "documents"), "--processes", "2", "--executor", "local"],
                      CONFIG) == 0
    assert read_attributes(near_dup_corpus, "minhash") == read_attributes(other, "minhash")


def test_without_the_exact_check_identical_copies_still_cluster(near_dup_corpus, near_dup_docs):
    args = ["--documents", str(near_dup_corpus / "documents"), "--debug", "--dedupe.minhash.verify", "false",
            "--dedupe.minhash.bands", "9", "--dedupe.minhash.rows", "13", "--keep_work_dir"]
    assert run_dedupe(args, CONFIG) == 0
    results = _results(near_dup_corpus)
    texts = {d["id"]: d["text"] for d in near_dup_docs}
    copies = [d["id"] for d in near_dup_docs if d["metadata"]["edit_rate"] == 0.0 and not d["id"].endswith("base")]
    assert copies
    for doc_id in copies:
        base = doc_id.split("-")[0] + "-base"
        assert texts[doc_id] == texts[base]
        assert results[doc_id][1] == results[base][1] and results[doc_id][2] >= 2
    work = near_dup_corpus / "dedupe_work" / "minhash"
    assert (work / "sign").is_dir() and not (work / "shingles").exists()  # no shingle sets without the check
