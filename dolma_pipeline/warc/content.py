"""Is a payload HTML, and what is its text? Content-Type with sniffing, then charset detection.

HTML: a declared `text/html` or `application/xhtml+xml` whose bytes are not a known binary format and
contain markup; a generic or missing type (`application/octet-stream`, `text/plain`, none) whose first
bytes look like HTML (the WHATWG sniffing patterns). Everything else (images, PDFs, scripts, styles,
JSON) is not HTML.

Charset, in the WHATWG order: a byte-order mark, the HTTP `charset`, a `<meta>` charset in the first
4 KiB, then detection (uchardet through resiliparse). The first that decodes the whole payload strictly
wins; labels map as browsers map them (`iso-8859-1` is read as windows-1252). A payload that none of them
decodes is decoded with replacement characters only when they are at most one in a thousand characters;
otherwise it is undecodable.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator

from dolma_pipeline.warc.http import RecordError

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
GENERIC_TYPES = frozenset({
    "", "application/octet-stream", "binary/octet-stream", "text/plain", "unknown/unknown",
    "application/unknown", "application/x-unknown-content-type", "*/*",
})
_MAGIC = (
    (b"%PDF-", "pdf"), (b"\x89PNG\r\n\x1a\n", "png"), (b"GIF87a", "gif"), (b"GIF89a", "gif"),
    (b"\xff\xd8\xff", "jpeg"), (b"PK\x03\x04", "zip"), (b"\x1f\x8b", "gzip"), (b"RIFF", "riff"),
    (b"OggS", "ogg"), (b"ID3", "mp3"), (b"%!PS", "postscript"), (b"\x00asm", "wasm"), (b"wOFF", "woff"),
    (b"wOF2", "woff2"), (b"\x7fELF", "elf"), (b"BZh", "bzip2"), (b"7z\xbc\xaf\x27\x1c", "7z"),
    (b"Rar!", "rar"), (b"\x00\x00\x01\x00", "ico"), (b"\x1aE\xdf\xa3", "webm"), (b"fLaC", "flac"),
    (b"\xd0\xcf\x11\xe0", "ole2"),
)
# WHATWG "rules for identifying an unknown MIME type": leading whitespace, then one of these tags.
_HTML_START = re.compile(
    rb"\A(?:\xef\xbb\xbf)?[\t\n\x0c\r ]*<(?:!doctype[\t\n\x0c\r ]+html|html|head|body|script|iframe|h1|div"
    rb"|font|table|a|style|title|b|br|p|!--)(?:[\t\n\x0c\r >]|(?<=!--))", re.IGNORECASE)
_MARKUP = re.compile(rb"<[!?/A-Za-z]")
_META_CHARSET = re.compile(rb"""<meta[^>]{0,512}?charset[\t\n\x0c\r ]*=[\t\n\x0c\r ]*["']?[\t\n\x0c\r ]*([A-Za-z0-9_.:-]{1,40})""",
                           re.IGNORECASE)
# Labels servers use for windows-1252 pages, read as browsers read them.
_AS_CP1252 = frozenset({"latin_1", "ascii", "iso8859_1", "cp1252"})
MAX_REPLACED = 1 / 1000


class ContentError(RecordError):
    """A payload that is not HTML (`not_html`) or that no charset decodes (`undecodable`)."""


def split_content_type(content_type: str) -> tuple[str, str | None]:
    """`text/html; charset=UTF-8` → (`text/html`, `UTF-8`)."""
    mime, *params = content_type.split(";")
    charset = None
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip("\"'").strip() or None
    return mime.strip().lower(), charset


def check_html(mime: str, body: bytes) -> None:
    """Raise ContentError("not_html", ...) unless the payload is HTML (see the module doc)."""
    head = body[:4096]
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            raise ContentError("not_html", f"{kind} payload (Content-Type {mime or 'missing'})")
    if b"\x00" in head[:1024] and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ContentError("not_html", f"binary payload (Content-Type {mime or 'missing'})")
    if mime in HTML_TYPES:
        if not _MARKUP.search(head) and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise ContentError("not_html", f"declared {mime} but holds no markup in its first 4 KiB")
        return
    if mime in GENERIC_TYPES:
        if _HTML_START.match(head) or (head.lstrip().startswith(b"<?xml") and b"<html" in head.lower()):
            return
        raise ContentError("not_html", f"Content-Type {mime or 'missing'} and the payload does not look like HTML")
    raise ContentError("not_html", f"Content-Type {mime}")


def _codec(label: str | None) -> str | None:
    """The Python codec for a charset label, as browsers map labels; None for an unknown label."""
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().strip("\"'")).name
    except (LookupError, ValueError):
        return None
    name = name.replace("-", "_")
    return "cp1252" if name in _AS_CP1252 else name


def _candidates(body: bytes, declared: str | None) -> Iterator[str | None]:
    if body.startswith(codecs.BOM_UTF8):
        yield "utf_8_sig"
    elif body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        yield "utf_16"
    else:
        yield _codec(declared)
        meta = _META_CHARSET.search(body[:4096])
        yield _codec(meta.group(1).decode("ascii") if meta else None)
        from resiliparse.parse.encoding import detect_encoding  # only when the declared ones fail

        yield _codec(detect_encoding(body, html5_compatible=False))


def decode_payload(body: bytes, declared: str | None) -> tuple[str, str]:
    """Decode an HTML payload; returns (text, codec name). Raises ContentError("undecodable", ...)."""
    tried: list[str] = []
    for codec in _candidates(body, declared):
        if codec and codec not in tried:
            tried.append(codec)
            try:
                return body.decode(codec), codec
            except UnicodeDecodeError:
                pass
    for codec in tried:  # a few stray bytes: replaced, as a browser shows them
        text = body.decode(codec, errors="replace")
        if text.count("\ufffd") <= max(1, len(text) * MAX_REPLACED):
            return text, codec
    label = f"declared {declared!r}, " if declared else ""
    raise ContentError("undecodable", f"no charset decodes the payload ({label}tried {', '.join(tried) or 'none'})")
