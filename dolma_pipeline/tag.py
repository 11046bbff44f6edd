"""`dolma tag`: run taggers over documents and write attribute files that mirror the document tree."""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import orjson

from dolma_pipeline import io
from dolma_pipeline.config import dump_yaml, fingerprint, to_dict
from dolma_pipeline.documents import Document, attribute_key, sanitize_key_part
from dolma_pipeline.errors import ConfigError, DataFormatError
from dolma_pipeline.executor import Executor, RunSummary, Shard, run_shards
from dolma_pipeline.lines import DEFAULT_MAX_LINE_BYTES
from dolma_pipeline.reader import OnError, ReadStats, read_documents
from dolma_pipeline.registry import import_modules
from dolma_pipeline.safety import check_name, check_outputs, redact
from dolma_pipeline.tagger import TAGGERS, Tagger, build_taggers

log = logging.getLogger(__name__)

CONFIG_NAME = "dolma_tag.config.yaml"
SUMMARY_NAME = "dolma_tag.summary.json"


@dataclass
class TagConfig:
    """`dolma tag` options; names follow Dolma's where the concept is the same."""

    documents: list[str] = field(default_factory=list)
    destination: str | None = None
    experiment: str | None = None
    taggers: list[str] = field(default_factory=list)
    tagger_modules: list[str] = field(default_factory=list)
    tagger_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    processes: int = 1
    batch_size: int = 512
    ignore_existing: bool = False
    dryrun: bool = False
    debug: bool = False
    ray_address: str | None = None
    executor: Executor = "auto"  # auto | ray | local | serial: see dolma_pipeline.executor.choose_executor
    on_error: OnError = "fail"
    parquet_columns: dict[str, str] = field(default_factory=dict)  # for .parquet inputs: which column holds id, text, ...
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES  # a longer line is a bad line (see --on_error)

    def validate(self) -> None:
        if self.processes < 1:
            raise ConfigError("processes must be at least 1")
        if self.max_line_bytes < 1:
            raise ConfigError("max_line_bytes must be at least 1")
        if self.batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        if self.experiment is not None:
            check_name(self.experiment, "experiment")


@dataclass
class TagShard(Shard):
    experiment: str = ""
    taggers: list[str] = field(default_factory=list)
    tagger_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    tagger_modules: list[str] = field(default_factory=list)
    on_error: str = "fail"
    batch_size: int = 512
    parquet_columns: dict[str, str] = field(default_factory=dict)
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES


def attributes_path(doc_path: str, experiment: str, destination: str | None = None, base: str | None = None) -> str:
    """Where the attributes of `doc_path` go: `.../documents/x` → `.../attributes/<experiment>/x`.

    With `destination`, the file's path below `base` (the inputs' common directory) is kept under it.
    """
    if destination:
        rel = doc_path[len(base) :].lstrip("/") if base else os.path.basename(doc_path)
        return io.join(destination, rel)
    marker = "/documents/"
    cut = doc_path.rfind(marker)
    if cut < 0:
        raise ConfigError(f"{doc_path} is not under a `documents/` directory; pass --destination")
    return f"{doc_path[:cut]}/attributes/{experiment}/{doc_path[cut + len(marker):]}"


def common_directory(paths: list[str]) -> str:
    prefix = os.path.commonprefix(paths)
    return prefix if prefix.endswith("/") else prefix.rsplit("/", 1)[0] + "/"


_WORKER_TAGGERS: dict[str, list[Tagger]] = {}


def _worker_taggers(shard: TagShard) -> list[Tagger]:
    """Build and set up the taggers once per worker process."""
    key = fingerprint([shard.taggers, shard.tagger_options, shard.tagger_modules])
    if key not in _WORKER_TAGGERS:
        import_modules(shard.tagger_modules)
        _WORKER_TAGGERS[key] = build_taggers(shard.taggers, shard.tagger_options)
        # Modules and models live as long as the worker: keep the collector from walking them again and
        # again, and let it wait for more new objects (a batch's spans, freed by reference counting, would
        # otherwise trigger a collection every 700 allocations): ~10-20% of the CPU of span-heavy taggers.
        gc.freeze()
        threshold, *older = gc.get_threshold()
        if 0 < threshold < 10_000:
            gc.set_threshold(10_000, *older)
    return _WORKER_TAGGERS[key]


def tag_attributes(batch: list[Document], taggers: list[Tagger], experiment: str,
                   keys: dict[str, dict[str, str]]) -> list[dict[str, list]]:
    """Run `taggers` over a batch: per document, `{experiment}__{tagger}__{type}` → `[[start, end, score], ...]`.

    `keys` caches the attribute keys per tagger name and span type across batches.
    """
    attributes: list[dict[str, list]] = [{} for _ in batch]
    for tagger in taggers:
        key_cache = keys.setdefault(tagger.name, {})
        for doc_attrs, by_type in zip(attributes, tagger.attribute_values(batch)):
            for kind, values in by_type.items():
                key = key_cache.get(kind)
                if key is None:
                    key = key_cache[kind] = attribute_key(experiment, tagger.name, kind)
                doc_attrs.setdefault(key, []).extend(values)
    return attributes


