"""`dolma tag` joins an existing Ray cluster (a head plus a second node, token auth on) through RAY_ADDRESS."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

import pytest

from tests.conftest import DOLMA, REPO, read_tree

RAY = os.path.join(os.path.dirname(__import__("sys").executable), "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    address: str
    node_ids: set[str]
    env: dict[str, str]  # what a command needs to join it: RAY_ADDRESS and the cluster's token


@pytest.fixture
def two_node_cluster(tmp_path):
    """`ray start --head` and `ray start --address=...` on this machine with token auth, stopped by process
    group."""
    if not os.path.exists(RAY):
        pytest.skip("ray CLI not installed")
    port = _free_port()
    token = secrets.token_hex(32)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token,
           # a loaded 2-core machine can take over 30 s (Ray's default) to start a node's agent
           "RAY_agent_register_timeout_ms": "180000", "RAY_raylet_start_wait_time_s": "180"}
    env.pop("RAY_ADDRESS", None)
    temp = f"/tmp/rt{port}"
    procs = [subprocess.Popen([RAY, "start", "--head", "--port", str(port), "--num-cpus", "1", "--block",
                               "--include-dashboard=false", f"--temp-dir={temp}", "--node-ip-address=127.0.0.1"],
                              env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    address = f"127.0.0.1:{port}"
    try:
        time.sleep(8)

        def start_second_node() -> subprocess.Popen:
            procs.append(subprocess.Popen([RAY, "start", f"--address={address}", "--num-cpus", "1", "--block",
                                           "--node-ip-address=127.0.0.1"], env=env, start_new_session=True,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            return procs[-1]

        node_ids = _wait_for_nodes(address, 2, env, start_second_node)
        yield Cluster(address, node_ids, {"RAY_ADDRESS": address, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
    finally:
        for proc in reversed(procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def _wait_for_nodes(address: str, count: int, env: dict, start_node) -> set[str]:
    """The ids of the cluster's live nodes, once there are `count` of them; a node whose start-up failed
    (a loaded machine) is started again, up to three times."""
    probe = (f"import ray; ray.init(address='{address}', logging_level='ERROR'); "
             "print(' '.join(n['NodeID'] for n in ray.nodes() if n['Alive']))")
    deadline, node, starts = time.time() + 300, start_node(), 1
    while time.time() < deadline:
        if node.poll() is not None and starts < 3:
            node, starts = start_node(), starts + 1
        out = subprocess.run([os.sys.executable, "-c", probe], env=env, capture_output=True, text=True)
        ids = out.stdout.strip().splitlines()[-1:]
        if out.returncode == 0 and ids and len(ids[0].split()) == count:
            return set(ids[0].split())
        time.sleep(2)
    raise RuntimeError(f"Ray cluster at {address} did not reach {count} nodes")


def assert_ran_on(cluster: Cluster, executor: dict) -> None:
    """The command joined this cluster (not an embedded one: its node ids are the cluster's) and ran tasks
    on both of its nodes."""
    assert executor["kind"] == "ray" and cluster.address in executor["reason"], executor
    assert executor["session"].endswith(":" + cluster.address.rsplit(":", 1)[1]), executor
    assert set(executor["nodes"]) == cluster.node_ids, (executor["nodes"], cluster.node_ids)


# Each worker holds its first file until a second worker has started one (or 120 s pass): with one CPU per
# node, the second task cannot run on the node busy with the first, so both nodes must run tasks (tiny
# tasks would otherwise all go to the first worker leased, which Ray reuses). Its settings are written into
# the plugin: workers on a joined cluster get the nodes' environment, not the command's.
RENDEZVOUS = '''
import os, time
from dolma_pipeline.documents import Span
from dolma_pipeline.tagger import TAGGERS, Tagger

@TAGGERS.register("rendezvous_v1")
class Rendezvous(Tagger):
    """Length; the first document of a process waits for COUNT processes to have started one."""
    waited = False
    def predict(self, doc):
        if not Rendezvous.waited:
            Rendezvous.waited = True
            open(os.path.join(FOLDER, str(os.getpid())), "w").close()
            deadline = time.time() + 120
            while len(os.listdir(FOLDER)) < COUNT and time.time() < deadline:
                time.sleep(0.1)
        return [Span(0, len(doc.text), "length", float(len(doc.text)))]
'''


@pytest.mark.ray
@pytest.mark.slow
def test_tag_on_existing_two_node_cluster(two_node_cluster, corpus, tmp_path):
    local = tmp_path / "local"
    shutil.copytree(corpus / "documents", local / "documents")
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    for count in (1, 2):
        (tmp_path / f"rendezvous{count}.py").write_text(f"FOLDER, COUNT = {str(meeting)!r}, {count}\n" + RENDEZVOUS)
    args = ["--experiment", "exp", "--taggers", "char_length_v1", "rendezvous_v1", "--processes", "2",
            "--tagger_modules"]
    env = {**os.environ, **two_node_cluster.env}
    proc = subprocess.run([*DOLMA, "tag", "--documents", f"{corpus}/documents/**/*", *args,
                           str(tmp_path / "rendezvous2.py")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "4 processed" in proc.stdout
    with open(corpus / "attributes" / "exp" / "dolma_tag.summary.json") as fh:
        assert_ran_on(two_node_cluster, json.load(fh)["summary"]["executor"])
    debug = subprocess.run([*DOLMA, "tag", "--documents", f"{local}/documents/**/*", *args,
                            str(tmp_path / "rendezvous1.py"), "--debug"], cwd=REPO, capture_output=True, text=True)
    assert debug.returncode == 0, debug.stderr
    assert read_tree(corpus / "attributes") == read_tree(local / "attributes")
