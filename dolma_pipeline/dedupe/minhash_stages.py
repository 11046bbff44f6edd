"""MinHash near-duplicate dedupe as a chain of sharded stages on Ray.

sign (per input file)  signatures → LSH band keys, written partitioned by band key; shingle sets for
                       the exact Jaccard check (one segment per document)
bucket (per partition) documents sharing a band key → candidate pairs, partitioned by vertex
verify (per partition) unique candidate pairs, kept if their exact Jaccard ≥ threshold
components             large-star / small-star rounds until the edge set is stable (components.py)
clusters (per part.)   each component's members, its first document and its size, by input file
write (per input file) Dolma attribute rows: duplicate flag, cluster id, cluster size
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from dolma_pipeline import io
from dolma_pipeline.config import fingerprint, to_dict
from dolma_pipeline.dedupe import components
from dolma_pipeline.dedupe.config import DedupeConfig, MinHashConfig
from dolma_pipeline.dedupe.minhash import MinHasher, jaccard
from dolma_pipeline.dedupe.partfile import (
    PartitionedFile,
    read_segment_from_all,
    write_partitioned,
    write_segments,
)
from dolma_pipeline.dedupe.plan import (
    LINE_BITS,
    LINE_MASK,
    ReduceShard,
    RunPlan,
    counts_cpu,
    make_plan,
    write_rows,
)
from dolma_pipeline.documents import attribute_key
from dolma_pipeline.errors import DolmaError
from dolma_pipeline.executor import Shard
from dolma_pipeline.lines import DEFAULT_MAX_LINE_BYTES
from dolma_pipeline.reader import ReadStats, read_documents

log = logging.getLogger(__name__)

BAND_RECORD = np.dtype([("key", "<u8"), ("ref", "<u8")])
SHINGLES = np.dtype([("h", "<u4")])
TAGGER = "minhash_v1"
MAX_ROUNDS = 64
_HASHERS: dict[str, MinHasher] = {}


def _hasher(config: MinHashConfig) -> MinHasher:
    key = fingerprint(to_dict(config))
    if key not in _HASHERS:
        _HASHERS[key] = MinHasher(config)
    return _HASHERS[key]


@dataclass
class SignShard(Shard):
    file_index: int = 0
    minhash: MinHashConfig = field(default_factory=MinHashConfig)
    partitions: int = 1
    shingles_output: str = ""
    skip_empty: bool = False
    min_length: int = 0
    min_words: int = 0
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES


@counts_cpu
def sign(shard: SignShard) -> dict[str, Any]:
    hasher = _hasher(shard.minhash)
    stats = ReadStats()
    refs, signatures, shingle_sets = [], [], []
    skipped = {"skipped_no_words": 0, "skipped_min_length": 0, "skipped_min_words": 0}
    base = shard.file_index << LINE_BITS
    for doc in read_documents(shard.input, "fail", stats, max_line_bytes=shard.max_line_bytes):
        if shard.min_length and len(doc.text) < shard.min_length:
            skipped["skipped_min_length"] += 1
            continue
        if shard.min_words and len(doc.words) < shard.min_words:
            skipped["skipped_min_words"] += 1
            continue
        hashes = hasher.shingle_hashes(doc.text)
        if len(hashes) == 0:  # nothing to compare: never a duplicate
            skipped["skipped_no_words"] += 1
            continue
        refs.append(base | doc.line)
        signatures.append(hasher.signature(hashes))
        if shard.shingles_output:
            while len(shingle_sets) < doc.line - 1:
                shingle_sets.append(np.empty(0, dtype=SHINGLES))
            shingle_sets.append(np.unique(hashes).view(SHINGLES))
    extra = 0
    if shard.shingles_output:  # one segment per line, so the verifier can fetch any document's set
        extra = write_segments(shard.shingles_output, shingle_sets, SHINGLES)["bytes"]
    bands = shard.minhash.bands
    keys = hasher.band_keys(np.stack(signatures)) if signatures else np.empty((0, bands), dtype=np.uint64)
    records = np.empty(keys.size, dtype=BAND_RECORD)
    records["key"] = keys.reshape(-1)
    records["ref"] = np.repeat(np.array(refs, dtype=np.uint64), bands)
    partition = (records["key"] % np.uint64(shard.partitions)).astype(np.int64)
    written = write_partitioned(shard.output, records, partition, shard.partitions, sort_order=("key", "ref"))
    return {**stats.as_dict(), **skipped, "signed": len(refs), "intermediate_bytes": written["bytes"] + extra}


@dataclass
class BucketShard(ReduceShard):
    all_pairs: bool = True
    max_bucket_pairs: int = 64


def bucket_pairs(keys: np.ndarray, refs: np.ndarray, all_pairs: bool, max_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (a < b) from records sorted by (key, ref). A bucket is linked as all pairs when
    candidates get verified (a failed pair must not cut the others) and small enough, else as a star on
    its first document plus a chain (enough for connectivity, linear in the bucket size)."""
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    a_parts, b_parts = [], []
    multi = sizes > 1
    small = multi & (sizes <= max_pairs) if all_pairs else np.zeros_like(multi)
    for start, size in zip(starts[small], sizes[small]):
        i, j = np.triu_indices(int(size), 1)
        a_parts.append(refs[start + i])
        b_parts.append(refs[start + j])
    for start, size in zip(starts[multi & ~small], sizes[multi & ~small]):
        group = refs[start: start + size]
        a_parts += [np.full(size - 1, group[0], dtype=np.uint64), group[1:-1]]
        b_parts += [group[1:], group[2:]]
    if not a_parts:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint64)
    return np.concatenate(a_parts), np.concatenate(b_parts)


