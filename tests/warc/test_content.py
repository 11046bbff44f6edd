"""HTTP parsing, HTML sniffing and charset decoding of single payloads."""

from __future__ import annotations

import gzip

import pytest

from dolma_pipeline.warc.content import ContentError, check_html, decode_payload, split_content_type
from dolma_pipeline.warc.http import RecordError, parse_response

PAGE = "<html><head><title>Straße</title></head><body><p>Grüße aus Köln — “quoted”.</p></body></html>"


def test_response_parts_and_codings():
    r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nX-A: 1\r\nX-A: 2\r\n\r\n<p>hi</p>")
    assert (r.status, r.content_type, r.headers["x-a"], r.body) == (200, "text/html; charset=utf-8", "1, 2", b"<p>hi</p>")
    assert parse_response(b"HTTP/1.0 404\nContent-Type: text/html\n\nnope").status == 404  # LF-only head
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n<p>h\r\n5;x=y\r\ni</p>\r\n0\r\n\r\n"
    assert parse_response(chunked).body == b"<p>hi</p>"
    zipped = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\n" + gzip.compress(b"<p>hi</p>")
    assert parse_response(zipped).body == b"<p>hi</p>"


@pytest.mark.parametrize("block, reason", [
    (b"HTTXP garbage\r\nContent-Type: text/html\r\n\r\n<p>x</p>", "broken_http_header"),
    (b"HTTP/1.1 abc OK\r\n\r\n<p>x</p>", "broken_http_header"),
    (b"HTTP/1.1 200 OK\r\nContent-Type text/html\r\n\r\n<p>x</p>", "broken_http_header"),
    (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n", "broken_http_header"),
    (b"", "broken_http_header"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n<p>x\r\n0\r\n\r\n", "bad_content_encoding"),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n\r\nnot gzip at all", "bad_content_encoding"),
])
def test_broken_responses_name_their_problem(block, reason):
    with pytest.raises(RecordError) as e:
        parse_response(block)
    assert e.value.reason == reason and str(e.value)


def test_content_type_split():
    assert split_content_type('Text/HTML; Charset="ISO-8859-1"') == ("text/html", "ISO-8859-1")
    assert split_content_type("") == ("", None)


@pytest.mark.parametrize("mime, body, is_html", [
    ("text/html", b"<!doctype html><html><body>x</body></html>", True),
    ("application/xhtml+xml", b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"></html>', True),
    ("application/octet-stream", b"  <html><body>sniffed</body></html>", True),  # lying generic type
    ("", b"<!DOCTYPE HTML PUBLIC><p>no type</p>", True),
    ("text/plain", b"<!-- comment --><p>x</p>", True),
    ("text/html", b"%PDF-1.4 a pdf served as html", False),  # lying HTML type
    ("text/html", b"\x89PNG\r\n\x1a\n....", False),
    ("text/html", b'{"json": "served as html"}', False),
    ("application/octet-stream", b"\x00\x01binary", False),
    ("text/plain", b"just text, no markup at all", False),
    ("application/javascript", b"document.write('<p>x</p>')", False),
    ("text/css", b"body { color: red }", False),
    ("image/png", b"<html>even if it looks like html</html>", False),
])
def test_html_by_type_and_sniffing(mime, body, is_html):
    if is_html:
        check_html(mime, body)
    else:
        with pytest.raises(ContentError) as e:
            check_html(mime, body)
        assert e.value.reason == "not_html"


def test_charset_declared_meta_detected_and_mislabelled():
    assert decode_payload(PAGE.encode("utf-8"), "utf-8") == (PAGE, "utf_8")
    # ISO-8859-1 is read as windows-1252, as browsers do
    assert decode_payload("“café”".encode("cp1252"), "ISO-8859-1") == ("“café”", "cp1252")
    meta = '<meta charset="iso-8859-15"><p>Prix: 5 €</p>'
    assert decode_payload(meta.encode("iso-8859-15"), None) == (meta, "iso8859_15")
    # a windows-1252 page declared as UTF-8 (common on the web): the declared charset fails, detection wins
    latin = ("<p>Le café est servi à la française, très chaud, avec une crème épaisse. " * 5) + "</p>"
    text, codec = decode_payload(latin.encode("cp1252"), "utf-8")
    assert text == latin and codec != "utf_8"
    # an unknown label is ignored, not fatal
    assert decode_payload(PAGE.encode("utf-8"), "x-no-such-charset")[0] == PAGE
    assert decode_payload(PAGE.encode("utf-16"), "iso-8859-1")[0] == PAGE  # a byte-order mark wins


def test_undecodable_payload():
    import random

    rng = random.Random(0)
    garbage = b"<html><body><p>" + bytes(rng.randrange(0x80, 0x100) for _ in range(2000)) + b"</p></body></html>"
    with pytest.raises(ContentError) as e:
        decode_payload(garbage, "utf-8")
    assert e.value.reason == "undecodable" and "utf-8" in str(e.value)


def test_a_stray_byte_is_replaced_not_fatal():
    page = ("<p>" + "Grüße aus Köln, “quoted” text. " * 200 + "</p>").encode() + b"\x81" + b"<p>end</p>"
    text, codec = decode_payload(page, "utf-8")
    assert codec == "utf_8" and text.count("\ufffd") == 1