def tag_shard(shard: TagShard) -> dict[str, Any]:
    """Tag one document file and atomically write its attribute file; returns the shard's stats."""
    taggers = _worker_taggers(shard)
    keys: dict[str, dict[str, str]] = {}
    stats = ReadStats()

    def rows(batch: list[Document]) -> list[bytes]:
        attributes = tag_attributes(batch, taggers, shard.experiment, keys)
        out = []
        for doc, doc_attrs in zip(batch, attributes):
            row: dict[str, Any] = {"id": doc.id, "attributes": doc_attrs}
            if doc.source is not None:
                row["source"] = doc.source
            out.append(orjson.dumps(row))
        return out

    try:
        with io.AtomicWriter(shard.output) as writer:
            batch: list[Document] = []
            for doc in read_documents(shard.input, shard.on_error, stats, shard.parquet_columns or None,
                                      shard.max_line_bytes):
                batch.append(doc)
                if len(batch) >= shard.batch_size:
                    writer.write_lines(rows(batch))
                    batch = []
            if batch:
                writer.write_lines(rows(batch))
    except DataFormatError as e:
        if shard.on_error == "fail":
            raise
        return {"skipped_file": True, "errors": [*stats.errors, f"file skipped: {e}"],
                "lines_skipped": stats.lines_skipped}
    return stats.as_dict()


def plan(config: TagConfig) -> list[TagShard]:
    if not config.documents:
        raise ConfigError("no documents given (--documents PATH_OR_GLOB ...)")
    if not config.taggers:
        raise ConfigError(f"no taggers given (--taggers NAME ...); valid choices: {', '.join(TAGGERS.names())}")
    import_modules(config.tagger_modules)
    for name in config.taggers:
        TAGGERS.get(name)
    files = io.expand_paths(config.documents)
    base = common_directory(files) if config.destination else None
    # Without an experiment name Dolma writes each tagger under its own name.
    groups = [(sanitize_key_part(config.experiment), config.taggers)] if config.experiment else \
        [(sanitize_key_part(name), [name]) for name in config.taggers]
    shards = []
    for experiment, names in groups:
        options = {n: config.tagger_options[n] for n in names if n in config.tagger_options}
        destination = io.join(config.destination, experiment) if config.destination and len(groups) > 1 \
            else config.destination
        fp = fingerprint([experiment, names, options, config.on_error, config.parquet_columns, config.max_line_bytes])
        for path in files:
            shards.append(TagShard(input=path, output=attributes_path(path, experiment, destination, base),
                                   fingerprint=fp, experiment=experiment, taggers=names, tagger_options=options,
                                   tagger_modules=config.tagger_modules, on_error=config.on_error,
                                   batch_size=config.batch_size, parquet_columns=config.parquet_columns,
                                   max_line_bytes=config.max_line_bytes))
    check_outputs(files, [s.output for s in shards], [config.destination or ""], what="attribute file")
    return shards


def output_roots(shards: list[TagShard], config: TagConfig) -> list[str]:
    roots = set()
    for shard in shards:
        if config.destination:
            roots.add(config.destination)
        else:
            cut = shard.output.rfind(f"/attributes/{shard.experiment}/")
            roots.add(shard.output[: cut + len(f"/attributes/{shard.experiment}")])
    return sorted(roots)


def run(config: TagConfig) -> int:
    unknown = [k for k in config.tagger_options if k not in config.taggers]
    if unknown:
        raise ConfigError(f"tagger_options for tagger(s) not in --taggers: {unknown}")
    shards = plan(config)
    if config.dryrun:
        for shard in shards:
            print(redact(f"{shard.input} -> {shard.output}"))
        print(f"dry run: {len(shards)} file(s), taggers {', '.join(config.taggers)}; nothing written")
        return 0
    summary = run_shards(tag_shard, shards, processes=config.processes, ray_address=config.ray_address,
                         debug=config.debug, ignore_existing=config.ignore_existing, desc="tag",
                         executor=config.executor)
    write_run_record(output_roots(shards, config), config, summary)
    print(summary.render("dolma tag"))
    return 0


def write_run_record(roots: list[str], config: Any, summary: RunSummary,
                     config_name: str = CONFIG_NAME, summary_name: str = SUMMARY_NAME) -> None:
    """Write the resolved config and the summary JSON beside the outputs."""
    for root in roots:
        io.write_text(io.join(root, config_name), dump_yaml(config))
        record = redact({"summary": summary.to_json(), "config": to_dict(config)})
        io.write_text(io.join(root, summary_name), orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())


def list_taggers(tagger_modules: list[str] | None = None) -> str:
    import_modules(tagger_modules or [])
    width = max(len(name) for name in TAGGERS.names())
    return "\n".join(f"{name:<{width}}  {cls.describe()}" for name, cls in TAGGERS.items())
