"""One WARC file → one Dolma document file (and one attribute file per tagger), atomically.

Pages go through in batches: pre-taggers on the decoded HTML (`text` is the HTML, `metadata.url` the URL),
then the linearizer, then post-taggers on the text. Each tagger's attributes go to
`attributes/<tagger>/<same path>` with Dolma's keys `<tagger>__<tagger>__<type>`, one row per document.
All outputs are written to temporary names and renamed together at the end; a file skipped under
`on_error: skip_file`, or a failed one, leaves none of them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from dolma_pipeline import io
from dolma_pipeline.config import fingerprint
from dolma_pipeline.documents import Document
from dolma_pipeline.errors import DataFormatError
from dolma_pipeline.executor import MAX_ERRORS_KEPT, Shard
from dolma_pipeline.registry import import_modules
from dolma_pipeline.safety import redact
from dolma_pipeline.tag import tag_attributes
from dolma_pipeline.tagger import Tagger, build_taggers
from dolma_pipeline.warc.http import RecordError
from dolma_pipeline.warc.linearizers import Linearizer, build_linearizer
from dolma_pipeline.warc.pages import (
    Filtered,
    Page,
    dolma_timestamp,
    html_page,
    parse_warc_date,
    wet_page,
)
from dolma_pipeline.warc.reader import Problem, Record, iter_warc


@dataclass
class WarcShard(Shard):
    source_name: str = ""
    format: str = "html"
    linearizer: str = "resiliparse"
    linearizer_options: dict[str, Any] = field(default_factory=dict)
    pre_taggers: list[str] = field(default_factory=list)
    post_taggers: list[str] = field(default_factory=list)
    pre_skip: bool = False
    post_skip: bool = False
    tagger_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    tagger_modules: list[str] = field(default_factory=list)
    attribute_outputs: dict[str, str] = field(default_factory=dict)  # tagger name → attribute file
    store_html_in_metadata: bool = False
    on_error: str = "fail"
    added: str | None = None
    id_from: str = "record_id"
    batch_size: int = 64


_WORKER: dict[str, tuple[Linearizer | None, list[Tagger], list[Tagger]]] = {}


def _worker_objects(shard: WarcShard) -> tuple[Linearizer | None, list[Tagger], list[Tagger]]:
    """The linearizer and taggers, built and set up once per worker process."""
    key = fingerprint([shard.format, shard.linearizer, shard.linearizer_options, shard.pre_taggers,
                       shard.post_taggers, shard.tagger_options, shard.tagger_modules])
    if key not in _WORKER:
        import_modules(shard.tagger_modules)
        options = shard.tagger_options
        pre = build_taggers(shard.pre_taggers, {k: v for k, v in options.items() if k in shard.pre_taggers})
        post = build_taggers(shard.post_taggers, {k: v for k, v in options.items() if k in shard.post_taggers})
        linearizer = build_linearizer(shard.linearizer, shard.linearizer_options) if shard.format == "html" else None
        _WORKER[key] = (linearizer, pre, post)
    return _WORKER[key]


class _Counts:
    def __init__(self) -> None:
        self.records: dict[str, int] = {}
        self.errors: list[str] = []

    def add(self, reason: str) -> None:
        self.records[reason] = self.records.get(reason, 0) + 1


def extract_shard(shard: WarcShard) -> dict[str, Any]:
    """Extract one WARC file; returns its stats (documents, records per reason, errors)."""
    linearizer, pre, post = _worker_objects(shard)
    counts = _Counts()
    keys: dict[str, dict[str, str]] = {}
    to_page = html_page if shard.format == "html" else wet_page
    fixed_added = shard.added
    file_added: str | None = None
    try:
        with contextlib.ExitStack() as stack:
            docs_out = stack.enter_context(io.AtomicWriter(shard.output))
            attr_outs = {name: stack.enter_context(io.AtomicWriter(path))
                         for name, path in shard.attribute_outputs.items()}
            batch: list[tuple[Page, str]] = []
            for item in iter_warc(shard.input):
                if isinstance(item, Problem):
                    _problem(shard, counts, item.offset, item.reason, item.problem)
                    continue
                counts.add("records")
                if item.type == "warcinfo":
                    file_added = file_added or _warcinfo_date(item)
                    continue
                try:
                    page = to_page(item, shard.id_from)
                except Filtered as e:
                    counts.add(e.reason)
                    continue
                except RecordError as e:
                    _problem(shard, counts, item.offset, e.reason, str(e))
                    continue
                batch.append((page, fixed_added or file_added or page.created))
                if len(batch) >= shard.batch_size:
                    _write_batch(shard, batch, linearizer, pre, post, keys, counts, docs_out, attr_outs)
                    batch = []
            if batch:
                _write_batch(shard, batch, linearizer, pre, post, keys, counts, docs_out, attr_outs)
            if counts.records.get("records", 0) == 0 and not counts.errors:
                raise DataFormatError(shard.input, None, "no WARC records (empty or not a WARC file)")
    except DataFormatError as e:
        if shard.on_error == "fail":
            raise
        return {"skipped_file": True, "errors": [*counts.errors, f"file skipped: {e}"]}
    return {"documents": counts.records.get("documents", 0), "bytes": docs_out.bytes_written,
            "records": counts.records, "errors": counts.errors}


def _warcinfo_date(record: Record) -> str | None:
    try:
        return dolma_timestamp(parse_warc_date(record.headers.get("WARC-Date", "")))
    except ValueError:
        return None


def _problem(shard: WarcShard, counts: _Counts, offset: int, reason: str, problem: str) -> None:
    """Bad data: raise (fail, skip_file) or count and go on (skip_record)."""
    error = DataFormatError(shard.input, None, f"byte {offset}: {problem}")
    if shard.on_error != "skip_record":
        raise error
    counts.add(reason)
    if len(counts.errors) < MAX_ERRORS_KEPT:
        counts.errors.append(str(error))


def _no_spans(attributes: list[dict[str, list]], i: int) -> bool:
    return not any(values for values in attributes[i].values())


def _write_batch(shard: WarcShard, batch: list[tuple[Page, str]], linearizer: Linearizer | None,
                 pre: list[Tagger], post: list[Tagger], keys: dict, counts: _Counts, docs_out: io.AtomicWriter,
                 attr_outs: dict[str, io.AtomicWriter]) -> None:
    source = shard.source_name
    pre_docs = [Document({"id": p.id, "text": p.content, "source": source, "metadata": {"url": p.url}})
                for p, _ in batch]
    pre_attrs = {t.name: tag_attributes(pre_docs, [t], t.name, keys) for t in pre}
    docs: list[Document] = []
    kept: list[int] = []
    for i, (page, added) in enumerate(batch):
        if shard.pre_skip and pre and all(_no_spans(a, i) for a in pre_attrs.values()):
            counts.add("pre_skip")
            continue
        if linearizer is None:
            text = page.content
        else:
            try:
                text = linearizer.linearize(page.content)
            except Exception as e:  # a linearizer that chokes on one page is that page's problem
                _problem(shard, counts, page.offset, "linearizer_error", f"{shard.linearizer} failed ({e!r})")
                continue
        if not text.strip():
            counts.add("empty_text")
            continue
        metadata: dict[str, Any] = {
            "url": page.url, "warc_file": redact(shard.input), "warc_offset": page.offset, "warc_record_id": page.record_id,
            "content_type": page.content_type, "charset": page.charset,
        }
        if page.refers_to:
            metadata["warc_refers_to"] = page.refers_to
        if shard.store_html_in_metadata and linearizer is not None:
            metadata["html"] = page.content
        docs.append(Document({"id": page.id, "text": text, "source": source, "created": page.created,
                              "added": added, "metadata": metadata}))
        kept.append(i)
    post_attrs = {t.name: tag_attributes(docs, [t], t.name, keys) for t in post}
    for j, doc in enumerate(docs):
        if shard.post_skip and post and all(_no_spans(a, j) for a in post_attrs.values()):
            counts.add("post_skip")
            continue
        docs_out.write(orjson.dumps(doc.raw) + b"\n")
        counts.add("documents")
        for name, attrs in pre_attrs.items():
            attr_outs[name].write(orjson.dumps({"id": doc.id, "attributes": attrs[kept[j]], "source": source}) + b"\n")
        for name, attrs in post_attrs.items():
            attr_outs[name].write(orjson.dumps({"id": doc.id, "attributes": attrs[j], "source": source}) + b"\n")
