"""Checks made before any output is written: inputs, attribute sets, attribute files and keys.

A filter that silently never fires is Dolma's worst trap; here an attribute set whose directory is
missing, a document file without its attribute file, or a rule reading a key that appears in none of the
attribute files is an error naming the set, file or key (`allow_missing_attributes` turns the last two
into warnings, the missing attributes then reading as absent).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from dataclasses import dataclass, field

import orjson

from dolma_pipeline import io
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.lines import DEFAULT_MAX_LINE_BYTES
from mixers.config import StreamConfig

log = logging.getLogger(__name__)

MARKER = "/documents/"


@dataclass
class StreamPlan:
    """A validated stream: its document files and, for each, the attribute file of every set ("" if absent)."""

    config: StreamConfig
    documents: list[str]
    attribute_paths: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def attribute_file(doc_path: str, attribute_set: str) -> str:
    """Dolma's layout: `<root>/documents/<rel>` → `<root>/attributes/<set>/<rel>` (the last `documents/`)."""
    cut = doc_path.rfind(MARKER)
    if cut < 0:
        raise ConfigError(f"{doc_path} is not under a `documents/` directory, so its attributes cannot be found")
    return f"{doc_path[:cut]}/attributes/{attribute_set}/{doc_path[cut + len(MARKER):]}"


def plan_stream(config: StreamConfig, keys: dict[str, tuple[str, bool]], allow_missing: bool,
                max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> StreamPlan:
    documents = io.expand_paths(config.documents)
    plan = StreamPlan(config, documents)
    where = f"stream {config.name!r}"
    missing_sets: set[str] = set()
    for attribute_set in config.attributes:
        roots = sorted({attribute_file(d, attribute_set).rsplit(f"/attributes/{attribute_set}/", 1)[0]
                        for d in documents})
        for root in roots:
            directory = f"{root}/attributes/{attribute_set}"
            if not io.is_remote(directory) and not os.path.isdir(directory):
                used = ", ".join(sorted(keys)) or "none"
                problem = (f"{where}: attribute set {attribute_set!r} does not exist ({directory} is missing); "
                           f"attribute keys the stream reads: {used}")
                if not allow_missing:
                    raise ConfigError(problem + "; pass --allow_missing_attributes to mix without it")
                plan.warnings.append(problem)
                missing_sets.add(attribute_set)
    for doc_path in documents:
        row = []
        for attribute_set in config.attributes:
            path = attribute_file(doc_path, attribute_set)
            if attribute_set in missing_sets:
                row.append("")
            elif io.exists(path):
                row.append(path)
            elif allow_missing:
                plan.warnings.append(f"{where}: no attribute file {path}; its documents read as lacking {attribute_set!r}")
                row.append("")
            else:
                raise ConfigError(f"{where}: attribute file {path} for {doc_path} does not exist "
                                  "(pass --allow_missing_attributes to mix without it)")
        plan.attribute_paths.append(row)
    _check_keys(plan, keys, allow_missing, max_line_bytes)
    return plan


def _family(key: str) -> str | None:
    """`exp__tagger__` of `exp__tagger__type`; None for keys outside Dolma's naming (e.g. bff_... spans)."""
    parts = key.split("__")
    return "__".join(parts[:2]) + "__" if len(parts) >= 3 else None


def _check_keys(plan: StreamPlan, keys: dict[str, tuple[str, bool]], allow_missing: bool,
                max_line_bytes: int) -> None:
    """Every key the stream reads must appear in some attribute file; scanning stops once all are seen.

    Keys marked not strict (span types) are satisfied by their `experiment__tagger__` family.
    """
    if not keys:
        return
    files = [p for row in plan.attribute_paths for p in row if p]
    if not files:
        files = plan.documents[:1]  # the keys may come with the documents themselves
    needles = {}
    for key, (_, strict) in keys.items():
        family = None if strict else _family(key)
        pattern = re.escape(key.encode()) + rb'"\s*:' if family is None else re.escape(family.encode())
        needles[key] = re.compile(rb'"' + pattern)
    missing = dict(keys)
    seen_keys: set[str] = set()
    for path in files:
        for n, line in enumerate(io.iter_raw_lines(path, max_line_bytes)):
            if n < 3:
                seen_keys.update(_row_keys(line))
            for key in [k for k in missing if needles[k].search(line)]:
                del missing[key]
            if not missing:
                return
    for key, (user, _) in sorted(missing.items()):
        close = difflib.get_close_matches(key, sorted(seen_keys), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else (
            f"; keys found: {', '.join(sorted(seen_keys)[:12])}" if seen_keys else "")
        problem = (f"stream {plan.config.name!r}: attribute key {key!r} (read by {user}) appears in none of the "
                   f"attribute files of {plan.config.attributes}{hint}")
        if not allow_missing:
            raise ConfigError(problem + " (pass --allow_missing_attributes to run anyway)")
        plan.warnings.append(problem)


def _row_keys(line: bytes) -> set[str]:
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError:
        return set()
    attributes = row.get("attributes") if type(row) is dict else None
    return set(attributes) if type(attributes) is dict else set()