@counts_cpu
def bucket(shard: BucketShard) -> dict[str, Any]:
    records = read_segment_from_all(shard.inputs, shard.partition, BAND_RECORD)
    records = np.take(records, np.lexsort((records["ref"], records["key"])))
    a, b = bucket_pairs(records["key"], records["ref"], shard.all_pairs, shard.max_bucket_pairs)
    pairs = np.unique(components.edges(a, b))
    written = components.write_keyed(shard.output, pairs, shard.outputs)
    return {"band_records": len(records), "candidate_pairs_emitted": len(pairs),
            "intermediate_bytes": written["bytes"]}


@dataclass
class VerifyShard(ReduceShard):
    shingle_files: list[str] = field(default_factory=list)
    threshold: float = 0.8


class ShingleStore:
    """The shingle set of any document, read from the signers' files; at most `max_open` file indexes
    are kept, so a reducer's memory does not grow with the number of input files."""

    def __init__(self, paths: list[str], max_open: int = 128):
        self.paths = paths
        self.max_open = max_open
        self._open: OrderedDict[int, PartitionedFile] = OrderedDict()

    def get(self, ref: int) -> np.ndarray:
        index, line = ref >> LINE_BITS, ref & LINE_MASK
        part = self._open.get(index)
        if part is None:
            part = self._open[index] = PartitionedFile.open(self.paths[index])
            if len(self._open) > self.max_open:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(index)
        return part.read(line - 1)["h"]


@counts_cpu
def verify(shard: VerifyShard) -> dict[str, Any]:
    pairs = components.load_unique(shard.inputs, shard.partition)
    if shard.shingle_files:
        store = ShingleStore(shard.shingle_files)
        keep = np.array([jaccard(store.get(a), store.get(b)) >= shard.threshold
                         for a, b in zip(pairs["u"].tolist(), pairs["v"].tolist())], dtype=bool)
        pairs = pairs[keep] if len(pairs) else pairs
        checked = len(keep)
    else:
        checked = 0
    written = components.write_keyed(shard.output, components.both_directions(pairs["u"], pairs["v"]),
                                     shard.outputs)
    return {"candidate_pairs": checked if shard.shingle_files else len(pairs), "verified_pairs": len(pairs),
            "intermediate_bytes": written["bytes"]}


@dataclass
class WriteShard(Shard):
    file_index: int = 0
    inputs: list[str] = field(default_factory=list)
    name: str = ""
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES


@counts_cpu
def write_attributes(shard: WriteShard) -> dict[str, Any]:
    clusters = read_segment_from_all(shard.inputs, shard.file_index, components.CLUSTER)
    by_line = {ref & LINE_MASK: (cluster, size) for ref, cluster, size in
               zip(clusters["ref"].tolist(), clusters["cluster"].tolist(), clusters["size"].tolist())}
    keys = [attribute_key(shard.name, TAGGER, t) for t in ("duplicate", "cluster_id", "cluster_size")]
    base = shard.file_index << LINE_BITS
    stats = ReadStats()
    duplicates = 0

    def rows():
        nonlocal duplicates
        for doc in read_documents(shard.input, "fail", stats, max_line_bytes=shard.max_line_bytes):
            ref = base | doc.line
            cluster, size = by_line.get(doc.line, (ref, 1))
            dup = 1.0 if cluster != ref else 0.0
            duplicates += int(dup)
            end = len(doc.text)
            row: dict[str, Any] = {"id": doc.id, "attributes": {
                keys[0]: [[0, end, dup]], keys[1]: [[0, end, float(cluster)]], keys[2]: [[0, end, float(size)]]}}
            if doc.source is not None:
                row["source"] = doc.source
            yield orjson.dumps(row)

    with io.AtomicWriter(shard.output) as writer:
        write_rows(writer, rows())
    return {**stats.as_dict(), "duplicates": duplicates}


