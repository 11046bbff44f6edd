"""Dolma documents, spans and attribute keys.

A `Document` is parsed once per line and shared by every tagger of a run: its `lines` and `words`
are computed lazily, once, so fused taggers never split the same text twice.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any, NamedTuple

import orjson

from dolma_pipeline.errors import DataFormatError

_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_]")

# orjson writes at most 254 levels of nesting: a deeper document could be read but never written back (the
# mixer would stop on it), and recursive code would meet Python's recursion limit near 1,000. Deeper
# documents are a data error at parse time, skippable like any bad line.
MAX_JSON_DEPTH = 254


def sanitize_key_part(part: str) -> str:
    """Dolma keeps only `[A-Za-z0-9_]` in each part of an attribute key."""
    return _KEY_UNSAFE.sub("_", part)


def attribute_key(experiment: str | None, tagger: str, span_type: str) -> str:
    """`{experiment}__{tagger}__{type}`; without an experiment Dolma uses the tagger name."""
    exp = sanitize_key_part(experiment or tagger)
    return f"{exp}__{sanitize_key_part(tagger)}__{sanitize_key_part(span_type)}"


class Span(NamedTuple):
    """A scored range of a document's text in code points, end exclusive.

    A NamedTuple rather than a frozen dataclass: taggers such as `c4_v2` create ~100 spans per document and
    a tuple is built about 4x faster (immutable, same fields and constructor).
    """

    start: int
    end: int
    type: str
    score: float = 1.0

    def to_json(self) -> list:
        return [self.start, self.end, attribute_score(self.score)]


def attribute_score(score: float) -> float:
    """A span's score as attribute files hold it: a float rounded to 5 decimals."""
    score = float(score)
    # Most spans are flags scored 1.0 (or 0.0), for which rounding is a no-op costing ~0.4 µs each.
    return score if score == 1.0 or score == 0.0 else round(score, 5)


class Document:
    """One Dolma document; `raw` keeps every field of the input line untouched."""

    __slots__ = ("__dict__", "id", "line", "path", "raw", "text")

    def __init__(self, raw: dict[str, Any], path: str = "", line: int = 0):
        self.raw = raw
        self.id: str = raw["id"]
        self.text: str = raw["text"]
        self.path = path
        self.line = line

    @property
    def source(self) -> str | None:
        return self.raw.get("source")

    @property
    def metadata(self) -> dict[str, Any]:
        return self.raw.get("metadata") or {}

    @cached_property
    def lines(self) -> list[str]:
        """The text split on newlines, shared by all taggers."""
        return self.text.split("\n")

    @cached_property
    def words(self) -> list[str]:
        """Whitespace-separated words, shared by all taggers."""
        return self.text.split()

    @classmethod
    def from_fields(cls, id: str, text: str, **fields: Any) -> Document:
        return cls({"id": id, "text": text, **fields})


def nested_too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `value` nests lists and objects more than `limit` levels deep (an iterative walk)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return False


def check_depth(raw: Any, line: bytes | str, path: str, lineno: int) -> None:
    """Raise a DataFormatError when a parsed line nests deeper than MAX_JSON_DEPTH.

    Only lines with that many brackets can, so the walk is skipped for almost every line.
    """
    opening = line.count(b"[") + line.count(b"{") if type(line) is bytes else line.count("[") + line.count("{")
    if opening > MAX_JSON_DEPTH and type(raw) in (dict, list) and nested_too_deep(raw):
        raise DataFormatError(path, lineno, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")


def parse_document(line: bytes | str, path: str, lineno: int) -> Document:
    """Parse one JSONL line into a Document or raise a DataFormatError naming file and line."""
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        raw = _parse_slow(line, path, lineno, e)
    check_depth(raw, line, path, lineno)
    if not isinstance(raw, dict):
        raise DataFormatError(path, lineno, f"expected a JSON object, got {type(raw).__name__}")
    doc_id = raw.get("id")
    if not isinstance(doc_id, str):
        what = "missing" if doc_id is None else f"{type(doc_id).__name__} {doc_id!r}"
        raise DataFormatError(path, lineno, f"`id` must be a string ({what})")
    text = raw.get("text")
    if not isinstance(text, str):
        what = "missing or null" if text is None else f"a {type(text).__name__}"
        raise DataFormatError(path, lineno, f"`text` is {what} (document id {doc_id!r})")
    return Document(raw, path, lineno)


def _parse_slow(line: bytes | str, path: str, lineno: int, err: Exception) -> Any:
    """orjson rejects lone surrogate escapes that the stdlib accepts; tell UTF-8 and JSON errors apart."""
    import json

    if "depth limit" in str(err):  # orjson stops at 1,024 levels; the stdlib would recurse until it fails
        raise DataFormatError(path, lineno, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")

    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataFormatError(path, lineno, f"invalid UTF-8 at byte {e.start}") from None
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise DataFormatError(path, lineno, f"malformed JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise DataFormatError(path, lineno, f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
