"""Partitioned intermediate files: round trip, and corruption or truncation is an error naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from dolma_pipeline.dedupe.partfile import PartitionedFile, read_segment_from_all, write_partitioned
from dolma_pipeline.errors import DataFormatError

REC = np.dtype([("k", "<u8"), ("v", "<u4")])


def _records(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = np.empty(n, dtype=REC)
    r["k"], r["v"] = rng.integers(0, 2**63, n, dtype=np.uint64), rng.integers(0, 2**31, n)
    return r


def test_round_trip_groups_every_record_into_its_partition(tmp_path):
    records = _records(1000)
    part = (records["k"] % 7).astype(np.int64)
    path = str(tmp_path / "m.bin")
    assert write_partitioned(path, records, part, 7)["records"] == 1000
    f = PartitionedFile.open(path)
    assert f.num_segments == 7
    for p in range(7):
        seg = f.read(p)
        assert np.array_equal(seg, records[part == p])  # stable: input order kept within a partition
    assert len(read_segment_from_all([path, path], 3, REC)) == 2 * int((part == 3).sum())


def test_sorted_segments_are_sorted(tmp_path):
    records = _records(300, seed=1)
    path = str(tmp_path / "m.bin")
    write_partitioned(path, records, (records["v"] % 3).astype(np.int64), 3, sort_order=("k",))
    for p in range(3):
        keys = PartitionedFile.open(path).read(p)["k"]
        assert np.all(keys[1:] >= keys[:-1])


def test_flipped_byte_fails_the_checksum(tmp_path):
    path = tmp_path / "m.bin"
    write_partitioned(str(path), _records(100), np.zeros(100, dtype=np.int64), 1)
    data = bytearray(path.read_bytes())
    data[17] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(DataFormatError, match="checksum") as err:
        PartitionedFile.open(str(path)).read(0)
    assert str(path) in str(err.value)


def test_truncated_file_is_detected(tmp_path):
    path = tmp_path / "m.bin"
    write_partitioned(str(path), _records(100), np.zeros(100, dtype=np.int64), 1)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataFormatError, match="truncated"):
        PartitionedFile.open(str(path))
