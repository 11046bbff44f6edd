"""Labelled training units streamed from documents to disk, one example file per input file.

One shard reads one document file, finds each document's label (its file's label, a field, or an
attribute and a threshold), splits it into units and prepares them with `text.units` (what the tagger
does), and writes one line per unit: `{split}\\t{key}\\t{label}\\t{text}`. `split` is `v` (validation)
or `t` (training), decided by a hash of the document id, so all units of a document fall on one side;
`key` is a 64-bit hash of (seed, id, unit index) that later orders and samples the examples whatever
the number of workers. Nothing is kept in memory beyond one document.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

from dolma_pipeline import io
from dolma_pipeline.classifier.config import AttributeLabels, FieldLabels
from dolma_pipeline.classifier.text import units
from dolma_pipeline.documents import Document
from dolma_pipeline.errors import DataFormatError
from dolma_pipeline.executor import Shard
from dolma_pipeline.reader import ReadStats, read_documents

# fastText's predict ignores words that start with its label prefix; training must not read them as labels
_LABEL_WORDS = re.compile(r"(?<![^ \t\r\x0b\x0c\x00])__label__[^ \t\r\x0b\x0c\x00]*")
_HASH_SCALE = float(2**64)


@dataclass
class ExampleShard(Shard):
    label: str | None = None  # the label of every document of the file (per-label globs)
    label_field: FieldLabels | None = None
    label_attribute: AttributeLabels | None = None
    attribute_file: str | None = None
    mode: str = "document"
    seed: int = 0
    validation_fraction: float = 0.1
    min_length: int = 1
    on_error: str = "fail"


def id_fraction(doc_id: str) -> float:
    """A number in [0, 1) from the document id alone (the validation split)."""
    return int.from_bytes(hashlib.blake2b(doc_id.encode("utf-8", "replace"), digest_size=8).digest(), "big") / _HASH_SCALE


def unit_key(seed: int, doc_id: str, index: int) -> int:
    """The 64-bit key of one unit: its place in the shuffled training file and its sampling draw."""
    data = f"{seed}\x00{doc_id}\x00{index}".encode("utf-8", "replace")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def field_value(doc: Document, path: str) -> Any:
    value: Any = doc.raw
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _attribute_rows(shard: ExampleShard):
    """(line, id, reduced score or None) of each row of the attribute file beside the document file."""
    assert shard.attribute_file is not None and shard.label_attribute is not None
    attribute = shard.label_attribute
    try:
        lines = io.iter_raw_lines(shard.attribute_file)
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
                spans = (row.get("attributes") or {}).get(attribute.name)
                scores = [float(span[2]) for span in spans] if spans else []
            except (orjson.JSONDecodeError, AttributeError, TypeError, IndexError, ValueError):
                raise DataFormatError(shard.attribute_file, lineno,
                                      f"not an attribute row with [start, end, score] spans for {attribute.name}") from None
            score = None
            if scores:
                score = {"first": scores[0], "max": max(scores), "min": min(scores),
                         "mean": sum(scores) / len(scores)}[attribute.reduce]
            yield lineno, row.get("id"), score
    except FileNotFoundError:
        raise DataFormatError(shard.attribute_file, None, f"attribute file for {shard.input} not found "
                              f"(run `dolma tag` with experiment {attribute.experiment!r} first)") from None


def write_examples(shard: ExampleShard) -> dict[str, Any]:
    """Write the labelled units of one document file; returns counts per label and split, and a digest."""
    stats = ReadStats()
    train: dict[str, int] = {}
    valid: dict[str, int] = {}
    extra = {"unlabelled_documents": 0, "empty_documents": 0, "short_units": 0}
    digest = hashlib.sha256()
    attributes = _attribute_rows(shard) if shard.attribute_file else None
    try:
        with io.AtomicWriter(shard.output) as writer:
            for doc in read_documents(shard.input, shard.on_error, stats):
                label = _label(shard, doc, attributes)
                if label is None:
                    extra["unlabelled_documents"] += 1
                    continue
                if not doc.text.strip():
                    problem = f"empty text (document id {doc.id!r}): nothing to train on"
                    if shard.on_error == "fail":
                        raise DataFormatError(doc.path, doc.line, problem + "; --on_error skip_line skips and counts it")
                    extra["empty_documents"] += 1
                    stats.errors.append(f"{doc.path}:{doc.line}: {problem}")
                    continue
                split = "v" if id_fraction(doc.id) < shard.validation_fraction else "t"
                counts = valid if split == "v" else train
                lines = []
                for index, (_, _, text) in enumerate(units(doc.text, shard.mode)):
                    if "__label__" in text:
                        text = _LABEL_WORDS.sub("", text).strip()
                    if len(text) < shard.min_length:
                        extra["short_units"] += 1
                        continue
                    key = unit_key(shard.seed, doc.id, index)
                    lines.append(f"{split}\t{key:016x}\t{label}\t{text}".encode("utf-8", "replace"))
                    counts[label] = counts.get(label, 0) + 1
                digest.update(doc.id.encode("utf-8", "replace") + b"\x00" + doc.text.encode("utf-8", "replace") + b"\x00")
                writer.write_lines(lines)
            if attributes is not None and next(attributes, None) is not None:
                raise DataFormatError(shard.attribute_file or "", None,
                                      f"more attribute rows than documents in {shard.input}")
    except DataFormatError as e:
        if shard.on_error == "fail":
            raise
        return {"skipped_file": True, "errors": [*stats.errors, f"file skipped: {e}"],
                "lines_skipped": stats.lines_skipped}
    return {**stats.as_dict(), **extra, "train_units": train, "valid_units": valid,
            "digest": digest.hexdigest()}


def _label(shard: ExampleShard, doc: Document, attributes) -> str | None:
    if shard.label is not None:
        return shard.label
    if shard.label_field is not None:
        value = field_value(doc, shard.label_field.field)
        if value is None:
            return None
        value = str(value)
        mapping = shard.label_field.map
        if mapping:
            return mapping.get(value)
        if not value or any(c.isspace() for c in value):
            raise DataFormatError(doc.path, doc.line, f"field {shard.label_field.field} = {value!r} is not a "
                                  "usable label (empty or with whitespace); map it with label_field.map")
        return value
    attribute = shard.label_attribute
    assert attribute is not None and attributes is not None
    row = next(attributes, None)
    if row is None:
        raise DataFormatError(shard.attribute_file or "", None, f"fewer attribute rows than documents in {shard.input} "
                              f"(no row for line {doc.line}, id {doc.id!r})")
    lineno, row_id, score = row
    if row_id != doc.id:
        raise DataFormatError(shard.attribute_file or "", lineno,
                              f"id {row_id!r} does not match document {doc.id!r} at {doc.path}:{doc.line}")
    if score is None:
        return None
    return attribute.above if score >= attribute.threshold else attribute.below