# -------------------------------------------------------------------------------------------- orchestration
def run_minhash(config: DedupeConfig, runner: Any) -> RunPlan:
    section = config.dedupe
    cfg = section.minhash
    assert cfg is not None
    P = config.num_partitions
    plan = make_plan(config, ["minhash", 1, to_dict(cfg), section.min_length, section.min_words])
    final_fp = fingerprint([plan.inputs_fingerprint, section.name])
    write_shards = [WriteShard(input=path, output=out, fingerprint=final_fp, file_index=i, name=section.name,
                               max_line_bytes=config.max_line_bytes, inputs=[plan.stage_dir("clusters", f"{p:05d}.bin") for p in range(P)])
                    for i, (path, out) in enumerate(zip(plan.files, plan.attribute_files))]
    if not runner.all_done(write_shards):
        cluster_files = _shuffle_and_cluster(config, runner, plan, P)
        for shard in write_shards:
            shard.inputs = cluster_files
    runner.run("write", write_attributes, write_shards)
    return plan


def _shuffle_and_cluster(config: DedupeConfig, runner: Any, plan: RunPlan, P: int) -> list[str]:
    section = config.dedupe
    cfg = section.minhash
    n = len(plan.files)
    sign_files = [plan.stage_dir("sign", f"{i:06d}.bin") for i in range(n)]
    shingle_files = [plan.stage_dir("shingles", f"{i:06d}.bin") for i in range(n)] if cfg.verify else []
    runner.run("sign", sign, [
        SignShard(input=path, output=out, fingerprint=fingerprint([fp, P]), file_index=i, minhash=cfg, partitions=P,
                  shingles_output=shingle_files[i] if cfg.verify else "", min_length=section.min_length,
                  min_words=section.min_words, max_line_bytes=config.max_line_bytes)
        for i, (path, out, fp) in enumerate(zip(plan.files, sign_files, plan.file_fingerprints))])
    base_fp = fingerprint([plan.inputs_fingerprint, P])
    bucket_files = [plan.stage_dir("bucket", f"{p:05d}.bin") for p in range(P)]
    runner.run("bucket", bucket, [
        BucketShard(input=f"partition {p}", output=out, fingerprint=base_fp, partition=p, inputs=sign_files,
                    outputs=P, all_pairs=cfg.verify, max_bucket_pairs=cfg.max_bucket_pairs)
        for p, out in enumerate(bucket_files)])
    current = [plan.stage_dir("verify", f"{p:05d}.bin") for p in range(P)]
    runner.run("verify", verify, [
        VerifyShard(input=f"partition {p}", output=out, fingerprint=base_fp, partition=p, inputs=bucket_files,
                    outputs=P, shingle_files=shingle_files, threshold=cfg.jaccard_threshold)
        for p, out in enumerate(current)])
    previous: tuple[int, int] | None = None
    for round_index in range(MAX_ROUNDS):
        round_fp = fingerprint([base_fp, round_index])
        large = [plan.stage_dir("components", f"r{round_index:02d}", "large", f"{p:05d}.bin") for p in range(P)]
        summary = runner.run("large_star", components.large_star, [
            ReduceShard(input=f"partition {p}", output=out, fingerprint=round_fp, partition=p,
                                 inputs=current, outputs=P) for p, out in enumerate(large)])
        state = (summary.extra.get("edges_in", 0), summary.extra.get("digest_in", 0))
        if state == previous or state[0] == 0:
            log.info("components converged after %d round(s)", round_index)
            break
        previous = state
        small = [plan.stage_dir("components", f"r{round_index:02d}", "small", f"{p:05d}.bin") for p in range(P)]
        runner.run("small_star", components.small_star, [
            ReduceShard(input=f"partition {p}", output=out, fingerprint=round_fp, partition=p,
                                 inputs=large, outputs=P) for p, out in enumerate(small)])
        current = small
    else:
        raise DolmaError(f"connected components did not converge in {MAX_ROUNDS} rounds")
    cluster_files = [plan.stage_dir("clusters", f"{p:05d}.bin") for p in range(P)]
    runner.run("clusters", components.emit_clusters, [
        ReduceShard(input=f"partition {p}", output=out, fingerprint=fingerprint([base_fp, current]),
                                partition=p, inputs=current, outputs=n) for p, out in enumerate(cluster_files)])
    return cluster_files
