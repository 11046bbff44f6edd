"""`dolma warc`: WARC (or WET) files to Dolma documents, with taggers run in the same pass.

Keys follow Dolma 1.2.1's `dolma warc` where the concept is the same (`documents`, `destination`,
`processes`, `source_name`, `linearizer`, `pre.taggers`/`pre.skip`, `post.taggers`/`post.skip`,
`store_html_in_metadata`, `ignore_existing`, `dryrun`, `work_dir`), plus this project's `on_error`,
`executor`, `format`, `id_from`, `added`, `linearizer_options`, `tagger_options` and `tagger_modules`.

`x.warc.gz` under the inputs' common directory becomes `<destination>/x.jsonl.gz`; attributes go to
`attributes/<tagger>/x.jsonl.gz` beside the `documents/` directory that holds the destination.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from dolma_pipeline import io
from dolma_pipeline.config import fingerprint
from dolma_pipeline.documents import sanitize_key_part
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.executor import RunSummary, run_shards
from dolma_pipeline.registry import import_modules
from dolma_pipeline.safety import check_outputs
from dolma_pipeline.tag import attributes_path, common_directory, write_run_record
from dolma_pipeline.tagger import TAGGERS
from dolma_pipeline.warc.extract import WarcShard, extract_shard
from dolma_pipeline.warc.linearizers import build_linearizer
from dolma_pipeline.warc.pages import dolma_timestamp, parse_warc_date

CONFIG_NAME = ".dolma_warc.config.yaml"  # hidden: the destination is a documents directory other commands glob
SUMMARY_NAME = ".dolma_warc.summary.json"
_SUFFIXES = re.compile(r"(\.(gz|lz4|zst|zstd))?(\.(warc|wet|arc))*(\.(gz|lz4|zst|zstd))?$", re.IGNORECASE)


@dataclass
class TaggerStage:
    """Taggers run before (`pre`: on the HTML) or after (`post`: on the text) extraction."""

    taggers: list[str] = field(default_factory=list)  # tagger names
    skip: bool = False  # drop a page on which none of these taggers gives any span (Dolma's meaning)


@dataclass
class WarcConfig:
    """`dolma warc` options."""

    documents: list[str] = field(default_factory=list)  # WARC or WET files: paths or globs, local or s3://
    destination: list[str] = field(default_factory=list)  # one, or one per `documents` entry (as Dolma)
    source_name: str | None = None  # the documents' `source` field
    processes: int = 1
    linearizer: str = "resiliparse"  # HTML to text: resiliparse or trafilatura
    linearizer_options: dict[str, Any] = field(default_factory=dict)  # options passed to the linearizer
    pre: TaggerStage = field(default_factory=TaggerStage)  # taggers run on the URL and HTML before extraction
    post: TaggerStage = field(default_factory=TaggerStage)  # taggers run on the extracted text
    tagger_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    tagger_modules: list[str] = field(default_factory=list)
    store_html_in_metadata: bool = False  # keep the HTML in metadata.html
    format: Literal["html", "wet"] = "html"  # warc (HTML responses) or wet (extracted text)
    id_from: Literal["record_id", "payload_digest"] = "record_id"  # what the document id is derived from
    added: str | None = None  # fixed `added` for every document; default: the file's warcinfo WARC-Date
    batch_size: int = 64  # documents per batch handed to the taggers
    ignore_existing: bool = False
    dryrun: bool = False
    debug: bool = False
    ray_address: str | None = None
    executor: str = "auto"  # auto, ray, local or serial: the shared rule, executor.choose_executor
    on_error: Literal["fail", "skip_record", "skip_line", "skip_file"] = "fail"
    work_dir: dict[str, Any] = field(default_factory=dict)  # Dolma's scratch directories; not needed here

    def validate(self) -> None:
        if self.processes < 1:
            raise ConfigError("processes must be at least 1")
        if self.batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        if self.on_error == "skip_line":  # the other commands' name for skipping the smallest unit
            self.on_error = "skip_record"
        if self.added is not None:
            try:
                self.added = dolma_timestamp(parse_warc_date(str(self.added)))
            except ValueError:
                raise ConfigError(f"added: {self.added!r} is not a timestamp like 2024-10-01T00:00:00Z") from None
        both = set(self.pre.taggers) & set(self.post.taggers)
        if both:
            raise ConfigError(f"tagger(s) {sorted(both)} given in both pre.taggers and post.taggers")


def output_name(relative: str) -> str:
    """`a/x.warc.gz` → `a/x.jsonl.gz` (also `.warc`, `.warc.lz4`, `.warc.wet.gz`, `.arc.gz`)."""
    directory, _, name = relative.rpartition("/")
    stem = _SUFFIXES.sub("", name) or name
    return f"{directory}/{stem}.jsonl.gz" if directory else f"{stem}.jsonl.gz"


def plan(config: WarcConfig) -> list[WarcShard]:
    """One shard per input file; validates every name (linearizer, taggers, options) before any work."""
    if not config.documents:
        raise ConfigError("no documents given (--documents PATH_OR_GLOB ...)")
    if not config.destination:
        raise ConfigError("no destination given (--destination DIR, e.g. data/documents/my_crawl)")
    if not config.source_name:
        raise ConfigError("source_name is required (the `source` of every document, e.g. --source_name cc)")
    if len(config.destination) not in (1, len(config.documents)):
        raise ConfigError(f"destination: give one, or one per documents entry ({len(config.documents)})")
    import_modules(config.tagger_modules)
    if config.format == "html":
        build_linearizer(config.linearizer, config.linearizer_options)
    taggers = [*config.pre.taggers, *config.post.taggers]
    for name in taggers:
        TAGGERS.get(name)
    unknown = [k for k in config.tagger_options if k not in taggers]
    if unknown:
        raise ConfigError(f"tagger_options for tagger(s) not in pre.taggers or post.taggers: {unknown}")
    groups = [(config.documents, config.destination[0])] if len(config.destination) == 1 else \
        [([pattern], dest) for pattern, dest in zip(config.documents, config.destination)]
    fp = fingerprint([config.source_name, config.format, config.linearizer, config.linearizer_options,
                      config.pre.taggers, config.pre.skip, config.post.taggers, config.post.skip,
                      config.tagger_options, config.store_html_in_metadata, config.id_from, config.added,
                      config.on_error, config.batch_size if taggers else None])
    shards: list[WarcShard] = []
    seen: dict[str, str] = {}
    for patterns, destination in groups:
        files = io.expand_paths(patterns)
        base = common_directory(files)
        for path in files:
            output = io.join(destination, output_name(path[len(base):].lstrip("/")))
            if output in seen:
                raise ConfigError(f"{path} and {seen[output]} would both write {output}")
            seen[output] = path
            attributes = {name: attributes_path(output, sanitize_key_part(name)) for name in taggers}
            shards.append(WarcShard(
                input=path, output=output, fingerprint=fp, source_name=config.source_name, format=config.format,
                linearizer=config.linearizer, linearizer_options=config.linearizer_options,
                pre_taggers=config.pre.taggers, post_taggers=config.post.taggers, pre_skip=config.pre.skip,
                post_skip=config.post.skip, tagger_options=config.tagger_options,
                tagger_modules=config.tagger_modules, attribute_outputs=attributes,
                store_html_in_metadata=config.store_html_in_metadata, on_error=config.on_error,
                added=config.added, id_from=config.id_from, batch_size=config.batch_size))
    check_outputs(list(seen.values()), [f for s in shards for f in (s.output, *s.attribute_outputs.values())],
                  config.destination, what="document file")
    return shards


def render_records(summary: RunSummary) -> str:
    """Records per reason, as the summary's last lines."""
    records = dict(summary.extra.get("records", {}))
    if not records:
        return ""
    read = records.pop("records", 0)
    docs = records.pop("documents", 0)
    parts = ", ".join(f"{reason} {n:,}" for reason, n in sorted(records.items()))
    return f"  records: {read:,} read, {docs:,} documents" + (f"; not extracted: {parts}" if parts else "")


def run(config: WarcConfig) -> int:
    """Plan, then extract every file not already done; prints the summary with counts per reason."""
    shards = plan(config)
    if config.dryrun:
        for shard in shards:
            print(f"{shard.input} -> {shard.output}")
        print(f"dry run: {len(shards)} file(s), linearizer {config.linearizer}; nothing written")
        return 0
    summary = run_shards(extract_shard, shards, processes=config.processes, ray_address=config.ray_address,
                         debug=config.debug, ignore_existing=config.ignore_existing, desc="warc",
                         executor=config.executor)
    write_run_record(sorted(set(config.destination)), config, summary, CONFIG_NAME, SUMMARY_NAME)
    print(summary.render("dolma warc"))
    records = render_records(summary)
    if records:
        print(records)
    return 0


Config = WarcConfig  # the name dolma_pipeline.cli looks for
