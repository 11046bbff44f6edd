"""Durability: outputs reach the disk before their completion markers, and a mix killed mid-pack
(a real SIGKILL) leaves hidden temporary shards that the next run removes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import yaml

from dolma_pipeline.cli import main
from dolma_pipeline.executor import marker_path
from tests.conftest import REPO


def _fd_path(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def test_outputs_are_fsynced_before_their_rename_and_their_directory_before_the_marker(corpus, monkeypatch):
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", _fd_path(fd))), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", f"{a} -> {b}")), real_replace(a, b))[1])
    assert main(["tag", "--documents", str(corpus / "documents"), "--experiment", "e", "--taggers",
                 "char_length_v1", "--debug"]) == 0

    outputs = sorted(str(p) for p in (corpus / "attributes" / "e").rglob("*.jsonl*") if not p.name.startswith("."))
    assert len(outputs) == 4
    for output in outputs:
        renamed = [i for i, (kind, what) in enumerate(events) if kind == "replace" and what.endswith(f" -> {output}")]
        assert len(renamed) == 1, output
        tmp = events[renamed[0]][1].split(" -> ")[0]
        assert ("fsync", tmp) in events[:renamed[0]], f"{output} was renamed before its data was fsynced"
        marker = marker_path(output)
        marked = next(i for i, (kind, what) in enumerate(events) if kind == "replace" and what.endswith(f" -> {marker}"))
        assert ("fsync", os.path.dirname(output)) in events[renamed[0]:marked], \
            f"the marker of {output} was written before the rename was made durable"


# --------------------------------------------------------------------------------------- killed mid-pack
def _write_big_corpus(root, files: int, docs_per_file: int, doc_chars: int) -> None:
    os.makedirs(root / "documents", exist_ok=True)
    words = [f"w{i:04d}" for i in range(5000)]
    for f in range(files):
        with open(root / "documents" / f"part-{f}.jsonl", "w") as fh:
            for i in range(docs_per_file):
                start = (f * 7919 + i * 104729) % len(words)
                text = " ".join(words[(start + k * 31) % len(words)] for k in range(doc_chars // 6))
                fh.write(json.dumps({"id": f"{f}-{i}", "text": text, "source": "big"}) + "\n")


def _mix_config(tmp_path, root, out) -> str:
    path = tmp_path / f"mix-{out.name}.yaml"
    stream = {"name": "mixed", "documents": [str(root / "documents" / "*.jsonl")],
              "output": {"path": str(out), "max_size_in_bytes": 1 << 40}, "compression": {"output": "none"}}
    path.write_text(yaml.safe_dump({"streams": [stream], "processes": 1}))
    return str(path)


def _mix(config: str) -> subprocess.Popen:
    """`dolma -c CONFIG mix` in a process of its own; its output goes to CONFIG.log (never a full pipe)."""
    env = {**os.environ, "PYTHONPATH": REPO, "DOLMA_NO_PROGRESS": "1"}
    with open(config + ".log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "dolma_pipeline.cli", "-c", config, "mix"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def _finish(config: str, proc: subprocess.Popen) -> None:
    assert proc.wait(timeout=300) == 0, open(config + ".log").read()


def _temp_shards(out) -> list[str]:
    try:
        return [n for n in os.listdir(out) if n.startswith(".mixed-") and ".tmp-" in n]
    except FileNotFoundError:
        return []


def _kill_mid_pack(config: str, out) -> list[str]:
    """Run the mix, SIGKILL it as soon as a temporary shard appears; the temporaries left behind."""
    proc, seen, deadline = _mix(config), [], time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        seen = _temp_shards(out)
        if seen:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.0005)
    proc.wait()
    assert seen, f"the run ended (status {proc.returncode}) before a temporary shard was seen"
    assert proc.returncode == -signal.SIGKILL
    return _temp_shards(out)


def test_mix_killed_mid_pack_leaves_a_temp_shard_that_the_next_run_removes(tmp_path):
    root = tmp_path / "corpus"
    _write_big_corpus(root, files=6, docs_per_file=400, doc_chars=6000)  # ~14 MB, one shard of six parts
    # The pack copies and fsyncs ~14 MB into the temporary shard, so the poll sees it; should the kill
    # land just after the rename, the run is repeated on a fresh output directory.
    for attempt in range(3):
        out = tmp_path / f"out{attempt}"
        config = _mix_config(tmp_path, root, out)
        if _kill_mid_pack(config, out):
            break
    else:
        raise AssertionError("three killed runs left no temporary shard behind")

    _finish(config, _mix(config))
    assert _temp_shards(out) == []
    assert not (out / ".parts").exists()

    clean = tmp_path / "clean"
    clean_config = _mix_config(tmp_path, root, clean)
    _finish(clean_config, _mix(clean_config))
    shards = sorted(n for n in os.listdir(clean) if not n.startswith("."))
    assert shards == ["mixed-0000.jsonl"]
    assert sorted(n for n in os.listdir(out) if not n.startswith(".")) == shards
    assert (out / shards[0]).read_bytes() == (clean / shards[0]).read_bytes()
