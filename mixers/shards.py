"""Output shards sized by their compressed bytes, numbered deterministically.

Each input file is mixed by one work unit into its own *parts* (hidden, under `<output>/.parts/<name>/`),
cut whenever a part's compressed size reaches `max_size_in_bytes`. After every unit has finished, the
parts are packed in input-file order into `<name>-NNNN.jsonl.gz|.zst`: consecutive parts are
concatenated (gzip members and zstd frames concatenate into valid files) while the shard stays within
the limit. Parts depend only on their input file and the config, and packing only on the parts, so the
output bytes are the same for any number of workers and after an interrupted run is resumed.

Every part and shard is fsynced before its rename. The parts directory is created by the tool (with
`safety`'s sentinel) and removed after packing; hidden temporary shards a killed pack left behind are
removed when the stream is packed again.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass, field

from dolma_pipeline import io
from dolma_pipeline.config import fingerprint
from dolma_pipeline.errors import DolmaError
from dolma_pipeline.executor import Shard, marker_path
from dolma_pipeline.safety import claim_dir, remove_owned_dir

COPY_CHUNK = 1 << 22


class _AtomicRawFile:
    """Bytes to a hidden temporary beside `path`, renamed on close (remote: visible on upload completion)."""

    def __init__(self, path: str):
        self.path = path
        self.remote = io.is_remote(path)
        if self.remote:
            self.tmp = path
            self.fh = io.open_raw(path, "wb")
        else:
            directory, name = os.path.split(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
            self.tmp = os.path.join(directory, f".{name}.tmp-{uuid.uuid4().hex[:12]}")
            self.fh = open(self.tmp, "wb")

    def write(self, data: bytes) -> None:
        self.fh.write(data)

    def commit(self) -> None:
        if self.remote:
            self.fh.close()
        else:
            io.commit_local(self.fh, self.tmp, self.path)

    def abort(self) -> None:
        if self.remote:
            terminate = getattr(self.fh, "terminate", None)
            (terminate or self.fh.close)()
            return
        self.fh.close()
        try:
            os.remove(self.tmp)
        except FileNotFoundError:
            pass


@dataclass
class Part:
    path: str
    documents: int
    compressed_bytes: int
    text_bytes: int


class PartWriter:
    """Writes one input file's kept documents into parts `<prefix>-NNNN<ext>` of bounded compressed size.

    Compressors buffer their output, so the size written so far understates a part. The writer keeps an
    estimate (bytes out + pending input x the compression ratio seen so far) and, when the estimate
    reaches the limit, sync-flushes the compressor (it keeps its dictionary; a few bytes each) to learn
    the exact size. A part is closed at the first document that brings its exact size to the limit.
    """

    def __init__(self, prefix: str, extension: str, max_bytes: int, level: int | None = None):
        self.prefix, self.extension, self.max_bytes, self.level = prefix, extension, max_bytes, level
        self.parts: list[Part] = []
        self._file: _AtomicRawFile | None = None
        self._compress = None
        self._docs = self._compressed = self._raw = self._pending = 0
        self._ratio = 1.0

    def _open(self) -> None:
        path = f"{self.prefix}-{len(self.parts):04d}{self.extension}"
        self._file = _AtomicRawFile(path)
        self._compress = io.compressor(path, self.level)
        self._docs = self._compressed = self._raw = self._pending = 0

    def write(self, line: bytes) -> None:
        if self._file is None:
            self._open()
        self._raw += len(line)
        self._docs += 1
        if self._compress is None:
            self._file.write(line)
            self._compressed += len(line)
        else:
            out = self._compress.compress(line)
            if out:
                self._file.write(out)
                self._compressed += len(out)
            self._pending += len(line)
            if self._compressed + self._pending * self._ratio < self.max_bytes:
                return
            out = self._compress.flush(self._sync_mode)
            self._file.write(out)
            self._compressed += len(out)
            self._pending = 0
            self._ratio = self._compressed / self._raw
        if self._compressed >= self.max_bytes:
            self._close()

    @property
    def _sync_mode(self) -> int:
        return io.sync_flush_mode(self.extension)

    def _close(self) -> None:
        if self._compress is not None:
            tail = self._compress.flush()
            self._file.write(tail)
            self._compressed += len(tail)
        self._file.commit()
        self.parts.append(Part(self._file.path, self._docs, self._compressed, self._raw))
        self._file = None

    def close(self) -> list[Part]:
        """Finish the last part; a file with no kept documents still gets one (empty) part as its record."""
        if self._file is None and not self.parts:
            self._open()
        if self._file is not None:
            self._close()
        return self.parts

    def abort(self) -> None:
        if self._file is not None:
            self._file.abort()
            self._file = None


def plan_shards(parts: list[Part], max_bytes: int) -> list[list[Part]]:
    """Group consecutive parts greedily into shards of at most `max_bytes` (a bigger part stands alone)."""
    shards: list[list[Part]] = []
    size = 0
    for part in parts:
        if part.documents == 0:
            continue
        if shards and size + part.compressed_bytes <= max_bytes:
            shards[-1].append(part)
            size += part.compressed_bytes
        else:
            shards.append([part])
            size = part.compressed_bytes
    return shards


def shard_name(name: str, index: int, extension: str) -> str:
    return f"{name}-{index:04d}{extension}"


@dataclass
class PackShard(Shard):
    """One output shard and the parts concatenated into it, in order: a unit of work for the executor, so
    that workers, not the driver, read the parts and write the shard."""

    parts: list[str] = field(default_factory=list)
    documents: int = 0
    compressed_bytes: int = 0


def pack_plan(output_dir: str, name: str, extension: str, groups: list[list[Part]],
              stream_fingerprint: str) -> list[PackShard]:
    """One `PackShard` per group of parts (see `plan_shards`), numbered in order."""
    shards = []
    for index, group in enumerate(groups):
        parts = [p.path for p in group]
        shards.append(PackShard(
            input=parts[0], output=io.join(output_dir, shard_name(name, index, extension)),
            fingerprint=fingerprint({"stream": stream_fingerprint, "index": index,
                                     "parts": [[os.path.basename(p.path), p.compressed_bytes] for p in group]}),
            parts=parts, documents=sum(p.documents for p in group),
            compressed_bytes=sum(p.compressed_bytes for p in group)))
    return shards


def pack_shard(shard: PackShard) -> dict[str, int]:
    """Executor work: concatenate the shard's parts into it atomically (gzip members and zstd frames
    concatenate into valid files). A lone local part is moved instead; a rerun after a kill between that
    move and the completion marker finds the shard in place, of the recorded size."""
    target = shard.output
    local = not io.is_remote(target) and not any(io.is_remote(p) for p in shard.parts)
    if local and len(shard.parts) == 1:
        part = shard.parts[0]
        if os.path.exists(part):
            os.replace(part, target)
            io.renamed_into(os.path.dirname(target))
        elif not (os.path.exists(target) and os.path.getsize(target) == shard.compressed_bytes):
            raise DolmaError(f"{part}: the part of shard {target} is missing; rerun with --ignore_existing")
    else:
        out = _AtomicRawFile(target)
        try:
            for path in shard.parts:
                with io.open_raw(path) as fh:
                    for chunk in iter(lambda fh=fh: fh.read(COPY_CHUNK), b""):
                        out.write(chunk)
        except BaseException:
            out.abort()
            raise
        out.commit()
    return {"documents": shard.documents, "bytes": shard.compressed_bytes}


def remove_stale_shards(output_dir: str, name: str, keep: int) -> None:
    """Shards numbered >= `keep` left by an earlier run with a different config, and their packing
    markers (local outputs only)."""
    if io.is_remote(output_dir) or not os.path.isdir(output_dir):
        return
    pattern = re.compile(r"\.?" + re.escape(name) + r"-(\d{4,})\.jsonl(\.gz|\.zst)?(\.done\.json)?$")
    for entry in os.listdir(output_dir):
        m = pattern.match(entry)
        if m and int(m.group(1)) >= keep and (entry.startswith(".") == bool(m.group(3))):
            os.remove(os.path.join(output_dir, entry))


def remove_stale_temporaries(output_dir: str, name: str, extension: str) -> None:
    """Hidden temporaries a killed pack left: shards `.<name>-NNNN<ext>.tmp-*` and the stream's records
    `..<name>.mix_*.tmp-*` (local outputs only)."""
    if io.is_remote(output_dir) or not os.path.isdir(output_dir):
        return
    name = re.escape(name)
    pattern = re.compile(rf"\.({name}-\d{{4,}}{re.escape(extension)}|\.{name}\.mix(_config\.yaml|_report\.json|\.done\.json))"
                         r"\.tmp-[0-9a-f]+$")
    for entry in os.listdir(output_dir):
        if pattern.match(entry):
            try:
                os.remove(os.path.join(output_dir, entry))
            except FileNotFoundError:
                pass


def claim_parts_dir(parts_dir: str) -> None:
    """Create the parts directory as the tool's own, so that `remove_parts` may delete it."""
    if not io.is_remote(parts_dir):
        claim_dir(parts_dir)


def remove_parts(parts_dir: str, paths: list[str], packs: list[PackShard]) -> None:
    """After the stream's marker: its parts (with their markers) and the packing markers of its shards."""
    for pack in packs:
        io.remove(marker_path(pack.output))
    for path in paths:
        io.remove(path)
        io.remove(f"{os.path.dirname(path)}/.{os.path.basename(path)}.done.json")
    if not io.is_remote(parts_dir):
        remove_owned_dir(parts_dir)
        try:
            os.rmdir(os.path.dirname(parts_dir))  # `.parts/` itself, once no stream uses it
        except OSError:
            pass
