"""Lines of a byte stream in bounded memory and linear time: bounded decompression, bounded line length.

Decompression hands out at most `CHUNK` bytes at a time (zlib's and zstd's `max_length`), so a gzip or
zstd bomb inflates piece by piece instead of all at once. Lines are assembled from those pieces with one
join when their newline arrives (a 2 GB line costs O(L), not a copy of the pending bytes per chunk), and a
line longer than `max_line_bytes` is reported as a `LineTooLong` as soon as it passes the bound; its
remaining bytes are read and dropped, never held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import IO, Any, NamedTuple

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


def _bounded_chunks(raw: IO[bytes], path: str, new: Callable[[], Any], error: type[Exception], what: str,
                    rest: Callable[[Any, bytes], bytes | None]) -> Iterator[bytes]:
    """Decompress frame after frame (gzip members, zstd frames), handing out at most CHUNK bytes per call.

    `rest(dec, out)` is the input for the next call on the same frame, or None when it needs new input.
    """
    dec = new()
    in_frame = False
    for data in iter(lambda: raw.read(CHUNK), b""):
        while True:
            in_frame = in_frame or bool(data)
            try:
                out = dec.decompress(data, CHUNK)
            except error as e:
                raise DataFormatError(path, None, f"corrupt {what} data ({e})") from None
            if out:
                yield out
            if dec.eof:  # the next member or frame starts on what is left
                data = dec.unused_data
                dec = new()
                in_frame = False
                if not data:
                    break
                continue
            data = rest(dec, out)
            if data is None:
                break
    if in_frame:
        raise DataFormatError(path, None, f"truncated {what} file (the compressed data ended inside a "
                                          f"{'member' if what == 'gzip' else 'frame'})")


def _gzip_rest(dec: Any, out: bytes) -> bytes | None:
    # Input zlib has not used yet, or b"" while output may be held back (the last call filled CHUNK).
    tail = dec.unconsumed_tail
    return tail if tail or len(out) == CHUNK else None


def _zstd_rest(dec: Any, out: bytes) -> bytes | None:
    return None if dec.needs_input else b""  # b"": ask for held-back output without new input


def decompressed_chunks(raw: IO[bytes], path: str) -> Iterator[bytes]:
    """The bytes of `raw`, decompressed by `path`'s extension (.gz, .zst), in pieces of at most CHUNK bytes.

    A truncated or corrupt archive is a file-level DataFormatError, never a short read.
    """
    if path.endswith(".gz"):
        return _bounded_chunks(raw, path, lambda: zlib.decompressobj(wbits=47), zlib.error, "gzip", _gzip_rest)
    if path.endswith((".zst", ".zstd")):
        return _bounded_chunks(raw, path, zstd.ZstdDecompressor, zstd.ZstdError, "zstd", _zstd_rest)
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
