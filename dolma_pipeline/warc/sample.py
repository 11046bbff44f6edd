"""WARC files made from real HTML already on the machine, as a crawler writes them (warcio, gzip per record).

Pages come from the standard library rendered by `pydoc` (always available) and from Debian documentation
packages' HTML when installed (`/usr/share/doc/*/html`). `bad_records()` adds the kinds of record real
crawls hold and `dolma warc` must not turn into documents: an image, a PDF, a script, a style sheet, a 404,
a redirect, an empty page, a broken HTTP header, a Latin-1 page declared as UTF-8 (kept: it decodes as
windows-1252) and a page no charset decodes. Record ids and dates are derived from the URL, so the same
pages give the same bytes.

    python -m dolma_pipeline.warc.sample --output DIR [--files 2] [--bad] [--corrupt]
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

WARC_DATE = "2024-10-01T10:00:00Z"
PYDOC_MODULES = ("json", "csv", "argparse", "textwrap", "difflib", "heapq", "bisect", "shlex", "fractions",
                 "statistics", "string", "calendar", "pathlib", "dataclasses", "functools", "itertools",
                 "contextlib", "collections", "enum", "glob", "fnmatch", "tempfile", "shutil", "zipfile",
                 "tarfile", "gzip", "base64", "hashlib", "hmac", "secrets", "random", "decimal", "uuid",
                 "html", "html.parser", "urllib.parse", "http.client", "email.message", "logging", "unittest")
DEBIAN_DOCS = "/usr/share/doc"


@dataclass
class Response:
    """One HTTP exchange to archive: the URL, the raw HTTP response head and the body."""

    url: str
    body: bytes
    status: str = "200 OK"
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "text/html; charset=utf-8"),
                                            ("Date", "Tue, 01 Oct 2024 10:00:00 GMT"), ("Server", "nginx"))
    raw_head: bytes | None = None  # a literal (possibly broken) HTTP head instead of status + headers

    def block(self) -> bytes:
        head = self.raw_head
        if head is None:
            lines = [f"HTTP/1.1 {self.status}", *(f"{k}: {v}" for k, v in self.headers),
                     f"Content-Length: {len(self.body)}"]
            head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head + self.body


def pydoc_pages(modules: Iterable[str] = PYDOC_MODULES) -> list[Response]:
    """The standard library's modules as pydoc renders them for its HTTP server."""
    import importlib
    import pydoc

    pages = []
    for name in modules:
        module = importlib.import_module(name)
        html = pydoc.html.page(pydoc.describe(module), pydoc.html.document(module, name))
        pages.append(Response(f"http://localhost:8080/{name}.html", html.encode("utf-8")))
    return pages


def html_files(root: str, host: str, limit: int | None = None) -> list[Response]:
    """The `.html` files under `root` (sorted), served as `https://<host>/<path>`."""
    paths = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files if f.endswith(".html"))
    return [Response(f"https://{host}/{os.path.relpath(p, root)}", open(p, "rb").read()) for p in paths[:limit]]


def debian_doc_roots() -> list[tuple[str, str]]:
    """(HTML directory, host name) of the Debian documentation packages installed here."""
    roots = []
    if os.path.isdir(DEBIAN_DOCS):
        for package in sorted(os.listdir(DEBIAN_DOCS)):
            html = os.path.join(DEBIAN_DOCS, package, "html")
            if os.path.isdir(html) and not os.path.islink(html):
                roots.append((html, f"{package.replace('.', '-')}.docs.example"))
    return roots


def bad_records(seed: int = 0) -> list[Response]:
    """Records a crawl holds that are not HTML pages to extract (see the module doc)."""
    rng = random.Random(seed)
    png = b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(600))
    pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    script = b"function greet(name) {\n  return 'Hello, ' + name;\n}\ndocument.title = greet('web');\n"
    style = b"body { font-family: serif; margin: 0 auto; max-width: 40em; }\nh1 { color: #333; }\n"
    latin = ("<html><head><title>Caf\u00e9</title></head><body><h1>Caf\u00e9 cr\u00e8me</h1><p>Le caf\u00e9 est "
             "servi \u00e0 la fran\u00e7aise, tr\u00e8s chaud, avec une cr\u00e8me \u00e9paisse.</p>"
             "</body></html>").encode("cp1252")
    garbage = b"<html><body><p>" + bytes(rng.randrange(0x80, 0x100) for _ in range(2000)) + b"</p></body></html>"
    html = b"<html><body><p>Not found.</p></body></html>"
    return [
        Response("https://bad.example/logo.png", png, headers=(("Content-Type", "image/png"),)),
        Response("https://bad.example/paper.pdf", pdf, headers=(("Content-Type", "application/pdf"),)),
        Response("https://bad.example/lying.html", pdf, headers=(("Content-Type", "text/html"),)),
        Response("https://bad.example/app.js", script, headers=(("Content-Type", "application/javascript"),)),
        Response("https://bad.example/site.css", style, headers=(("Content-Type", "text/css"),)),
        Response("https://bad.example/missing.html", html, status="404 Not Found"),
        Response("https://bad.example/moved", b"", status="301 Moved Permanently",
                 headers=(("Location", "https://bad.example/"),)),
        Response("https://bad.example/empty.html", b""),
        Response("https://bad.example/broken-header.html", html,
                 raw_head=b"HTTP/1.1 200 OK\r\nContent-Type text/html\r\nthis line is not a header\r\n\r\n"),
        Response("https://bad.example/latin1.html", latin),
        Response("https://bad.example/undecodable.html", garbage),
    ]


