"""From a WARC record to a page (id, URL, dates, decoded HTML or WET text), or the reason it is not one.

Two kinds of "no": a *filter* (not a response, HTTP status other than 200, not HTML, empty page) is
counted and never an error, since every crawl holds such records; a *problem* (a WARC record without its
mandatory headers, a broken HTTP header, a body whose coding does not decode, an undecodable charset)
is bad data and goes through `on_error`.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import re
from dataclasses import dataclass

from dolma_pipeline.warc.content import ContentError, check_html, decode_payload, split_content_type
from dolma_pipeline.warc.http import RecordError, parse_response
from dolma_pipeline.warc.reader import Record

_WARC_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?(Z|[+-]00:?00)?")


class Filtered(Exception):
    """A record that is not a page (counted under `reason`, never an error)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Page:
    id: str
    url: str
    record_id: str
    created: str
    warc_date: datetime.datetime
    offset: int
    content: str  # decoded HTML, or the text of a WET record
    content_type: str
    charset: str
    refers_to: str | None = None


def parse_warc_date(text: str) -> datetime.datetime:
    """A WARC-Date (W3C-DTF, UTC) as a naive UTC datetime; ValueError when it is not one."""
    match = _WARC_DATE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a WARC date: {text!r}")
    year, month, day, hour, minute, second, fraction, _ = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    return datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                             micro)


def dolma_timestamp(when: datetime.datetime) -> str:
    """Dolma's timestamp format: ISO-8601 to the millisecond with a `Z` (`2024-10-01T10:00:00.000Z`)."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] + "Z"


def _digest_id(value: str) -> str:
    return base64.b32encode(hashlib.sha1(value.encode("utf-8")).digest()).decode("ascii").lower()


def document_id(record: Record, body: bytes, id_from: str) -> str:
    """`record_id`: base32 SHA-1 of the WARC-Record-ID (unique per record). `payload_digest`: Dolma 1.2.1's id,
    the record's WARC-Payload-Digest without its `sha1:` prefix, lower case (shared by identical payloads)."""
    if id_from == "payload_digest":
        digest = record.headers.get("WARC-Payload-Digest", "")
        if ":" in digest:
            return digest.split(":", 1)[1].strip().lower()
        return base64.b32encode(hashlib.sha1(body).digest()).decode("ascii").lower()
    return _digest_id(record.headers["WARC-Record-ID"].strip())


def _required(record: Record) -> tuple[str, str, datetime.datetime]:
    missing = [h for h in ("WARC-Record-ID", "WARC-Date", "WARC-Target-URI") if not record.headers.get(h, "").strip()]
    if missing:
        raise RecordError("bad_warc_record", f"{record.type} record without {', '.join(missing)}")
    try:
        date = parse_warc_date(record.headers["WARC-Date"])
    except ValueError as e:
        raise RecordError("bad_warc_record", str(e)) from None
    return record.headers["WARC-Target-URI"].strip(), record.headers["WARC-Record-ID"].strip(), date


def html_page(record: Record, id_from: str) -> Page:
    """A `response` record with HTTP 200 and an HTML payload, decoded. Raises Filtered or RecordError."""
    if record.type != "response":
        raise Filtered("not_response")
    url, record_id, date = _required(record)
    response = parse_response(record.block)
    if response.status != 200:
        raise Filtered("http_status_not_200")
    body = response.body
    if not body.strip():
        raise Filtered("empty_page")
    mime, declared = split_content_type(response.content_type)
    try:
        check_html(mime, body)
    except ContentError:
        raise Filtered("not_html") from None
    html, codec = decode_payload(body, declared)
    return Page(document_id(record, body, id_from), url, record_id, dolma_timestamp(date), date, record.offset,
                html.strip(), mime, codec)


def wet_page(record: Record, id_from: str) -> Page:
    """A `conversion` record of a WET file (text already extracted, UTF-8). Raises Filtered or RecordError."""
    if record.type != "conversion":
        raise Filtered("not_conversion")
    url, record_id, date = _required(record)
    if not record.block.strip():
        raise Filtered("empty_page")
    try:
        text = record.block.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecordError("undecodable", f"WET text is not UTF-8 (byte {e.start})") from None
    mime, _ = split_content_type(record.headers.get("Content-Type", "text/plain"))
    return Page(document_id(record, record.block, id_from), url, record_id, dolma_timestamp(date), date,
                record.offset, text.strip(), mime, "utf_8", record.headers.get("WARC-Refers-To"))
