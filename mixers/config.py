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

    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    syntax: Syntax = "jsonpath"


@dataclass
class SpanReplacementConfig:
    """Replace every span of the selected attribute with `min_score <= score < max_score`."""

    span: str
    min_score: float | None = None
    max_score: float | None = None
    replacement: str = ""
    syntax: Syntax = "jsonpath"

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

    attribute: str
    op: Op
    value: float
    reduce: Reduce = "first"
    action: Literal["exclude", "include"] = "exclude"
    default: float | None = None
    name: str | None = None

    def label(self) -> str:
        return self.name or f"{self.action} {self.reduce}({self.attribute}) {self.op} {self.value:g}"


@dataclass
class OutputConfig:
    path: str = ""
    max_size_in_bytes: int = 2 * 2**30
    discard_fields: list[str] = field(default_factory=list)
    min_text_length: int = 0
    compression_level: int | None = None  # gzip 1-9 (default 6, as Dolma), zstd 1-22 (default 3)


@dataclass
class CompressionConfig:
    """Input compression is read from each file's extension; `output` picks the shards' format."""

    input: str | None = None
    output: str | None = None


@dataclass
class StreamConfig:
    name: str
    documents: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    filter: FilterConfig | None = None
    rules: list[RuleConfig] = field(default_factory=list)
    dedupe: list[str] = field(default_factory=list)
    span_replacement: list[SpanReplacementConfig] = field(default_factory=list)
    sample: float = 1.0
    seed: int = 0
    output: OutputConfig = field(default_factory=OutputConfig)
    compression: CompressionConfig = field(default_factory=CompressionConfig)

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
    input: str | None = None
    output: str | None = None


@dataclass
class MixConfig:
    """`dolma mix` options."""

    streams: list[StreamConfig] = field(default_factory=list)
    processes: int = 1
    allow_missing_attributes: bool = False
    ignore_existing: bool = False
    debug: bool = False
    dryrun: bool = False
    ray_address: str | None = None
    executor: Executor = "auto"  # auto | ray | local | serial: see dolma_pipeline.executor.choose_executor
    report: str | None = None
    work_dir: WorkDirConfig = field(default_factory=WorkDirConfig)
    shuffle: bool = False
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
