"""SIGKILL a real command once it has finished its first shard, rerun it, and compare with an uninterrupted run.

Used by the resume tests of tag, dedupe, mix and tokenize. The kill is timed by polling for a completion
marker (`.<name>.done.json`), never by a fixed sleep. A run that finishes before it can be killed proves
nothing, so the case is rebuilt at a larger scale (bounded) and the test fails if no scale can be cut.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import DOLMA, REPO

SCALES = (1, 2, 4, 8)


def markers(root: Path, recursive: bool = True) -> dict[str, int]:
    """Every completion marker under root, or in root only (relative path -> mtime in ns)."""
    found: dict[str, int] = {}
    if not os.path.isdir(root):
        return found
    for dirpath, _, names in os.walk(root) if recursive else [(root, None, os.listdir(root))]:
        for name in names:
            if name.startswith(".") and name.endswith(".done.json"):
                path = os.path.join(dirpath, name)
                found[os.path.relpath(path, root)] = os.stat(path).st_mtime_ns
    return found


@dataclass
class Case:
    """One command to cut: how to build its input at a scale, run it, and read what it wrote.

    make(root, scale) writes the input under root; argv(root) is the command line after `dolma`;
    finished(root) says the run completed (its summary exists); outputs(root) is every output file with its
    bytes; watch(root) is the folder polled for the first completion marker (root by default), with its
    subfolders unless recursive is False.
    """

    make: Callable[[Path, int], None]
    argv: Callable[[Path], list[str]]
    finished: Callable[[Path], bool]
    outputs: Callable[[Path], dict[str, bytes]]
    watch: Callable[[Path], Path] = field(default=lambda root: root)
    recursive: bool = True
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a kill-and-resume left: the two roots, the markers at the kill, and the rerun's output."""

    killed: Path
    clean: Path
    at_kill: dict[str, int]
    after: dict[str, int]
    rerun_log: str


def _env(case: Case) -> dict[str, str]:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "DOLMA_NO_PROGRESS": "1", **case.env}
    env.pop("RAY_ADDRESS", None)
    return env


def run(case: Case, root: Path, timeout: float = 300) -> str:
    """Run the command to completion; its stdout and stderr."""
    proc = subprocess.run([*DOLMA, *case.argv(root)], cwd=REPO, env=_env(case), capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def kill_after_first_shard(case: Case, root: Path, log: Path, timeout: float = 120) -> bool:
    """Start the command in its own process group and SIGKILL the whole group (workers included) as soon
    as one completion marker appears. True when the run was cut before it finished."""
    watch = case.watch(root)
    with open(log, "wb") as out:
        proc = subprocess.Popen([*DOLMA, *case.argv(root)], cwd=REPO, env=_env(case), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None and not markers(watch, case.recursive):
                assert time.monotonic() < deadline, f"no shard completed within {timeout}s"
                time.sleep(0.002)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    if proc.returncode != -signal.SIGKILL:
        assert proc.returncode == 0, log.read_text()[-3000:]
        return False
    return not case.finished(root)


def sigkill_and_resume(case: Case, tmp_path: Path, scales: tuple[int, ...] = SCALES) -> Outcome:
    """Cut a run after its first finished shard, rerun it, run the same input uninterrupted, compare bytes.

    Both runs use the same input path (outputs may record it), then move to `killed/` and `clean/`.
    Returns the outcome so that callers can check command-specific claims (what was resumed, counts)."""
    root = tmp_path / "run"
    for scale in scales:
        shutil.rmtree(root, ignore_errors=True)
        case.make(root, scale)
        if kill_after_first_shard(case, root, tmp_path / f"killed-run-x{scale}.log"):
            break
    else:
        raise AssertionError(f"the run finished before it could be killed at every scale {scales}")
    at_kill = markers(case.watch(root), case.recursive)
    assert at_kill, "the kill came before any shard was complete"
    rerun_log = run(case, root)
    after = markers(case.watch(root), case.recursive)
    leftovers = [p for p in root.rglob("*") if ".tmp" in p.name]
    assert leftovers == [], f"temporaries left behind: {leftovers}"
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    root.rename(killed)
    case.make(root, scale)
    run(case, root)
    root.rename(clean)
    resumed = case.outputs(killed)
    assert resumed, "the resumed run wrote nothing"
    assert resumed == case.outputs(clean), "the resumed run's bytes differ from an uninterrupted run's"
    return Outcome(killed, clean, at_kill, after, rerun_log)
