"""Determinism and resume: 1 vs 2 processes, a failing worker, a killed driver, path spellings."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from dolma_pipeline.io import write_jsonl
from tests.conftest import DOLMA, REPO, make_docs, read_tree
from tests.sigkill import Case, sigkill_and_resume

FLAKY = '''
import os, time
from dolma_pipeline.documents import Span
from dolma_pipeline.tagger import TAGGERS, Tagger

@TAGGERS.register("flaky_length_v1")
class FlakyLength(Tagger):
    """Length, but raises on document c-3 while $FLAKY_FLAG exists; optionally slow."""
    def predict(self, doc):
        if doc.id == "c-3" and os.path.exists(os.environ.get("FLAKY_FLAG", "/nonexistent")):
            raise RuntimeError("injected worker failure")
        time.sleep(float(os.environ.get("FLAKY_SLEEP", "0")))
        return [Span(0, len(doc.text), "length", float(len(doc.text)))]
'''


def _tag(root, *extra, env=None, check=True):
    cmd = [*DOLMA, "tag", "--documents", f"{root}/documents/**/*", "--experiment", "exp",
           "--taggers", "char_length_v1", "whitespace_tokenizer_v1", *extra]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def _attributes(root):
    return read_tree(root / "attributes")


def _executor_record(root) -> dict:
    with open(root / "attributes" / "exp" / "dolma_tag.summary.json") as fh:
        return json.load(fh)["summary"]["executor"]


@pytest.mark.parametrize("executor", ["auto", pytest.param("ray", marks=[pytest.mark.ray, pytest.mark.slow])])
def test_one_and_two_processes_give_identical_bytes(corpus, tmp_path, executor):
    other = tmp_path / "copy"
    shutil.copytree(corpus / "documents", other / "documents")
    one_proc = _tag(corpus, "--processes", "1")
    two_proc = _tag(other, "--processes", "2", "--executor", executor)
    one, two = _attributes(corpus), _attributes(other)
    assert one and one == two
    serial, parallel = _executor_record(corpus), _executor_record(other)
    assert serial["kind"] == "serial" and serial["workers"] == 1 and "executor: serial" in one_proc.stdout
    # two distinct worker processes ran shards, neither of them the command itself
    assert parallel["kind"] == ("local" if executor == "auto" else "ray"), parallel
    assert parallel["workers"] == 2 and len({pid for _, pid in parallel["worker_pids"]}) == 2
    assert serial["worker_pids"][0][1] not in {pid for _, pid in parallel["worker_pids"]}
    assert f"executor: {parallel['kind']}" in two_proc.stdout and "2 worker process(es)" in two_proc.stdout


@pytest.mark.ray
def test_failed_worker_then_resume_matches_uninterrupted_run(corpus, tmp_path):
    plugin = tmp_path / "flaky.py"
    plugin.write_text(FLAKY)
    flag = tmp_path / "flag"
    flag.touch()
    clean = tmp_path / "clean"
    shutil.copytree(corpus / "documents", clean / "documents")
    args = ["--taggers", "flaky_length_v1", "--tagger_modules", str(plugin), "--processes", "2"]
    env = {"FLAKY_FLAG": str(flag)}
    failed = _tag(corpus, *args, env=env, check=False)
    assert failed.returncode == 1
    assert "injected worker failure" in failed.stderr
    assert not (corpus / "attributes/exp/sub/c.jsonl").exists()
    flag.unlink()
    resumed = _tag(corpus, *args, env=env)
    assert "c.jsonl" not in resumed.stderr
    _tag(clean, *args, env=env)
    assert _attributes(corpus) == _attributes(clean)


def _tag_case() -> Case:
    def make(root, scale):
        for i in range(8 * scale):
            write_jsonl(str(root / "documents" / f"part-{i:03d}.jsonl.gz"), make_docs(f"p{i}", 50 * scale))

    return Case(make=make,
                argv=lambda root: ["tag", "--documents", f"{root}/documents/*", "--experiment", "exp", "--taggers",
                                   "char_length_v1", "whitespace_tokenizer_v1", "--processes", "2"],
                finished=lambda root: (root / "attributes/exp/dolma_tag.summary.json").exists(),
                outputs=lambda root: _attributes(root),
                watch=lambda root: root / "attributes")


def test_sigkill_of_a_two_process_run_then_resume(tmp_path):
    outcome = sigkill_and_resume(_tag_case(), tmp_path)
    files = len(list((outcome.killed / "documents").iterdir()))
    assert len(outcome.at_kill) < files  # cut mid-way: the rerun had files left to tag
    done = re.search(r"(\d+) processed, (\d+) already done", outcome.rerun_log)
    assert done and int(done[2]) >= len(outcome.at_kill) and int(done[1]) + int(done[2]) == files, outcome.rerun_log
    # markers of the files finished before the kill were kept, not rewritten by the rerun
    assert all(outcome.after[name] == mtime for name, mtime in outcome.at_kill.items())
    ids = [json.loads(line)["id"] for data in _attributes(outcome.killed).values()
           for line in gzip.decompress(data).splitlines()]
    want = [json.loads(line)["id"] for data in read_tree(outcome.killed / "documents").values()
            for line in gzip.decompress(data).splitlines()]
    assert sorted(ids) == sorted(want)  # every document tagged exactly once


def test_rerun_skips_whatever_the_path_spelling(corpus):
    _tag(corpus, "--debug")
    before = _attributes(corpus)
    odd = f"{corpus}/documents/../documents/./"
    proc = subprocess.run([*DOLMA, "tag", "--documents", f"{odd}**/*", "--experiment", "exp", "--taggers",
                           "char_length_v1", "whitespace_tokenizer_v1", "--debug"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "0 processed, 4 already done" in proc.stdout
    summary = json.loads((corpus / "attributes/exp/dolma_tag.summary.json").read_text())["summary"]
    assert summary["documents"] == 105  # resumed files still count in the summary
    forced = _tag(corpus, "--debug", "--ignore_existing")
    assert "4 processed" in forced.stdout
    assert _attributes(corpus) == before


def test_changed_config_redoes_finished_files(corpus):
    _tag(corpus, "--debug")
    proc = subprocess.run([*DOLMA, "tag", "--documents", f"{corpus}/documents/**/*", "--experiment", "exp",
                           "--taggers", "char_length_v1", "--debug"], cwd=REPO, capture_output=True, text=True)
    assert "4 processed" in proc.stdout
    row = json.loads(subprocess.run(["zcat", str(corpus / "attributes/exp/a.jsonl.gz")], capture_output=True,
                                    text=True).stdout.splitlines()[0])
    assert list(row["attributes"]) == ["exp__char_length_v1__length"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


CRASHY = '''
import os
from dolma_pipeline.documents import Span
from dolma_pipeline.tagger import TAGGERS, Tagger

@TAGGERS.register("crash_once_v1")
class CrashOnce(Tagger):
    """Kills its worker process the first time it sees document c-3 (a crash, not a data error)."""
    def predict(self, doc):
        flag = os.environ["CRASH_FLAG"]
        if doc.id == "c-3" and not os.path.exists(flag):
            open(flag, "w").close()
            os._exit(137)
        return [Span(0, len(doc.text), "length", float(len(doc.text)))]
'''


@pytest.mark.parametrize("executor", ["auto", pytest.param("ray", marks=pytest.mark.ray)])
def test_crashed_worker_is_retried(corpus, tmp_path, executor):
    plugin = tmp_path / "crashy.py"
    plugin.write_text(CRASHY)
    flag = tmp_path / "crashed"
    proc = _tag(corpus, "--taggers", "crash_once_v1", "--tagger_modules", str(plugin), "--processes", "2",
                "--executor", executor, env={"CRASH_FLAG": str(flag)})
    assert flag.exists(), "the worker must have crashed once"
    assert "4 processed" in proc.stdout
    rows = subprocess.run(["cat", str(corpus / "attributes/exp/sub/c.jsonl")], capture_output=True, text=True)
    assert len(rows.stdout.splitlines()) == 25


def test_local_pool_executor_gives_the_same_bytes(corpus, tmp_path):
    other = tmp_path / "copy"
    shutil.copytree(corpus / "documents", other / "documents")
    _tag(corpus, "--debug")
    proc = _tag(other, "--processes", "2", "--executor", "local")
    assert "4 processed" in proc.stdout
    assert _attributes(corpus) == _attributes(other)
    failing = _tag(other, "--processes", "2", "--executor", "local", "--ignore_existing", "--taggers", "nope_v1",
                   check=False)
    assert failing.returncode == 1 and "unknown tagger" in failing.stderr
