"""tag → MinHash dedupe → mix → tokenize on a three-node Ray cluster, data on S3, against a local run.

Three `ray start` nodes, each in a network namespace of its own with a private /tmp (tests/distributed/
netns.py): the head (no CPUs: it holds the GCS and the driver, as on a real cluster) and two workers.
Documents, attributes, dedupe work files, mixed shards and token files live on moto's S3 server on the
host side of the test's bridge; tokenize's intermediate files go to a shared directory (the cluster's
shared filesystem). The chain runs through RAY_ADDRESS from inside the head's namespaces and must write
the same bytes as the same commands run locally; then again with one worker node SIGKILLed while it is
running a shard of the MinHash stage: the commands still exit 0 and the bytes are the same.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time

import pytest

from dolma_pipeline.dedupe.synthetic import generate, write_corpus
from tests.conftest import REPO
from tests.distributed.conftest import aws_env
from tests.distributed.netns import RayNodes, TaskSampler

pytestmark = [pytest.mark.slow, pytest.mark.distributed, pytest.mark.ray]

BUCKET = "multinode"
ROOT = f"s3://{BUCKET}/corpus"
DOCUMENTS = f"{ROOT}/documents/*.jsonl.gz"
MIXED = f"s3://{BUCKET}/mixed"
TOKENS = f"s3://{BUCKET}/tokens"
MINHASH = os.path.join(REPO, "configs", "dedupe", "minhash.yaml")
DOLMA = [sys.executable, "-m", "dolma_pipeline.cli"]

MIX_YAML = f"""
processes: 2
streams:
  - name: mixed
    documents: ["{DOCUMENTS}"]
    attributes: [exp, minhash]
    dedupe: [minhash__minhash_v1__duplicate]
    rules:
      - {{attribute: exp__whitespace_tokenizer_v1__length, op: lt, value: 60, name: short}}
      - {{attribute: exp__random_number_v1__random, op: ge, value: 0.9, name: held out}}
    output: {{path: "{MIXED}", max_size_in_bytes: 12000, discard_fields: [attributes]}}
"""


def stages(mix_yaml: str, work_dir: str | None, executor: list[str]) -> list[tuple[str, list[str]]]:
    tokenize = ["tokenize", "--documents", f"{MIXED}/*.jsonl.gz", "--destination", TOKENS, "--processes", "2",
                "--max_size", "30000", *executor]
    if work_dir:
        tokenize += ["--work_dir", work_dir]
    return [
        ("tag", ["tag", "--documents", DOCUMENTS, "--experiment", "exp", "--processes", "2", *executor,
                 "--taggers", "char_length_v1", "whitespace_tokenizer_v1", "random_number_v1"]),
        ("dedupe", ["-c", MINHASH, "dedupe", "--documents", DOCUMENTS, "--processes", "2", "--partitions", "2",
                    *executor]),
        ("mix", ["-c", mix_yaml, "mix", *executor]),
        ("tokenize", tokenize),
    ]


def objects(client) -> dict[str, bytes]:
    """Every data object the chain wrote (not the input documents, markers, work files or run records)."""
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            name = key.rsplit("/", 1)[-1]
            if key.startswith("corpus/documents/") or "/dedupe_work/" in key or "/." in key \
                    or name.startswith(".") or name.startswith("dolma_"):
                continue
            out[key] = client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return out


def reset(client) -> None:
    """Remove everything but the input documents, so the next chain starts from scratch."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            if not obj["Key"].startswith("corpus/documents/"):
                client.delete_object(Bucket=BUCKET, Key=obj["Key"])


def markers(client, prefix: str) -> int:
    listing = client.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return sum(1 for o in listing if o["Key"].endswith(".done.json"))


@pytest.fixture(scope="module")
def corpus(s3_server, tmp_path_factory):
    """A labelled near-duplicate corpus (120 documents, six files) uploaded to the S3 server."""
    _, client = s3_server
    client.create_bucket(Bucket=BUCKET)
    root = tmp_path_factory.mktemp("corpus")
    docs = generate(num_clusters=40, variants=3, min_words=40, max_words=160, vocab_size=3000, seed=23)
    for path in write_corpus(str(root), docs, files=6):
        with open(path, "rb") as fh:
            client.put_object(Bucket=BUCKET, Key=f"corpus/documents/{os.path.basename(path)}", Body=fh.read())
    return len(docs)


@pytest.fixture(scope="module")
def env(s3_server):
    endpoint, _ = s3_server
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AWS_"))}
    return {**base, **aws_env(endpoint), "PYTHONPATH": REPO, "DOLMA_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1",
            # token authentication, as a shared cluster should run: nodes and drivers hold the same token
            "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32), "RAY_USAGE_STATS_ENABLED": "0",
            # a dead node is noticed in ~10 s instead of ~30 s (the defaults suit real networks)
            "RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "5000",
            "RAY_health_check_failure_threshold": "5"}


@pytest.fixture(scope="module")
def mix_yaml(shared_dir):
    path = shared_dir / "mix.yaml"
    path.write_text(MIX_YAML)
    return str(path)


