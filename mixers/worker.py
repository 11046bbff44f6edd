"""The work unit of `dolma mix`: one document file (and its attribute rows) into its output parts.

Per document: join the attribute rows (which must line up with the documents: same count, same ids),
drop by dedupe flags, typed rules and the Dolma filter (the first that fires is counted), sample, replace
spans, drop if shorter than `min_text_length`, add `metadata.provenance`, discard fields, write.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from dolma_pipeline import io
from dolma_pipeline.config import from_dict
from dolma_pipeline.documents import check_depth
from dolma_pipeline.errors import DataFormatError
from dolma_pipeline.executor import Shard
from dolma_pipeline.lines import DEFAULT_MAX_LINE_BYTES
from dolma_pipeline.reader import ReadStats, read_documents
from dolma_pipeline.safety import redact
from mixers.config import StreamConfig
from mixers.evidence import StreamEvidence
from mixers.rules import DocFilter, EvalError, MalformedAttribute, build_checks, sample_copies
from mixers.shards import PartWriter
from mixers.spans import SpanReplacement, apply_replacements

log = logging.getLogger(__name__)


@dataclass
class MixShard(Shard):
    """One document file of one stream; `output` is its first part (the executor's marker sits beside it)."""

    stream: dict[str, Any] = field(default_factory=dict)
    stream_fingerprint: str = ""
    attribute_paths: list[str] = field(default_factory=list)
    parts_prefix: str = ""
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES


class StreamMixer:
    """A stream's compiled rules, filter and replacements (built once per worker process)."""

    def __init__(self, config: StreamConfig):
        self.config = config
        self.checks = build_checks(config.rules, config.dedupe)
        self.filter = DocFilter(config.filter) if config.filter and (config.filter.include or config.filter.exclude) else None
        self.replacements = [SpanReplacement(r, i) for i, r in enumerate(config.span_replacement)]
        self.discard = list(config.output.discard_fields)
        self.min_text_length = config.output.min_text_length
        self.sample, self.seed = config.sample, config.seed
        self.extension = config.output_extension()

    def attribute_keys(self) -> dict[str, tuple[str, bool]]:
        """Every attribute key the stream reads: (what reads it, whether the exact key must exist).

        Span types are written only where a tagger found a span (no document of a small corpus may
        hold an IP address), so a span replacement's key only needs its `experiment__tagger__` family
        to exist; rules and filter expressions need the key itself.
        """
        keys: dict[str, tuple[str, bool]] = {}
        for check in self.checks:
            keys.setdefault(check.key, (check.label, True))
        if self.filter is not None:
            for expr in self.filter.include + self.filter.exclude:
                for key in expr.attribute_keys:
                    keys.setdefault(key, (f"filter expression {expr.text!r}", True))
        for rep in self.replacements:
            for key in rep.attribute_keys:
                keys.setdefault(key, (f"span_replacement of {rep.label!r}", False))
        return keys


_MIXERS: dict[str, StreamMixer] = {}


def stream_mixer(stream: dict[str, Any], fingerprint: str) -> StreamMixer:
    mixer = _MIXERS.get(fingerprint)
    if mixer is None:
        mixer = _MIXERS[fingerprint] = StreamMixer(from_dict(StreamConfig, stream))
    return mixer


def _attribute_rows(path: str, max_line_bytes: int) -> Iterator[tuple[int, dict]]:
    """(1-based line, attributes dict) of an attribute file; malformed rows are errors naming file and line."""
    for lineno, line in enumerate(io.iter_raw_lines(path, max_line_bytes), 1):
        if not line.strip():
            continue
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise DataFormatError(path, lineno, f"malformed JSON ({e})") from None
        check_depth(row, line, path, lineno)
        if type(row) is not dict or type(row.get("attributes")) is not dict:
            raise DataFormatError(path, lineno, "an attribute row needs an `attributes` object")
        yield lineno, row


def mix_file(shard: MixShard) -> dict[str, Any]:
    """Mix one document file into its parts; returns the stats the report and the packer need."""
    mixer = stream_mixer(shard.stream, shard.stream_fingerprint)
    for stale in _stale_parts(shard.parts_prefix):
        io.remove(stale)
    output = mixer.config.output
    writer = PartWriter(shard.parts_prefix, mixer.extension, output.max_size_in_bytes, output.compression_level)
    try:
        stats = _mix(shard, mixer, writer)
        parts = writer.close()
    except BaseException:
        writer.abort()
        raise
    stats["parts"] = [{"path": p.path, "documents": p.documents, "compressed_bytes": p.compressed_bytes}
                      for p in parts]
    stats["compressed_bytes_out"] = sum(p.compressed_bytes for p in parts)
    return stats


def _stale_parts(prefix: str) -> list[str]:
    if io.is_remote(prefix):
        return []
    directory, stem = os.path.split(prefix)
    if not os.path.isdir(directory):
        return []
    return [os.path.join(directory, n) for n in os.listdir(directory) if n.startswith(stem + "-")]


def _mix(shard: MixShard, mixer: StreamMixer, writer: PartWriter) -> dict[str, Any]:
    doc_path = shard.input
    doc_name = os.path.basename(doc_path)
    read_stats = ReadStats()
    attr_readers = [(p, _attribute_rows(p, shard.max_line_bytes)) for p in shard.attribute_paths if p]
    dropped: dict[str, int] = {}
    spans_replaced: dict[str, int] = {}
    documents_out = bytes_out = copies_added = 0
    checks, doc_filter, replacements = mixer.checks, mixer.filter, mixer.replacements
    evidence = StreamEvidence(checks, [k for rep in replacements for k in rep.attribute_keys])
    discard, min_length, rate, seed = mixer.discard, mixer.min_text_length, mixer.sample, mixer.seed

    for doc in read_documents(doc_path, "fail", read_stats, max_line_bytes=shard.max_line_bytes):
        raw = doc.raw
        attributes = _join_attributes(raw, doc, attr_readers, doc_path)
        text = doc.text
        try:
            reason = None
            values = evidence.values(attributes, len(text))  # every rule, for the report's per-rule effect
            for check, (_, fires) in zip(checks, values, strict=True):
                if fires:
                    reason = check.label
                    break
            if reason is None and doc_filter is not None:
                reason = doc_filter.drop_reason(raw)
            copies = 1
            if reason is None and rate != 1.0:
                copies = sample_copies(doc.id, seed, rate)
                if copies == 0:
                    reason = f"sample {rate:g}"
            counts: dict[str, int] = {}
            if reason is None and replacements:
                candidates = [c for rep in replacements for c in rep.candidates(raw)]
                if candidates:
                    text, counts = apply_replacements(text, candidates)
                    raw["text"] = text
            if reason is None and len(text) < min_length:
                reason = f"min_text_length {min_length}"
        except (EvalError, MalformedAttribute) as e:
            raise DataFormatError(doc_path, doc.line, f"document {doc.id!r}: {e}") from None
        evidence.record(doc, attributes, values, reason)
        if reason is not None:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        for label, n in counts.items():
            spans_replaced[label] = spans_replaced.get(label, 0) + n
        metadata = raw.get("metadata")
        metadata = dict(metadata) if type(metadata) is dict else {}
        metadata["provenance"] = f"{doc_name}:{doc.line}"
        raw["metadata"] = metadata
        for name in discard:
            raw.pop(name, None)
        line = orjson.dumps(raw) + b"\n"
        for _ in range(copies):
            writer.write(line)
        documents_out += copies
        copies_added += copies - 1
        bytes_out += len(line) * copies

    for attr_path, rows in attr_readers:
        extra = next(rows, None)
        if extra is not None:
            raise DataFormatError(attr_path, extra[0], f"attribute file has more rows than {doc_path} has "
                                                       f"documents ({read_stats.documents})")
    return {"documents": read_stats.documents, "bytes": read_stats.bytes, "documents_out": documents_out,
            "bytes_out": bytes_out, "copies_added": copies_added, "dropped": dropped,
            "spans_replaced": spans_replaced, "evidence": evidence.to_json(redact(doc_path))}


def _join_attributes(raw: dict, doc, attr_readers, doc_path: str) -> dict:
    """Merge this document's attribute rows into `raw["attributes"]`, checking they line up."""
    own = raw.get("attributes")
    merged: dict | None = own if type(own) is dict else None
    for attr_path, rows in attr_readers:
        item = next(rows, None)
        if item is None:
            raise DataFormatError(attr_path, None, f"attribute file ended before {doc_path} did: it has no row for "
                                                   f"document {doc.id!r} at line {doc.line}")
        lineno, row = item
        if row.get("id") != doc.id:
            raise DataFormatError(attr_path, lineno, f"attribute row id {row.get('id')!r} does not match document "
                                                     f"id {doc.id!r} at {doc_path}:{doc.line}")
        # Rows are parsed afresh for this document, so their dicts can be merged in place.
        if merged is None:
            merged = row["attributes"]
        else:
            merged.update(row["attributes"])
    if merged is None:
        return {}
    if merged:
        raw["attributes"] = merged
    return merged
