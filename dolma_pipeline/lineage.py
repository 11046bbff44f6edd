"""Lineage records: every stage output directory says what made it, from what, with which code.

`lineage.json` in an output directory holds the stage name, the command, its resolved config, the
code version, and its inputs (other output directories with their own `lineage.json`). Following the
inputs answers "which data trained this model" back to the tagged documents: `dolma lineage DIR`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass, field
from typing import Any

from dolma_pipeline import io

LINEAGE_FILE = "lineage.json"


def code_version() -> str:
    """The git commit of the checkout (with `+dirty` for local changes), else the package version."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        if commit:
            return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import version

    return "dolma-pipeline " + version("dolma-pipeline")


def directory_fingerprint(path: str) -> str:
    """A hash of the names, sizes and mtimes of the files below `path` (cheap, catches changes)."""
    digest = hashlib.sha256()
    if os.path.isdir(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(root, name)
                st = os.stat(full)
                digest.update(f"{os.path.relpath(full, path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    elif os.path.exists(path):
        st = os.stat(path)
        digest.update(f"{st.st_size}\0{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


@dataclass
class Lineage:
    stage: str
    command: str
    output: str
    config: dict[str, Any]
    inputs: list[str] = field(default_factory=list)
    input_fingerprints: dict[str, str] = field(default_factory=dict)
    code_version: str = ""
    fingerprint: str = ""

    def write(self) -> None:
        from dolma_pipeline.safety import redact

        io.write_text(io.join(self.output, LINEAGE_FILE), json.dumps(redact(self.__dict__), indent=2, default=str))


def read_lineage(directory: str) -> Lineage | None:
    path = io.join(directory, LINEAGE_FILE)
    if not io.exists(path):
        return None
    return Lineage(**json.loads(io.read_text(path)))


def trace(directory: str) -> list[Lineage]:
    """The lineage chain from `directory` back to the first stage (depth first, each record once)."""
    seen, chain, todo = set(), [], [directory]
    while todo:
        current = todo.pop(0)
        current = current if io.is_remote(current) else os.path.abspath(current)
        if current in seen:
            continue
        seen.add(current)
        record = read_lineage(current)
        if record is None:
            continue
        chain.append(record)
        todo.extend(record.inputs)
    return chain


@dataclass
class Config:
    path: str = ""  # an output directory (e.g. a trained model) to trace


def main(argv: list[str], config_file: str | None = None) -> int:
    """`dolma lineage DIR`: print which data and configs produced DIR."""
    from dolma_pipeline.errors import ConfigError

    flags = [a for a in argv if a.startswith("-")]
    if flags:
        raise ConfigError(f"unknown option {flags[0]!r}; usage: dolma lineage OUTPUT_DIR")
    if len(argv) != 1:
        raise ConfigError("usage: dolma lineage OUTPUT_DIR (a checkpoint, token, mix or attribute directory)")
    start = os.path.abspath(argv[0])
    while not io.exists(io.join(start, LINEAGE_FILE)) and os.path.dirname(start) != start:
        start = os.path.dirname(start)  # a checkpoint step directory: its run directory has the record
    chain = trace(start)
    if not chain:
        raise ConfigError(f"no {LINEAGE_FILE} in {argv[0]}")
    for record in chain:
        print(f"{record.stage} ({record.command}) -> {record.output}")
        print(f"    code {record.code_version}, fingerprint {record.fingerprint}")
        for inp in record.inputs:
            print(f"    from {inp} [{record.input_fingerprints.get(inp, '?')}]")
    return 0