def record_id(url: str, index: int) -> str:
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{index}:{url}')}>"


def write_warc(path: str, responses: Iterable[Response], *, gzip_records: bool = True, requests: bool = True,
               date: str = WARC_DATE, corrupt_after: int | None = None) -> int:
    """Write a WARC file with warcio: a warcinfo record, then per response a request and a response record.

    `corrupt_after=N` writes a gzip member with a damaged body after the N-th response (gzip only).
    Returns the number of response records.
    """
    from warcio.warcwriter import WARCWriter

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    count = 0
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=gzip_records)
        info = writer.create_warcinfo_record(os.path.basename(path), {"software": "dolma_pipeline.warc.sample"})
        info.rec_headers.replace_header("WARC-Date", date)
        info.rec_headers.replace_header("WARC-Record-ID", record_id(path, -1))
        writer.write_record(info)
        for index, response in enumerate(responses):
            headers = {"WARC-Date": date, "WARC-Record-ID": record_id(response.url, index)}
            if requests:
                req = f"GET / HTTP/1.1\r\nHost: {response.url.split('/')[2]}\r\n\r\n".encode()
                writer.write_record(writer.create_warc_record(
                    response.url, "request", payload=io.BytesIO(req), length=len(req),
                    warc_headers_dict={**headers, "WARC-Record-ID": record_id(response.url, ~index)}))
            block = response.block()
            if response.raw_head is not None:  # warcio would repair a broken head: write the record by hand
                fh.write(_raw_member(response.url, headers, block, gzip_records))
            else:
                writer.write_record(writer.create_warc_record(
                    response.url, "response", payload=io.BytesIO(block), length=len(block),
                    warc_headers_dict=headers))
            count += 1
            if corrupt_after is not None and count == corrupt_after and gzip_records:
                member = bytearray(_raw_member("https://bad.example/corrupt", headers, block, True))
                for i in range(len(member) // 3, min(len(member) - 8, len(member) // 3 + 64)):
                    member[i] ^= 0x5A  # damage the deflate data in the middle of the member
                fh.write(bytes(member))
    return count


def _raw_member(url: str, headers: dict[str, str], block: bytes, compress: bool) -> bytes:
    head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: {headers['WARC-Record-ID']}\r\n"
            f"WARC-Date: {headers['WARC-Date']}\r\nWARC-Target-URI: {url}\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(block)}\r\n\r\n")
    record = head.encode() + block + b"\r\n\r\n"
    return gzip.compress(record, mtime=0) if compress else record


def chunks(items: list[Response], parts: int) -> Iterator[list[Response]]:
    size = -(-len(items) // parts)
    for i in range(0, len(items), size):
        yield items[i : i + size]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, help="directory for web-NNNNN.warc.gz")
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="at most this many pages per Debian package")
    parser.add_argument("--no-debian", action="store_true", help="pydoc pages only")
    parser.add_argument("--bad", action="store_true", help="add the bad records of bad_records() to each file")
    parser.add_argument("--corrupt", action="store_true", help="add a corrupt gzip member to each file")
    parser.add_argument("--skip-existing", action="store_true")
    args = parser.parse_args(argv)
    if args.skip_existing and os.path.isdir(args.output) and os.listdir(args.output):
        print(f"{args.output} exists; skipped")
        return 0
    pages = pydoc_pages()
    if not args.no_debian:
        for root, host in debian_doc_roots():
            pages.extend(html_files(root, host, args.limit))
    total = 0
    for n, part in enumerate(chunks(pages, args.files)):
        part = part + (bad_records(n) if args.bad else [])
        total += write_warc(os.path.join(args.output, f"web-{n:05d}.warc.gz"), part,
                            corrupt_after=len(part) // 2 if args.corrupt else None)
    print(f"wrote {total} responses in {args.files} file(s) under {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
