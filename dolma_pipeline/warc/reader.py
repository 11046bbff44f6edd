"""WARC records with the byte offset where each starts, and every unreadable stretch reported, never dropped.

`.warc.gz` (gzip member per record, as Common Crawl ships it): the members are framed here, so each record
carries the compressed offset of its member (the offset a CDX index gives), a corrupt member is reported at
its offset and reading resumes at the next member, and a file that ends inside a member is reported as
truncated (fastwarc alone returns the short payload of a truncated member as if it were whole). Each
member's records are parsed by fastwarc.

Other files (`.warc`, `.warc.lz4`, `.warc.zst`) are read by fastwarc as one stream. A record shorter than
its `Content-Length` is reported as truncated; data fastwarc cannot parse is a problem at the offset of
the last good record, after which a plain `.warc` is read on from the next line that starts a record
(a compressed stream cannot be resumed: the rest of that file is not read).
"""

from __future__ import annotations

import io as _io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from dolma_pipeline.io import open_raw

CHUNK = 1 << 20
MAX_MEMBER_BYTES = 1 << 30
GZIP_MAGIC = b"\x1f\x8b\x08"


@dataclass
class Record:
    """One WARC record: where it starts in the file, its WARC headers and its whole block."""

    offset: int
    type: str  # lower-case WARC-Type
    headers: dict[str, str]
    block: bytes


@dataclass
class Problem:
    """An unreadable stretch of the file; `reason` is the summary's counter name."""

    offset: int
    reason: str
    problem: str


def iter_warc(path: str) -> Iterator[Record | Problem]:
    """Yield the records of one WARC file in order, and a Problem wherever the file is unreadable."""
    with open_raw(path) as raw:
        if path.endswith(".gz"):
            for member in _gzip_members(raw):
                if isinstance(member, Problem):
                    yield member
                else:
                    yield from _records(_io.BytesIO(member[1]), member[0], per_member=True)
        elif path.endswith((".lz4", ".zst", ".zstd")) or not _seekable(raw):
            yield from _records(raw, 0, per_member=False)
        else:
            yield from _plain_records(raw)


def _seekable(raw: IO[bytes]) -> bool:
    try:
        return bool(raw.seekable())
    except (AttributeError, OSError):
        return False


def _plain_records(raw: IO[bytes]) -> Iterator[Record | Problem]:
    """Records of an uncompressed WARC file; after data fastwarc cannot parse, reading resumes at the next
    line that starts a WARC record (`WARC/1.`), past the last good record's block."""
    base = 0
    while True:
        raw.seek(base)
        resume_from = None
        for item in _records(raw, base, per_member=False):
            if isinstance(item, Record):
                resume_from = item.offset + len(item.block)
            elif item.problem.startswith("unreadable WARC data"):
                resume_from = max(resume_from or 0, item.offset + 1)
                yield item
                break
            yield item
        else:
            return
        base = _next_record_start(raw, resume_from)
        if base is None:
            return


def _next_record_start(raw: IO[bytes], start: int) -> int | None:
    """The offset of the next line starting with `WARC/1.` at or after `start`, or None."""
    raw.seek(max(0, start - 1))
    position, tail = max(0, start - 1), b""
    while True:
        chunk = raw.read(CHUNK)
        if not chunk:
            return None
        data = tail + chunk
        found = data.find(b"\nWARC/1.")
        if found >= 0:
            return position - len(tail) + found + 1
        tail = data[-8:]
        position += len(chunk)


def _records(stream: IO[bytes], base: int, per_member: bool) -> Iterator[Record | Problem]:
    from fastwarc.warc import ArchiveIterator

    found = False
    last_end = base
    try:
        for record in ArchiveIterator(stream, parse_http=False, fsspec_args=False):
            offset = base if per_member else record.stream_pos  # the stream's own position: absolute after a seek
            headers = {k: v for k, v in record.headers.items()}
            block = record.reader.read() if record.reader is not None else b""
            found = True
            declared = headers.get("Content-Length", "")
            if not declared.strip().isdigit():
                yield Problem(offset, "bad_warc_record", f"WARC record without a valid Content-Length ({declared!r})")
                continue
            if len(block) < int(declared):
                yield Problem(offset, "truncated", f"WARC record truncated: {len(block):,} of {int(declared):,} bytes")
                continue
            last_end = offset
            yield Record(offset, headers.get("WARC-Type", "").strip().lower(), headers, block)
    except OSError as e:
        where = "in the gzip member" if per_member else "after the record"
        yield Problem(last_end, "bad_warc_record", f"unreadable WARC data {where} at this offset ({e})")
        return
    if per_member and not found:
        yield Problem(base, "bad_warc_record", "gzip member holds no WARC record")


def _gzip_members(raw: IO[bytes]) -> Iterator[tuple[int, bytes] | Problem]:
    """Yield (compressed offset, decompressed bytes) per gzip member, or a Problem per unreadable stretch.

    After a corrupt member, reading resumes at the next offset that starts a member which decompresses to
    a WARC record; the stretch in between is one problem.
    """
    buf = bytearray()
    base = 0  # file offset of buf[0]
    pos = 0  # start of the current member within buf
    at_eof = False
    resyncing = False

    def fill() -> bool:
        nonlocal at_eof
        if at_eof:
            return False
        chunk = raw.read(CHUNK)
        if not chunk:
            at_eof = True
            return False
        buf.extend(chunk)
        return True

    while True:
        if pos > CHUNK:  # drop what is consumed
            del buf[:pos]
            base += pos
            pos = 0
        while len(buf) - pos < 3 and fill():
            pass
        if pos >= len(buf):
            return
        start = base + pos
        member, end, error = _inflate_member(buf, pos, fill)
        if member is not None and member.startswith(b"WARC/"):
            resyncing = False
            yield start, member
            pos = end
            continue
        if not resyncing:
            if error == "truncated":
                yield Problem(start, "truncated", "truncated gzip member: the file ends inside it")
                return
            what = error or "gzip member does not hold a WARC record"
            yield Problem(start, "corrupt_gzip", f"{what}; skipped to the next gzip member")
            resyncing = True
        # resume at the next gzip magic after this start
        while True:
            found = buf.find(GZIP_MAGIC, pos + 1)
            if found >= 0:
                pos = found
                break
            pos = max(pos, len(buf) - 2)
            if not fill():
                return


def _inflate_member(buf: bytearray, pos: int, fill) -> tuple[bytes | None, int, str | None]:
    """Decompress the gzip member starting at buf[pos]: (data, end position, None) or (None, pos, error)."""
    if bytes(buf[pos : pos + 3]) != GZIP_MAGIC:
        return None, pos, f"not a gzip member (starts with {bytes(buf[pos:pos + 4])!r})"
    dec = zlib.decompressobj(31)
    parts: list[bytes] = []
    size = 0
    p = pos
    try:
        while not dec.eof:
            if p >= len(buf) and not fill():
                return None, pos, "truncated"
            chunk = bytes(buf[p : p + CHUNK])
            out = dec.decompress(chunk)
            size += len(out)
            if size > MAX_MEMBER_BYTES:
                return None, pos, f"gzip member larger than {MAX_MEMBER_BYTES:,} bytes decompressed"
            parts.append(out)
            p += len(chunk) - len(dec.unused_data)
    except zlib.error as e:
        return None, pos, f"corrupt gzip member ({e})"
    return b"".join(parts), p, None
