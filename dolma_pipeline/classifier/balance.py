"""From per-file example files to fastText's training and validation files, out of core.

Training units of each label are kept with probability `keep[label]` (the rarest label's count over the
label's count when balancing, capped by `max_examples_per_label`), decided by a hash of the unit's key:
deterministic and independent of the number of workers. fastText does not shuffle its input, so the
kept units are ordered by key: they are spread over buckets by the key's top bits (each bucket holds a
contiguous key range and at most about `bucket_bytes` of text), then each bucket is sorted in memory
and appended in order. Validation units keep their natural label proportions, in input order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

from dolma_pipeline import io

_SAMPLE_SALT = 0x9E3779B97F4A7C15
_MASK = (1 << 64) - 1


def sample_draw(key: int) -> float:
    """A number in [0, 1) from a unit key, independent of the key's order (SplitMix64 finaliser)."""
    x = (key ^ _SAMPLE_SALT) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return (x ^ (x >> 31)) / 2.0**64


def keep_probabilities(train_counts: dict[str, int], balance: bool, cap: int) -> dict[str, float]:
    """Per label, the probability of keeping one training unit."""
    target = min(train_counts.values()) if balance else None
    out = {}
    for label, count in train_counts.items():
        want = count if target is None else target
        if cap:
            want = min(want, cap)
        out[label] = 1.0 if count == 0 else min(1.0, want / count)
    return out


def _records(paths: list[str]) -> Iterator[tuple[str, int, str, bytes]]:
    for path in paths:
        with open(path, "rb") as fh:
            for line in fh:
                split, key, label, text = line.rstrip(b"\n").split(b"\t", 3)
                yield split.decode(), int(key, 16), label.decode(), text


def build_files(example_files: list[str], train_path: str, valid_path: str, keep: dict[str, float],
                bucket_bytes: int, train_bytes: int, work_dir: str) -> tuple[dict[str, int], dict[str, int]]:
    """Write fastText's `__label__X text` lines to `train_path` (shuffled) and `valid_path`; kept counts."""
    buckets = max(1, math.ceil(train_bytes / max(bucket_bytes, 1)))
    bucket_dir = os.path.join(work_dir, "buckets")
    os.makedirs(bucket_dir, exist_ok=True)
    bucket_paths = [os.path.join(bucket_dir, f"bucket-{i:05d}.txt") for i in range(buckets)]
    kept_train: dict[str, int] = {}
    kept_valid: dict[str, int] = {}
    handles = [open(p, "wb") for p in bucket_paths]
    try:
        with io.AtomicWriter(valid_path) as valid:
            for split, key, label, text in _records(example_files):
                if split == "v":
                    valid.write(b"__label__" + label.encode() + b" " + text + b"\n")
                    kept_valid[label] = kept_valid.get(label, 0) + 1
                    continue
                if keep.get(label, 1.0) < 1.0 and sample_draw(key) >= keep[label]:
                    continue
                kept_train[label] = kept_train.get(label, 0) + 1
                handles[(key * buckets) >> 64].write(b"%016x\t%s\t%s\n" % (key, label.encode(), text))
    finally:
        for handle in handles:
            handle.close()
    with io.AtomicWriter(train_path) as train:
        for path in bucket_paths:
            with open(path, "rb") as fh:
                rows = [line.rstrip(b"\n").split(b"\t", 2) for line in fh]
            rows.sort()  # by key, then label and text (equal keys only for repeated ids)
            for _, label, text in rows:
                train.write(b"__label__" + label + b" " + text + b"\n")
            os.remove(path)
    return kept_train, kept_valid