@pytest.fixture(scope="module")
def local_bytes(corpus, s3_server, env, mix_yaml):
    """The chain run on this machine (forked processes, no Ray), from and to the same S3 paths."""
    _, client = s3_server
    reset(client)
    for name, argv in stages(mix_yaml, None, ["--executor", "local"]):
        proc = __import__("subprocess").run([*DOLMA, *argv], cwd=REPO, env=env, capture_output=True, text=True,
                                            timeout=600)
        assert proc.returncode == 0, f"local {name}: {proc.stderr[-3000:]}"
    out = objects(client)
    reset(client)
    assert any(k.startswith("corpus/attributes/exp/") for k in out)
    assert any(k.startswith("corpus/attributes/minhash/") for k in out)
    assert sum(k.startswith("mixed/") for k in out) > 1 and sum(k.endswith(".npy") for k in out) > 1
    return out


@pytest.fixture(scope="module")
def cluster(fabric, env, shared_dir):
    nodes = RayNodes(fabric, num_cpus=[0, 1, 1], env=env, log_dir=shared_dir / "logs")
    try:
        started = time.perf_counter()
        nodes.start()
        print(f"\n3-node cluster up in {time.perf_counter() - started:.1f}s ({fabric.notes or 'namespaces'})")
        yield nodes
    finally:
        nodes.close()


def run_on_cluster(cluster, argv, env, during=None):
    """One command as a driver on the head node; `during(proc)` is polled while it runs."""
    import subprocess

    proc = subprocess.Popen(cluster.driver([*DOLMA, *argv]), cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if during is not None:
        during(proc)
    stdout, stderr = proc.communicate(timeout=600)
    return proc.returncode, stdout, stderr


def test_chain_on_three_nodes_matches_local_run(cluster, local_bytes, s3_server, env, mix_yaml, shared_dir):
    _, client = s3_server
    timings = {}
    with TaskSampler(cluster) as sampler:  # which nodes are seen executing tasks
        for name, argv in stages(mix_yaml, str(shared_dir / "tokenize-work"), []):
            if name == "tokenize":  # the default work dir (this machine's cache) is refused on a cluster
                rc, _, stderr = run_on_cluster(cluster, stages(mix_yaml, None, [])[-1][1], env)
                assert rc != 0 and "needs --work_dir on a filesystem every node mounts" in stderr, stderr[-3000:]
                assert not any(k.startswith("tokens/") for k in objects(client))
            started = time.perf_counter()
            rc, _, stderr = run_on_cluster(cluster, argv, env)
            timings[name] = round(time.perf_counter() - started, 1)
            assert rc == 0, f"{name} on the cluster: {stderr[-4000:]}"
    print(f"cluster chain seconds: {timings}; nodes seen running tasks (samples): {sampler.seen}")
    assert set(sampler.seen) == {1, 2}  # both worker nodes ran shards; the head (0 CPUs) none
    # and the summaries say so: the Ray node ids that ran tag's and tokenize's shards are the two workers'
    ip_of = {n["id"]: n["ip"] for n in cluster.alive_nodes()}
    tag = json.loads(client.get_object(Bucket=BUCKET, Key="corpus/attributes/exp/dolma_tag.summary.json")["Body"].read())
    tokens = json.loads(client.get_object(Bucket=BUCKET, Key="tokens/dolma_tokenize.summary.json")["Body"].read())
    for ran in (tag["summary"]["executor"]["nodes"], tokens["executor"]["nodes"]):
        assert {ip_of.get(node) for node in ran} == set(cluster.fabric.addresses[1:]), (ran, ip_of)
    assert objects(client) == local_bytes


def test_chain_survives_a_worker_node_killed_mid_stage(cluster, local_bytes, s3_server, env, mix_yaml, shared_dir):
    """SIGKILL node 1 (raylet, workers, agents) while it runs a MinHash shard; the chain finishes unchanged."""
    _, client = s3_server
    reset(client)
    victim, survivor = 1, 2
    killed: dict = {}

    def kill_when_busy(proc) -> None:
        # progress = the dedupe stage has finished shards; then wait for the victim to be inside a shard
        progressed = False
        while proc.poll() is None:
            progressed = progressed or markers(client, "corpus/dedupe_work/") > 0
            if progressed and cluster.tasks(victim):
                killed["tasks"] = cluster.tasks(victim)
                killed["pids"] = cluster.kill(victim)
                killed["markers"] = markers(client, "corpus/dedupe_work/")
                return
            time.sleep(0.01)

    timings = {}
    for name, argv in stages(mix_yaml, str(shared_dir / "tokenize-work-2"), []):
        started = time.perf_counter()
        with TaskSampler(cluster) as sampler:
            rc, _, stderr = run_on_cluster(cluster, argv, env, during=kill_when_busy if name == "dedupe" else None)
        timings[name] = round(time.perf_counter() - started, 1)
        assert rc == 0, f"{name} on the cluster: {stderr[-4000:]}"
        if name == "dedupe":
            assert killed, "the worker node was never caught inside a shard of the MinHash stage"
        elif name in ("mix", "tokenize"):  # after the kill only the survivor runs shards
            assert set(sampler.seen) == {survivor}, sampler.seen
    print(f"chain with node {victim} killed ({len(killed['pids'])} processes, in {killed['tasks']}, after "
          f"{killed['markers']} dedupe shards): seconds {timings}")
    assert not cluster.node_pids(victim)
    alive = {n["ip"] for n in cluster.alive_nodes()}  # (a head on 127.0.0.1 reports the machine's address)
    assert len(alive) == 2 and cluster.fabric.addresses[survivor] in alive
    assert cluster.fabric.addresses[victim] not in alive
    assert objects(client) == local_bytes
