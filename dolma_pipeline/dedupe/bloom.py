"""Dolma's `bloom_filter` block in exact dedupe: write a Bloom filter of a run's unit hashes, or flag the
units found in a filter written by an earlier run (`read_only`), Dolma's decontamination workflow.

The filter is `dolma_pipeline.decontaminate.bloom.BloomFilter` over the same 128-bit BLAKE2b unit hashes
the exact dedupe shuffles, so a filter built from one corpus (say an evaluation set's paragraphs) tests
another run's units of the same kind.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from dolma_pipeline.decontaminate.bloom import BloomFilter
from dolma_pipeline.dedupe.config import BloomFilterConfig
from dolma_pipeline.dedupe.exact import DUP_RECORD, HASH_RECORD
from dolma_pipeline.dedupe.partfile import read_segment_from_all, write_partitioned
from dolma_pipeline.dedupe.plan import LINE_BITS, ReduceShard, counts_cpu
from dolma_pipeline.errors import ConfigError

log = logging.getLogger(__name__)
DEFAULT_FALSE_POSITIVE_RATE = 1e-4


def filter_fingerprint(config: BloomFilterConfig) -> list[Any]:
    """What a read-only run's answer depends on: the filter file's path, size and modification time."""
    path = config.file or ""
    if not os.path.exists(path):
        raise ConfigError(f"bloom_filter.file {path} does not exist (read_only needs a filter built earlier, "
                          "by a run with read_only: false and this file)")
    stat = os.stat(path)
    return ["bloom", os.path.abspath(path), stat.st_size, stat.st_mtime_ns]


@dataclass
class BloomReduceShard(ReduceShard):
    filter_file: str = ""


@counts_cpu
def bloom_reduce(shard: BloomReduceShard) -> dict[str, Any]:
    """Every unit of the partition whose hash is in the filter is flagged (one record per unit)."""
    records = read_segment_from_all(shard.inputs, shard.partition, HASH_RECORD)
    found = BloomFilter.load(shard.filter_file).contains(records["h0"], records["h1"])
    dups = np.empty(int(found.sum()), dtype=DUP_RECORD)
    for name in DUP_RECORD.names:
        dups[name] = records[name][found]
    file_of = (dups["ref"] >> np.uint64(LINE_BITS)).astype(np.int64)
    written = write_partitioned(shard.output, dups, file_of, shard.outputs, sort_order=("ref", "para"))
    return {"unique_units": int((~found).sum()), "duplicate_units": len(dups), "intermediate_bytes": written["bytes"]}


def write_filter(config: BloomFilterConfig, map_files: list[str], partitions: int) -> BloomFilter:
    """A filter of every unit hash in the map outputs, saved at `config.file`."""
    assert config.file
    parts = [read_segment_from_all(map_files, p, HASH_RECORD) for p in range(partitions)]
    count = sum(len(p) for p in parts)
    bloom = BloomFilter.sized(config.estimated_doc_count or count,
                              config.desired_false_positive_rate or DEFAULT_FALSE_POSITIVE_RATE, config.size_in_bytes)
    for records in parts:
        bloom.add(records["h0"], records["h1"])
    directory = os.path.dirname(os.path.abspath(config.file))
    os.makedirs(directory, exist_ok=True)
    bloom.save(config.file)
    log.info("bloom_filter: %d unit hashes written to %s (%d bits, %d hashes, false-positive rate %.2g)",
             count, config.file, bloom.m, bloom.k, bloom.false_positive_rate)
    return bloom


def describe(config: BloomFilterConfig) -> str:
    """The line a run prints about its `bloom_filter` block."""
    if config.read_only:
        return f"bloom_filter: read-only; flagged the units found in {config.file} (Bloom filter: false positives possible)"
    written = f"; a Bloom filter of this run's units was written to {config.file}" if config.file else ""
    return f"bloom_filter: accepted; dedupe is exact here (sorted 128-bit hashes, no false positives){written}"
