"""What every dedupe mode shares: the sorted input list, document references, paths and fingerprints.

A document is named by `ref = file_index << 32 | line` (file_index in the sorted input list, line
1-based), so sorting refs is sorting by (file path, line): "the first copy" is the smallest ref,
whatever the number of workers or the order in which they finish.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from dolma_pipeline import io
from dolma_pipeline.config import fingerprint
from dolma_pipeline.dedupe.config import DedupeConfig
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.executor import Shard
from dolma_pipeline.safety import check_outputs, owned_work_dir
from dolma_pipeline.tag import common_directory

LINE_BITS = 32
LINE_MASK = (1 << LINE_BITS) - 1


def make_ref(file_index: int, line: int) -> int:
    return (file_index << LINE_BITS) | line


@dataclass
class ReduceShard(Shard):
    """One reducer of a shuffle: segment `partition` of every file in `inputs`, written as `outputs` segments."""

    partition: int = 0
    inputs: list[str] = field(default_factory=list)
    outputs: int = 1


@dataclass
class RunPlan:
    """The resolved inputs and locations of one dedupe run."""

    files: list[str]
    attribute_files: list[str]
    work_dir: str
    file_fingerprints: list[str]  # per input file: config + identity of the file's bytes
    inputs_fingerprint: str  # of the whole input list: reducers depend on every file

    def stage_dir(self, *parts: str) -> str:
        return io.join(self.work_dir, *parts)


def _file_identity(path: str) -> list:
    if io.is_remote(path):
        return [path]
    st = os.stat(path)
    return [path, st.st_size, st.st_mtime_ns]


def attribute_path(doc_path: str, name: str, document_dir: str, destination: str | None, base: str) -> str:
    if destination:
        return io.join(destination, doc_path[len(base):].lstrip("/"))
    marker = f"/{document_dir.strip('/')}/"
    cut = doc_path.rfind(marker)
    if cut < 0:
        raise ConfigError(f"{doc_path} is not under a `{document_dir}/` directory; pass --destination")
    return f"{doc_path[:cut]}/attributes/{name}/{doc_path[cut + len(marker):]}"


def make_plan(config: DedupeConfig, mode_fingerprint: object, claim: bool = True) -> RunPlan:
    """Resolve inputs and output locations; refuse outputs over inputs; with `claim`, create the work dir
    (a user's existing `work_dir` is not taken over: the tool's own directory is made inside it)."""
    if not config.documents:
        raise ConfigError("no documents given (--documents PATH_OR_GLOB ...)")
    files = io.expand_paths(config.documents)
    if len(files) >= 1 << 31:
        raise ConfigError("too many input files (at most 2^31)")
    base = common_directory(files)
    section = config.dedupe
    attribute_files = [attribute_path(f, section.name, section.document_dir, config.destination, base) for f in files]
    if config.work_dir:
        work_dir = config.work_dir
    else:
        marker = f"/{section.document_dir.strip('/')}/"
        first = files[0]
        cut = first.rfind(marker)
        root = first[:cut] if cut >= 0 else base.rstrip("/")
        work_dir = io.join(root, "dedupe_work", section.name)
    check_outputs(files, attribute_files, [config.destination or "", work_dir], what="dedupe output")
    if claim and not io.is_remote(work_dir):
        work_dir = owned_work_dir(work_dir, f"dolma_dedupe_{section.name}")
    per_file = [fingerprint([mode_fingerprint, i, _file_identity(f)]) for i, f in enumerate(files)]
    return RunPlan(files, attribute_files, work_dir, per_file, fingerprint([mode_fingerprint, per_file]))


def counts_cpu(work: Callable[[Any], dict[str, Any]]) -> Callable[[Any], dict[str, Any]]:
    """Add the worker's CPU seconds to a stage's stats (benchmarks sum them across Ray workers)."""

    @functools.wraps(work)
    def wrapper(shard: Any) -> dict[str, Any]:
        start = time.process_time()
        stats = work(shard)
        stats["cpu_seconds"] = time.process_time() - start
        return stats

    return wrapper


def write_rows(writer: io.AtomicWriter, rows: Iterable[bytes], batch: int = 1024) -> None:
    """Write JSON lines in batches: one compressor call per batch rather than per row."""
    rows = iter(rows)
    while chunk := list(islice(rows, batch)):
        writer.write(b"\n".join(chunk) + b"\n")
