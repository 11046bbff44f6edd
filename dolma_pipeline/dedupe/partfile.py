"""Self-checking partitioned record files: the unit of every shuffle in `dolma dedupe`.

A mapper writes ONE file holding a segment per reducer partition (records of one fixed numpy dtype,
grouped by partition); a reducer reads only its own segment from every mapper file (a seek and one
read each), like a sort-based MapReduce shuffle, so the number of files grows with mappers, not with
mappers x reducers. Layout::

    [segment 0 bytes][segment 1 bytes]...[index JSON][8-byte little-endian index length][MAGIC]

The index holds the dtype, and per segment its offset, record count and CRC-32. Readers check the
magic, the byte length (count x itemsize) and the CRC of every segment they read, so a truncated or
corrupted intermediate file is an error naming the file and segment, never a silent short read.
Files are written through `io.AtomicWriter` (temporary name + rename).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

import numpy as np
import orjson

from dolma_pipeline import io
from dolma_pipeline.errors import DataFormatError

MAGIC = b"DPPART01"
_TAIL = 8 + len(MAGIC)


def write_partitioned(path: str, records: np.ndarray, partition_of: np.ndarray, num_partitions: int,
                      sort_order: tuple[str, ...] | None = None) -> dict[str, int]:
    """Write `records` grouped by `partition_of` (ints in [0, num_partitions)).

    Within a segment, records keep a deterministic order: by `sort_order` fields if given, else
    the input order (a stable sort by partition). Returns {"records": n, "bytes": size}.
    """
    assert len(records) == len(partition_of)
    partition_of = np.asarray(partition_of, dtype=np.int64)
    if sort_order:
        keys = [records[name] for name in reversed(sort_order)] + [partition_of]
        records = np.take(records, np.lexsort(keys))  # take: far faster than [] on structured records
    elif len(partition_of) > 1 and np.any(partition_of[1:] < partition_of[:-1]):
        records = np.take(records, np.argsort(partition_of, kind="stable"))
    # else already grouped (exact dedupe's mapper sorts by hash first): no copy
    counts = np.bincount(partition_of, minlength=num_partitions)
    assert len(counts) == num_partitions, "partition index out of range"
    return _write_segments(path, records, counts)


def write_segments(path: str, segments: list[np.ndarray], dtype: np.dtype) -> dict[str, int]:
    """Write already-grouped segments (each an array of `dtype`, possibly empty) in order."""
    records = np.concatenate(segments) if segments else np.empty(0, dtype=dtype)
    counts = np.array([len(s) for s in segments], dtype=np.int64)
    return _write_segments(path, records.astype(dtype, copy=False), counts)


def _write_segments(path: str, records: np.ndarray, counts: np.ndarray) -> dict[str, int]:
    body = np.ascontiguousarray(records).tobytes()
    itemsize = records.dtype.itemsize
    bounds = np.concatenate([[0], np.cumsum(counts)]) * itemsize
    index = {
        "dtype": records.dtype.descr,
        "segments": [
            [int(bounds[i]), int(counts[i]), zlib.crc32(body[bounds[i]: bounds[i + 1]])]
            for i in range(len(counts))
        ],
    }
    blob = orjson.dumps(index)
    with io.AtomicWriter(path) as out:
        out.write(body)
        out.write(blob)
        out.write(len(blob).to_bytes(8, "little") + MAGIC)
    return {"records": int(len(records)), "bytes": len(body) + len(blob) + _TAIL}


@dataclass
class PartitionedFile:
    """Read access to one partitioned file; the index is read and checked once."""

    path: str
    dtype: np.dtype
    segments: list[list[int]]
    _size: int
    _local: np.ndarray | None = None  # a read-only memory map of a local file: no open() per read

    @classmethod
    def open(cls, path: str) -> PartitionedFile:
        try:
            with io.open_raw(path) as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                if size < _TAIL:
                    raise DataFormatError(path, None, f"intermediate file too short ({size} bytes): truncated")
                fh.seek(size - _TAIL)
                tail = fh.read(_TAIL)
                if tail[8:] != MAGIC:
                    raise DataFormatError(path, None, "intermediate file has no end marker: truncated or foreign")
                length = int.from_bytes(tail[:8], "little")
                if length > size - _TAIL:
                    raise DataFormatError(path, None, "intermediate file index length is out of range")
                fh.seek(size - _TAIL - length)
                index = orjson.loads(fh.read(length))
        except (OSError, orjson.JSONDecodeError) as e:
            raise DataFormatError(path, None, f"cannot read intermediate file index: {e}") from None
        dtype = np.dtype([tuple(field) for field in index["dtype"]])
        local = None
        if not io.is_remote(path) and size - _TAIL - length > 0:
            local = np.memmap(io.strip_file_scheme(path), dtype=np.uint8, mode="r", shape=(size - _TAIL - length,))
        return cls(path, dtype, index["segments"], size - _TAIL - length, local)

    @property
    def num_segments(self) -> int:
        return len(self.segments)

    def count(self, segment: int) -> int:
        return self.segments[segment][1]

    def read(self, segment: int) -> np.ndarray:
        """The records of one segment, after checking their length and CRC-32."""
        if not 0 <= segment < len(self.segments):
            raise DataFormatError(self.path, None, f"has {len(self.segments)} segments, segment {segment} requested")
        offset, count, crc = self.segments[segment]
        length = count * self.dtype.itemsize
        if offset + length > self._size:
            raise DataFormatError(self.path, None, f"segment {segment} extends past the data: truncated")
        if count == 0:
            return np.empty(0, dtype=self.dtype)
        if self._local is not None:
            data = self._local[offset: offset + length].tobytes()
        else:
            data = io.read_range(self.path, offset, length)
        if len(data) != length or zlib.crc32(data) != crc:
            raise DataFormatError(self.path, None, f"segment {segment}: checksum mismatch ({count} records): corrupted")
        return np.frombuffer(data, dtype=self.dtype)


def read_segment_from_all(paths: list[str], segment: int, dtype: np.dtype) -> np.ndarray:
    """Concatenate segment `segment` of every file in `paths` (the reducer side of a shuffle)."""
    parts = []
    for path in paths:
        part = PartitionedFile.open(path)
        if part.dtype != dtype:
            raise DataFormatError(path, None, f"record type {part.dtype} differs from the expected {dtype}")
        parts.append(part.read(segment))
    return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)
