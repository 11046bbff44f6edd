"""Read Dolma documents from JSONL (plain/.gz/.zst) or Parquet under an error policy.

`fail` raises a DataFormatError naming file and line; `skip_line` drops the bad line and counts it;
`skip_file` is decided by the caller (which discards a file's partial output on any error). Errors
that concern the whole file (truncated archive, empty file) cannot be skipped line by line. A line longer
than `max_line_bytes` is a line error like any other: it is never held in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from dolma_pipeline.documents import Document, parse_document
from dolma_pipeline.errors import DataFormatError
from dolma_pipeline.io import is_parquet, iter_lines, iter_parquet_rows
from dolma_pipeline.lines import DEFAULT_MAX_LINE_BYTES, LineTooLong

OnError = Literal["fail", "skip_line", "skip_file"]
ON_ERROR_CHOICES = ("fail", "skip_line", "skip_file")


@dataclass
class ReadStats:
    documents: int = 0
    bytes: int = 0
    lines_skipped: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"documents": self.documents, "bytes": self.bytes, "lines_skipped": self.lines_skipped,
                "errors": self.errors[:100]}


def read_documents(path: str, on_error: OnError = "fail", stats: ReadStats | None = None,
                   parquet_columns: dict[str, str] | None = None,
                   max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[Document]:
    """Yield the documents of one file in order; `doc.line` is the 1-based line (or row) number."""
    stats = stats if stats is not None else ReadStats()
    lines = 0
    for lineno, raw in _raw_records(path, parquet_columns, max_line_bytes):
        lines = lineno
        try:
            doc = _document_from_row(raw, path, lineno, max_line_bytes) if type(raw) is dict \
                else _parse(raw, path, lineno)
        except DataFormatError as e:
            if on_error != "skip_line":
                raise
            stats.lines_skipped += 1
            stats.errors.append(str(e))
            continue
        stats.documents += 1
        stats.bytes += len(raw) + 1 if isinstance(raw, bytes) else len(doc.text)
        yield doc
    if lines == 0:
        raise DataFormatError(path, None, "empty file (no documents)")


def _raw_records(path: str, parquet_columns: dict[str, str] | None,
                 max_line_bytes: int) -> Iterator[tuple[int, bytes | dict | LineTooLong]]:
    if is_parquet(path):
        yield from enumerate(iter_parquet_rows(path, parquet_columns), 1)
        return
    previous_blank = None
    for lineno, line in enumerate(iter_lines(path, max_line_bytes), 1):
        if previous_blank is not None:
            yield previous_blank, b""
            previous_blank = None
        if type(line) is bytes and not line.strip():
            previous_blank = lineno  # a trailing blank line is tolerated; one in the middle is an error
            continue
        yield lineno, line


def _parse(line: bytes | LineTooLong, path: str, lineno: int) -> Document:
    if type(line) is LineTooLong:
        raise DataFormatError(path, lineno, line.problem())
    if not line:
        raise DataFormatError(path, lineno, "empty line")
    return parse_document(line, path, lineno)


def _document_from_row(row: dict, path: str, row_number: int, max_line_bytes: int) -> Document:
    """A Parquet row as a Document, under the same rules as a JSON line (its text bounded by max_line_bytes)."""
    if not isinstance(row.get("id"), str):
        if isinstance(row.get("id"), int):
            row["id"] = str(row["id"])
        else:
            raise DataFormatError(path, row_number, f"`id` must be a string (got {row.get('id')!r})")
    if not isinstance(row.get("text"), str):
        raise DataFormatError(path, row_number, f"`text` is missing or null (document id {row['id']!r})")
    text = row["text"]
    if len(text) > max_line_bytes // 4 and len(text.encode("utf-8", "surrogatepass")) > max_line_bytes:
        raise DataFormatError(path, row_number, f"`text` longer than max_line_bytes={max_line_bytes} (UTF-8 bytes)")
    return Document(row, path, row_number)
