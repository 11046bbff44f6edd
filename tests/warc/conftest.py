"""WARC fixtures built from real HTML: the standard library rendered by pydoc, written with warcio."""

from __future__ import annotations

import pytest

from dolma_pipeline.warc.sample import Response, pydoc_pages, write_warc

MODULES = ("json", "csv", "textwrap", "heapq", "bisect", "shlex", "fnmatch", "glob")


@pytest.fixture(scope="session")
def pages() -> list[Response]:
    return pydoc_pages(MODULES)


@pytest.fixture
def warc_file(tmp_path, pages):
    """One per-record-gzip WARC file of good pages; returns its path."""
    path = str(tmp_path / "warc" / "pages.warc.gz")
    write_warc(path, pages)
    return path


def member_offsets(path: str) -> list[int]:
    """The compressed offsets of every gzip member of a file (independent of the reader under test)."""
    import zlib

    data = open(path, "rb").read()
    offsets, pos = [], 0
    while pos < len(data):
        offsets.append(pos)
        dec = zlib.decompressobj(31)
        dec.decompress(data[pos:])
        pos = len(data) - len(dec.unused_data)
    return offsets
