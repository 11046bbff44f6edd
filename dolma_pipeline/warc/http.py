"""The HTTP response inside a WARC `response` record: status, headers and the decoded body.

Parsed here rather than by fastwarc so that a broken header is reported as broken (fastwarc returns a
record with no status and carries on) and so that a bad chunked or gzip body is an error of this record
only, never of the stream.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

MAX_HEADER_BYTES = 1 << 16
_STATUS_LINE = re.compile(rb"HTTP/\d(?:\.\d)?[ \t]+(\d{3})(?:[ \t][^\r\n]*)?")
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class RecordError(Exception):
    """Bad data in one record (handled by `on_error`); `reason` is the summary's counter name."""

    def __init__(self, reason: str, problem: str):
        super().__init__(problem)
        self.reason = reason


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def parse_response(block: bytes) -> HttpResponse:
    """Split a response record's block into status, headers and body (transfer and content codings undone).

    Raises RecordError("broken_http_header", ...) for a missing or malformed status line, a malformed header
    line or a header without its terminating blank line, and RecordError("bad_content_encoding", ...) for a
    chunked, gzip, deflate or brotli body that does not decode.
    """
    crlf = block.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES + 4)
    lf = block.find(b"\n\n", 0, MAX_HEADER_BYTES + 2)
    if crlf < 0 and lf < 0:
        raise RecordError("broken_http_header", "HTTP header not terminated by a blank line")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        head, body = block[:crlf], block[crlf + 4 :]
    else:  # LF-only line ends, as some servers send
        head, body = block[:lf], block[lf + 2 :]
    lines = head.split(b"\n")
    status_line = lines[0].rstrip(b"\r")
    match = _STATUS_LINE.fullmatch(status_line)
    if not match:
        raise RecordError("broken_http_header", f"bad HTTP status line {status_line[:80]!r}")
    headers: dict[str, str] = {}
    last = None
    for number, raw in enumerate(lines[1:], 2):
        line = raw.rstrip(b"\r")
        if line[:1] in (b" ", b"\t") and last is not None:  # obsolete line folding
            headers[last] += " " + line.strip().decode("latin-1")
            continue
        name, sep, value = line.partition(b":")
        if not sep or not _TOKEN.fullmatch(name):
            raise RecordError("broken_http_header", f"malformed HTTP header line {number}: {line[:80]!r}")
        last = name.decode("ascii").lower()
        value_text = value.strip().decode("latin-1")
        headers[last] = f"{headers[last]}, {value_text}" if last in headers else value_text
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    coding = headers.get("content-encoding", "").strip().lower()
    if coding and coding != "identity":
        body = _decode_content(body, coding)
    return HttpResponse(int(match.group(1)), headers, body)


def _dechunk(body: bytes) -> bytes:
    out, pos = [], 0
    while True:
        end = body.find(b"\n", pos)
        if end < 0:
            raise RecordError("bad_content_encoding", f"chunked body: chunk header missing at byte {pos}")
        size_text = body[pos:end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise RecordError("bad_content_encoding", f"chunked body: bad chunk size {size_text[:20]!r}") from None
        if size == 0:
            return b"".join(out)
        start = end + 1
        if start + size > len(body):
            raise RecordError("bad_content_encoding", "chunked body: last chunk truncated")
        out.append(body[start : start + size])
        pos = start + size
        pos += 2 if body[pos : pos + 2] == b"\r\n" else 1 if body[pos : pos + 1] == b"\n" else 0


def _decode_content(body: bytes, coding: str) -> bytes:
    try:
        if coding in ("gzip", "x-gzip"):
            return zlib.decompress(body, 47)
        if coding == "deflate":
            try:
                return zlib.decompress(body)
            except zlib.error:
                return zlib.decompress(body, -15)  # raw deflate, as some servers send
        if coding == "br":
            import brotli

            return brotli.decompress(body)
    except Exception as e:  # zlib.error, brotli.error
        raise RecordError("bad_content_encoding", f"{coding} body does not decode ({e})") from None
    raise RecordError("bad_content_encoding", f"unsupported Content-Encoding {coding!r}")
