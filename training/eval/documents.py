"""Evaluation inputs read from files: Dolma documents (JSONL, ``.gz``/``.zst``) and a tokenizer.

The trainer does not import the data pipeline (only its token-file format), so this is a small reader of
its own: one JSON object per line with a string ``text`` and, optionally, ``source`` and ``id``. Errors name
the file and line.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from training.config import DataFormatError


@dataclass(frozen=True)
class EvalDocument:
    id: str
    source: str
    text: str


def expand(patterns: list[str]) -> list[str]:
    """Files matched by ``patterns`` (sorted per pattern); a pattern that matches nothing is an error."""
    out: list[str] = []
    for pat in patterns:
        hits = sorted(glob.glob(pat, recursive=True)) if any(c in pat for c in "*?[") else [pat]
        hits = [h for h in hits if Path(h).is_file()]
        if not hits:
            raise DataFormatError(f"no evaluation file matches {pat!r}")
        out.extend(hits)
    return out


def _open_text(path: str) -> io.TextIOBase:
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    if path.endswith(".zst"):
        import zstandard

        return io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(open(path, "rb")), encoding="utf-8")
    return open(path, encoding="utf-8")


def read_jsonl(path: str) -> Iterator[tuple[int, dict]]:
    """``(line number, object)`` for each non-blank line of a JSONL file."""
    try:
        with _open_text(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DataFormatError(f"{path}:{n}: not valid JSON ({e.msg})") from None
                if not isinstance(obj, dict):
                    raise DataFormatError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
                yield n, obj
    except (OSError, EOFError, UnicodeDecodeError) as e:
        if isinstance(e, FileNotFoundError):
            raise DataFormatError(f"{path}: no such file") from None
        raise DataFormatError(f"{path}: cannot read ({e})") from None


def read_documents(patterns: list[str], source_field: str = "source") -> list[EvalDocument]:
    """Dolma documents of the evaluation set; ``source`` defaults to the file's parent directory name."""
    docs: list[EvalDocument] = []
    for path in expand(patterns):
        before = len(docs)
        for n, obj in read_jsonl(path):
            text = obj.get("text")
            if not isinstance(text, str):
                raise DataFormatError(f"{path}:{n}: 'text' is missing or not a string")
            source = obj.get(source_field)
            if not isinstance(source, str) or not source:
                source = Path(path).parent.name or "default"
            docs.append(EvalDocument(str(obj.get("id", f"{Path(path).name}:{n}")), source, text))
        if len(docs) == before:
            raise DataFormatError(f"{path}: no documents")
    return docs


class TextEncoder:
    """A ``tokenizers`` JSON file: text -> ids without special tokens (the pipeline's tokenize stage adds
    only the EOS after each document, which evaluation adds itself)."""

    def __init__(self, path: str | Path) -> None:
        from tokenizers import Tokenizer

        if not Path(path).is_file():
            raise DataFormatError(f"tokenizer file not found: {path}")
        self.path = str(path)
        self._tok = Tokenizer.from_file(str(path))

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]
