"""`dolma tokenize --verify DIR`: re-read token files and check every document against the tokenizer.

For each part: the `.csv.gz` rows must tile the `.npy` exactly (contiguous, from 0 to its end), and each
document's tokens must equal what the tokenizer gives for the original document at `src:loc` (read
again from the input file, whose id must match). Each (src, loc) may appear only once. The tokenizer and
its options come from DIR's summary JSON when there is one (its sha256 is checked), else from the flags
(so Dolma's own output can be verified too). Any problem fails the command, naming the document.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dolma_pipeline.errors import DolmaError
from dolma_pipeline.reader import read_documents
from dolma_pipeline.tokenize.tokenfile import (
    SUMMARY_NAME,
    infer_dtype,
    list_parts,
    metadata_path,
    open_tokens,
    read_rows,
)
from dolma_pipeline.tokenize.tokenizer_io import document_tokens, load_tokenizer, resolve_tokenizer

log = logging.getLogger(__name__)
MAX_PROBLEMS = 20
BATCH = 512


@dataclass
class VerifyReport:
    directory: str
    parts: int = 0
    documents: int = 0
    tokens: int = 0
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0

    def problem(self, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)

    def render(self) -> str:
        return (f"verified {self.directory}: {self.parts} part(s), {self.documents:,} documents, "
                f"{self.tokens:,} tokens: every document matches the tokenizer")


@dataclass
class _Location:
    part: str
    start: int
    end: int
    id: str
    loc: int


def _tokenizer_options(directory: str, config: Any) -> tuple[str, int | None, int | None, bool, str | None]:
    """(tokenizer file, bos, eos, strip, dtype) from the run's summary, or from the flags for foreign output."""
    summary_path = os.path.join(directory, SUMMARY_NAME)
    if not os.path.exists(summary_path):
        resolved = resolve_tokenizer(config.tokenizer.name_or_path, os.path.join(directory, ".verify-tokenizer"),
                                     config.tokenizer.allow_hub)
        return (resolved.path, config.tokenizer.bos_token_id, config.tokenizer.eos_token_id, config.strip_text,
                config.dtype)
    with open(summary_path) as fh:
        summary = json.load(fh)
    recorded = summary["tokenizer"]
    path = recorded["path"] if os.path.isfile(recorded["path"]) else recorded["name_or_path"]
    resolved = resolve_tokenizer(path, os.path.join(directory, ".verify-tokenizer"), config.tokenizer.allow_hub)
    if resolved.sha256 != recorded["sha256"]:
        raise DolmaError(f"{directory} was tokenized with {recorded['name_or_path']} (sha256 {recorded['sha256']}) "
                         f"but {resolved.path} has sha256 {resolved.sha256}")
    return resolved.path, recorded["bos_token_id"], recorded["eos_token_id"], recorded["strip_text"], summary["dtype"]


def verify_directory(directory: str, config: Any) -> VerifyReport:
    """Check every part of `directory`; raises DolmaError listing the problems if any."""
    directory = os.path.abspath(os.path.expanduser(directory))
    parts = list_parts(directory)
    if not parts:
        raise DolmaError(f"{directory}: no part-*.npy files to verify")
    tokenizer_path, bos, eos, strip, dtype = _tokenizer_options(directory, config)
    report = VerifyReport(directory, parts=len(parts))
    by_source: dict[str, dict[int, _Location]] = defaultdict(dict)
    token_arrays: dict[str, np.ndarray] = {}
    for part in parts:
        rows = read_rows(metadata_path(part))
        tokens = open_tokens(part, dtype or infer_dtype(part, rows))
        token_arrays[part] = tokens
        position = 0
        for row in rows:
            if row.start != position or row.end <= row.start:
                report.problem(f"{part}: document {row.id!r} spans [{row.start}, {row.end}) but the previous "
                               f"one ended at {position}")
            position = row.end
            if row.loc in by_source[row.src]:
                report.problem(f"{row.src}:{row.loc} (document {row.id!r}) appears twice: in "
                               f"{by_source[row.src][row.loc].part} and {part}")
            by_source[row.src][row.loc] = _Location(part, row.start, row.end, row.id, row.loc)
            report.documents += 1
        if position != len(tokens):
            report.problem(f"{part}: its metadata covers {position} tokens but the file holds {len(tokens)}")
        report.tokens += len(tokens)
    tokenizer = load_tokenizer(tokenizer_path)
    for src, wanted in sorted(by_source.items()):
        _verify_source(src, wanted, tokenizer, bos, eos, strip, token_arrays, report)
    if report.problem_count:
        more = f"\n  ... and {report.problem_count - len(report.problems)} more" \
            if report.problem_count > len(report.problems) else ""
        raise DolmaError(f"verification of {directory} failed ({report.problem_count} problem(s)):\n  "
                         + "\n  ".join(report.problems) + more)
    return report


def _verify_source(src: str, wanted: dict[int, _Location], tokenizer, bos: int | None, eos: int | None, strip: bool,
                   token_arrays: dict[str, np.ndarray], report: VerifyReport) -> None:
    """Stream one input file once and compare each of its tokenized documents."""
    if not os.path.exists(src) and "://" not in src:
        report.problem(f"{src}: the input file of {len(wanted)} document(s) no longer exists")
        return
    batch: list[tuple[str, _Location]] = []
    found = set()

    def check(batch: list[tuple[str, _Location]]) -> None:
        expected = document_tokens(tokenizer, [text for text, _ in batch], bos, eos, strip)
        for ids, (_, where) in zip(expected, batch):
            actual = token_arrays[where.part][where.start : where.end]
            if len(ids) != len(actual) or not np.array_equal(actual, np.asarray(ids, dtype=actual.dtype)):
                first = next((i for i, (a, b) in enumerate(zip(actual.tolist(), ids)) if a != b),
                             min(len(ids), len(actual)))
                report.problem(f"document {where.id!r} ({src}:{where.loc}) in {where.part} "
                               f"[{where.start}, {where.end}): tokens differ from the tokenizer's at position "
                               f"{first} ({len(actual)} tokens written, {len(ids)} expected)")

    for doc in read_documents(src, "skip_line"):
        where = wanted.get(doc.line)
        if where is None:
            continue
        found.add(doc.line)
        if doc.id != where.id:
            report.problem(f"{src}:{doc.line}: the input's document id is {doc.id!r} but {where.part} says "
                           f"{where.id!r}")
            continue
        batch.append((doc.text, where))
        if len(batch) >= BATCH:
            check(batch)
            batch = []
    if batch:
        check(batch)
    for loc in sorted(set(wanted) - found)[:MAX_PROBLEMS]:
        report.problem(f"{src}:{loc}: document {wanted[loc].id!r} of {wanted[loc].part} is not in the input file")
