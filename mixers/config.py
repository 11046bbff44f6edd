"""`dolma mix` configuration: Dolma's stream keys plus typed rules, dedupe and sampling.

A Dolma mixer YAML runs unchanged (`work_dir` and `shuffle` are accepted and have no effect: outputs
are written atomically beside their final path and kept in input order so that reruns are identical).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dolma_pipeline.errors import ConfigError
from dolma_pipeline.executor import Executor
from dolma_pipeline.lines import DEFAULT_MAX_LINE_BYTES
from dolma_pipeline.safety import check_name

Syntax = Literal["jsonpath", "jq"]
Reduce = Literal["first", "last", "max", "min", "sum", "count", "frac"]
Op = Literal["lt", "le", "gt", "ge", "eq", "ne"]


@dataclass
class FilterConfig:
    """Dolma's filter: keep documents matching any `include` (or all, if none) and no `exclude`."""

    include: list[str] = field(default_factory=list)  # keep only documents matching one of these
    exclude: list[str] = field(default_factory=list)  # drop documents matching any of these
    syntax: Syntax = "jsonpath"  # jq or jsonpath


@dataclass
class SpanReplacementConfig:
    """Replace every span of the selected attribute with `min_score <= score < max_score`."""

    span: str  # JSONPath of the attribute's spans
    min_score: float | None = None  # replace spans scoring at least this
    max_score: float | None = None  # and at most this
    replacement: str = ""  # text put in place of each span
    syntax: Syntax = "jsonpath"  # jsonpath or jq

    def validate(self) -> None:
        if self.min_score is None and self.max_score is None:
            raise ConfigError(f"span_replacement {self.span!r}: set min_score or max_score (or both)")


@dataclass
class RuleConfig:
    """A typed rule on one attribute, e.g. `{attribute: exp__gopher_v1__word_count, op: lt, value: 50}`.

    The attribute's spans `[[start, end, score], ...]` are reduced to one number: `first`/`last` score,
    `max`/`min`/`sum` of scores, `count` of spans, or `frac` (the score-weighted share of the text the
    spans cover). `action: exclude` drops the documents where `reduced <op> value` holds; `include` keeps
    only those. A missing or empty attribute reduces to 0 for count/sum/frac; for the others it takes
    `default` when given, and otherwise the condition does not hold.
    """

    attribute: str  # attribute key the rule reads
    op: Op  # comparison: lt, le, gt, ge, eq, ne
    value: float  # the threshold
    reduce: Reduce = "first"  # how the spans become one number
    action: Literal["exclude", "include"] = "exclude"  # exclude or include the documents where it holds
    default: float | None = None  # value used when the attribute is missing
    name: str | None = None  # the rule's name in reports

    def label(self) -> str:
        return self.name or f"{self.action} {self.reduce}({self.attribute}) {self.op} {self.value:g}"


@dataclass
class OutputConfig:
    path: str = ""  # output directory of the stream
    max_size_in_bytes: int = 2 * 2**30  # size of one output shard
    discard_fields: list[str] = field(default_factory=list)  # top-level fields removed from every document
    min_text_length: int = 0  # drop documents shorter than this after replacement
    compression_level: int | None = None  # gzip 1-9 (default 6, as Dolma), zstd 1-22 (default 3)


@dataclass
class CompressionConfig:
    """Input compression is read from each file's extension; `output` picks the shards' format."""

    input: str | None = None  # input compression (default: from the file name)
    output: str | None = None  # output compression


@dataclass
class StreamConfig:
    name: str  # the stream's name (its report and shard names)
    documents: list[str] = field(default_factory=list)  # document files: paths or globs
    attributes: list[str] = field(default_factory=list)  # attribute sets (experiment names) joined to the documents
    filter: FilterConfig | None = None  # Dolma's include/exclude filter expressions
    rules: list[RuleConfig] = field(default_factory=list)  # typed rules on attributes
    dedupe: list[str] = field(default_factory=list)  # dedupe attribute keys: keep one copy per cluster
    span_replacement: list[SpanReplacementConfig] = field(default_factory=list)  # replace attribute spans in the text (PII masks, duplicate paragraphs)
    sample: float = 1.0  # sampling rate (above 1 up-samples)
    seed: int = 0  # seed of the sampling draw
    output: OutputConfig = field(default_factory=OutputConfig)  # where and how to write the shards
    compression: CompressionConfig = field(default_factory=CompressionConfig)  # compression of input and output (default: from the file names)

    def validate(self) -> None:
        check_name(self.name, "stream name")
        if not self.documents:
            raise ConfigError(f"stream {self.name!r}: `documents` is empty")
        if not self.output.path:
            raise ConfigError(f"stream {self.name!r}: `output.path` is required")
        if self.output.max_size_in_bytes <= 0:
            raise ConfigError(f"stream {self.name!r}: output.max_size_in_bytes must be positive")
        if self.output.min_text_length < 0:
            raise ConfigError(f"stream {self.name!r}: output.min_text_length must be >= 0")
        if self.sample < 0:
            raise ConfigError(f"stream {self.name!r}: sample must be >= 0")
        if self.output_extension() not in (".jsonl.gz", ".jsonl.zst", ".jsonl"):
            raise ConfigError(f"stream {self.name!r}: compression.output must be gz, zst or none")

    def output_extension(self) -> str:
        kind = (self.compression.output or "gz").lower().lstrip(".")
        return {"gz": ".jsonl.gz", "gzip": ".jsonl.gz", "zst": ".jsonl.zst", "zstd": ".jsonl.zst",
                "none": ".jsonl", "": ".jsonl"}.get(kind, "?")


@dataclass
class WorkDirConfig:
    input: str | None = None  # Dolma's local copy of inputs (not needed here)
    output: str | None = None  # Dolma's local output staging (not needed here)


@dataclass
class MixConfig:
    """`dolma mix` options."""

    streams: list[StreamConfig] = field(default_factory=list)  # the output streams, each with its documents, attributes and rules
    processes: int = 1
    allow_missing_attributes: bool = False  # run even if a rule reads an attribute no file has (it never fires)
    ignore_existing: bool = False
    debug: bool = False
    dryrun: bool = False
    ray_address: str | None = None
    executor: Executor = "auto"  # auto | ray | local | serial: see dolma_pipeline.executor.choose_executor
    report: str | None = None  # where to write the mix report JSON (default: beside each stream's output)
    work_dir: WorkDirConfig = field(default_factory=WorkDirConfig)  # Dolma's work_dir block (accepted for compatibility)
    shuffle: bool = False  # shuffle documents within each output shard
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES  # longer document or attribute lines are errors

    def validate(self) -> None:
        if not self.streams:
            raise ConfigError("no streams to mix: `streams` is empty")
        if self.processes < 1:
            raise ConfigError("processes must be at least 1")
        names = [s.name for s in self.streams]
        outputs = [(s.output.path.rstrip("/"), s.name) for s in self.streams]
        if len(set(outputs)) != len(outputs):
            raise ConfigError(f"two streams share a name and an output path: {names}")
