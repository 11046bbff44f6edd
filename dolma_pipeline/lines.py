"""Lines of a byte stream in bounded memory and linear time: bounded decompression, bounded line length.

Decompression hands out at most `CHUNK` bytes at a time (zlib's and zstd's `max_length`), so a gzip or
zstd bomb inflates piece by piece instead of all at once. Lines are assembled from those pieces with one
join when their newline arrives (a 2 GB line costs O(L), not a copy of the pending bytes per chunk), and a
line longer than `max_line_bytes` is reported as a `LineTooLong` as soon as it passes the bound; its
remaining bytes are read and dropped, never held.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import IO, NamedTuple

from zlib_ng import zlib_ng as zlib

from dolma_pipeline.errors import DataFormatError

try:  # the stdlib module from Python 3.14, whose decompressor bounds each output (max_length)
    from compression import zstd
except ImportError:  # older Pythons: its backport (pyproject: backports.zstd, also pulled in by smart_open[zst])
    from backports import zstd

CHUNK = 1 << 20

# The longest line (one document, decompressed) a command reads unless told otherwise. Real documents are
# far shorter (a whole book is a few MB; Dolma's longest sources stay under ~10 MB), and the bound keeps one
# line, its parsed text and a tagger's code-point array under about 1 GB of a worker's memory.
DEFAULT_MAX_LINE_BYTES = 64 << 20


class LineTooLong(NamedTuple):
    """Stands for a line longer than the bound, in the place of that line."""

    offset: int  # byte offset of the line's start in the (decompressed) stream
    max_line_bytes: int

    def problem(self) -> str:
        return (f"line longer than max_line_bytes={self.max_line_bytes} (it starts at byte {self.offset} of the "
                "decompressed stream); raise --max_line_bytes or skip such lines with --on_error skip_line")


def _gzip_chunks(raw: IO[bytes], path: str) -> Iterator[bytes]:
    dec = zlib.decompressobj(wbits=47)
    in_member = False
    for data in iter(lambda: raw.read(CHUNK), b""):
        while True:
            in_member = in_member or bool(data)
            try:
                out = dec.decompress(data, CHUNK)
            except zlib.error as e:
                raise DataFormatError(path, None, f"corrupt gzip data ({e})") from None
            if out:
                yield out
            if dec.eof:  # a multi-member gzip: start the next member on what is left
                data = dec.unused_data
                dec = zlib.decompressobj(wbits=47)
                in_member = False
                if not data:
                    break
                continue
            data = dec.unconsumed_tail
            if not data and len(out) < CHUNK:  # input used up and no output held back
                break
    if in_member:
        raise DataFormatError(path, None, "truncated gzip file (compressed data ended before the end-of-stream marker)")


def _zstd_chunks(raw: IO[bytes], path: str) -> Iterator[bytes]:
    dec = zstd.ZstdDecompressor()
    in_frame = False
    for data in iter(lambda: raw.read(CHUNK), b""):
        while True:
            in_frame = in_frame or bool(data)
            try:
                out = dec.decompress(data, CHUNK)
            except zstd.ZstdError as e:
                raise DataFormatError(path, None, f"corrupt zstd data ({e})") from None
            if out:
                yield out
            if dec.eof:  # several frames: start the next one on what is left
                data = dec.unused_data
                dec = zstd.ZstdDecompressor()
                in_frame = False
                if not data:
                    break
                continue
            if dec.needs_input:
                break
            data = b""  # output held back: ask for it without new input
    if in_frame:
        raise DataFormatError(path, None, "truncated zstd file (the last frame is incomplete)")


def decompressed_chunks(raw: IO[bytes], path: str) -> Iterator[bytes]:
    """The bytes of `raw`, decompressed by `path`'s extension (.gz, .zst), in pieces of at most CHUNK bytes.

    A truncated or corrupt archive is a file-level DataFormatError, never a short read.
    """
    if path.endswith(".gz"):
        return _gzip_chunks(raw, path)
    if path.endswith((".zst", ".zstd")):
        return _zstd_chunks(raw, path)
    return iter(lambda: raw.read(CHUNK), b"")


def split_lines(chunks: Iterable[bytes], max_line_bytes: int) -> Iterator[bytes | LineTooLong]:
    """The lines of a stream given in chunks, without their newline; one `LineTooLong` per overlong line."""
    pieces: list[bytes] = []  # the pending line in pieces, joined once when its newline arrives
    size = 0  # bytes of the pending line so far
    start = 0  # stream offset of the pending line
    offset = 0  # stream offset of the current chunk
    dropping = False  # the pending line passed the bound: drop its bytes up to its newline
    for chunk in chunks:
        parts = chunk.split(b"\n")
        head = parts[0]
        size += len(head)
        if len(parts) == 1:  # no newline: the pending line grows
            if not dropping:
                if size > max_line_bytes:
                    dropping, pieces = True, []
                    yield LineTooLong(start, max_line_bytes)
                else:
                    pieces.append(head)
            offset += len(chunk)
            continue
        if dropping:
            dropping = False
        elif size > max_line_bytes:
            yield LineTooLong(start, max_line_bytes)
        elif pieces:
            pieces.append(head)
            yield b"".join(pieces)
        else:
            yield head
        last = parts.pop()
        if max_line_bytes < len(chunk):  # only then can a line inside this chunk pass the bound
            position = offset + len(head) + 1
            for line in parts[1:]:
                yield line if len(line) <= max_line_bytes else LineTooLong(position, max_line_bytes)
                position += len(line) + 1
        else:
            yield from islice(parts, 1, None)
        offset += len(chunk)
        size = len(last)
        start = offset - size
        pieces = [last] if last else []
        if size > max_line_bytes:
            dropping, pieces = True, []
            yield LineTooLong(start, max_line_bytes)
    if size and not dropping:
        yield b"".join(pieces)
