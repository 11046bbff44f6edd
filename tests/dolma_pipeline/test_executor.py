"""The executor: the one rule for where shards run, back-pressure, one Ray session per pipeline, Ray auth."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml

from dolma_pipeline.errors import ConfigError
from dolma_pipeline.executor import choose_executor, run_shards
from dolma_pipeline.io import write_jsonl
from dolma_pipeline.tag import TagConfig, plan, tag_shard
from tests.conftest import REPO, make_docs


@pytest.fixture
def no_cluster(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.mark.parametrize("processes, address, env, debug, executor, kind", [
    (1, None, None, False, "auto", "serial"),
    (2, None, None, False, "auto", "local"),
    (1, "10.0.0.1:6379", None, False, "auto", "ray"),  # a cluster is used even for one process
    (2, None, "10.0.0.1:6379", False, "auto", "ray"),
    (1, None, None, False, "ray", "ray"),  # forced: an embedded cluster
    (2, None, "10.0.0.1:6379", False, "local", "local"),  # forced, the environment's address ignored
    (2, None, None, False, "serial", "serial"),
    (2, "10.0.0.1:6379", None, True, "auto", "serial"),  # --debug wins
])
def test_the_one_rule(monkeypatch, no_cluster, processes, address, env, debug, executor, kind):
    if env:
        monkeypatch.setenv("RAY_ADDRESS", env)
    placement = choose_executor(processes, address, debug, executor)
    assert placement.kind == kind
    assert placement.reason  # always says why
    assert (placement.address is not None) == (kind == "ray" and bool(address or env))


def test_contradictions_and_unknown_executors_are_config_errors(no_cluster):
    with pytest.raises(ConfigError, match="cannot be combined with ray_address"):
        choose_executor(2, "10.0.0.1:6379", False, "local")
    with pytest.raises(ConfigError, match="valid choices: auto, ray, local, serial"):
        choose_executor(2, None, False, "threads")


def _tiny_shards(root, count: int) -> list:
    for i in range(count):
        write_jsonl(str(root / "documents" / f"f{i:03d}.jsonl"), make_docs(f"f{i}", 2))
    return plan(TagConfig(documents=[str(root / "documents" / "*.jsonl")], experiment="bp",
                          taggers=["char_length_v1"]))


def test_local_pool_keeps_a_bounded_number_of_shards_in_flight(tmp_path, no_cluster):
    shards = _tiny_shards(tmp_path, 40)
    summary = run_shards(tag_shard, shards, processes=2, max_in_flight=3)
    assert summary.files_processed == 40 and summary.documents == 80
    info = summary.executor
    assert info["kind"] == "local" and info["in_flight_bound"] == 3
    assert info["max_in_flight"] == 3  # the window was used, never exceeded
    assert info["workers"] == 2


@pytest.mark.ray
@pytest.mark.slow
def test_ray_keeps_a_bounded_number_of_tasks_in_flight(tmp_path, no_cluster):
    shards = _tiny_shards(tmp_path, 30)
    summary = run_shards(tag_shard, shards, processes=2, executor="ray", max_in_flight=2)
    assert summary.files_processed == 30 and summary.documents == 60
    info = summary.executor
    assert info["kind"] == "ray" and info["in_flight_bound"] == 2 and info["max_in_flight"] == 2
    assert info["auth"] in ("token (made for this run)", "token (the user's)", "disabled (RAY_AUTH_MODE=disabled)")
    assert len(info["nodes"]) == 1 and info["workers"] >= 1


def _pipeline(tmp_path, executor: str) -> str:
    corpus = tmp_path / "corpus" / "documents"
    for name in ("a", "b", "c"):
        write_jsonl(str(corpus / f"{name}.jsonl.gz"), make_docs(name, 20))
    documents = [f"{corpus}/*.jsonl.gz"]
    stages = [
        {"name": "length", "command": "tag", "output": "{workdir}/corpus/attributes/length",
         "config": {"documents": documents, "experiment": "length", "taggers": ["char_length_v1"]}},
        {"name": "words", "command": "tag", "output": "{workdir}/corpus/attributes/words",
         "config": {"documents": documents, "experiment": "words", "taggers": ["whitespace_tokenizer_v1"]}},
        {"name": "tokens", "command": "tokenize", "output": "{workdir}/tokens",
         "config": {"documents": documents, "destination": "{workdir}/tokens"}},
    ]
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"workdir": str(tmp_path), "processes": 2, "executor": executor,
                                    "stages": stages}))
    return str(path)


def _executors(tmp_path) -> list[dict]:
    records = []
    for name in ("length", "words"):
        with open(tmp_path / "corpus" / "attributes" / name / "dolma_tag.summary.json") as fh:
            records.append(json.load(fh)["summary"]["executor"])
    with open(tmp_path / "tokens" / "dolma_tokenize.summary.json") as fh:
        records.append(json.load(fh)["executor"])
    return records


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("executor", ["ray", "auto"])
def test_pipeline_starts_one_ray_session_with_ray_and_none_with_auto(tmp_path, executor):
    """Ray's own session directories are counted (RAY_TMPDIR is private to this run): one per started cluster."""
    ray_tmp = tempfile.mkdtemp(prefix="rs", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    try:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(RAY_TMPDIR=ray_tmp, PYTHONPATH=REPO)
        proc = subprocess.run([sys.executable, "-m", "dolma_pipeline.cli", "pipeline", "run",
                               _pipeline(tmp_path, executor)], cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        sessions = [p for p in glob.glob(os.path.join(ray_tmp, "ray", "session_*")) if not p.endswith("_latest")]
        records = _executors(tmp_path)
        if executor == "ray":
            assert len(sessions) == 1, sessions
            assert {r["kind"] for r in records} == {"ray"}
            assert len({r["session"] for r in records}) == 1  # every stage ran in that one session
            assert "[pipeline] executor: ray" in proc.stdout
        else:
            assert sessions == []
            assert {r["kind"] for r in records} == {"local"} and all(r["workers"] == 2 for r in records)
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


EMBEDDED = """
import os, sys
from dolma_pipeline.executor_ray import ray_init
import ray
ray_init(1, None)
print(ray.get_runtime_context().gcs_address, os.environ["RAY_AUTH_TOKEN"], flush=True)
sys.stdin.readline()
ray.shutdown()
"""

PROBE = """
import sys, ray
ray.init(address=sys.argv[1], logging_level="ERROR")
print("joined", ray.cluster_resources().get("CPU"))
"""


@pytest.mark.ray
@pytest.mark.slow
def test_embedded_cluster_refuses_a_client_without_its_token(tmp_path, no_cluster):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["PYTHONPATH"] = REPO
    server = subprocess.Popen([sys.executable, "-c", EMBEDDED], cwd=REPO, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        address, token = server.stdout.readline().split()
        assert len(token) == 64
        for auth, joins in (({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}, True),
                            ({"RAY_AUTH_MODE": "disabled"}, False),
                            ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "0" * 64}, False)):
            probe = subprocess.run([sys.executable, "-c", PROBE, address], env={**env, **auth}, capture_output=True,
                                   text=True, timeout=120)
            assert (probe.returncode == 0 and "joined" in probe.stdout) == joins, (auth, probe.stderr[-2000:])
    finally:
        server.stdin.close()
        server.wait(timeout=60)
