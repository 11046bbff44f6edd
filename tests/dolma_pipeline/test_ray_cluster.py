"""`dolma tag` joins an existing Ray cluster (a head plus a second node) through RAY_ADDRESS."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

import pytest

from tests.conftest import DOLMA, REPO, read_tree

RAY = os.path.join(os.path.dirname(__import__("sys").executable), "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_node_cluster(tmp_path):
    """`ray start --head` and `ray start --address=...` on this machine, stopped by process group."""
    if not os.path.exists(RAY):
        pytest.skip("ray CLI not installed")
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    temp = f"/tmp/rt{port}"
    procs = [subprocess.Popen([RAY, "start", "--head", "--port", str(port), "--num-cpus", "1", "--block",
                               "--include-dashboard=false", f"--temp-dir={temp}", "--node-ip-address=127.0.0.1"],
                              env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    address = f"127.0.0.1:{port}"
    try:
        time.sleep(8)
        procs.append(subprocess.Popen([RAY, "start", f"--address={address}", "--num-cpus", "1", "--block",
                                       "--node-ip-address=127.0.0.1"], env=env, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_for_nodes(address, 2, env)
        yield address
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


def _wait_for_nodes(address: str, count: int, env: dict) -> None:
    probe = (f"import ray; ray.init(address='{address}', logging_level='ERROR'); "
             "print(sum(1 for n in ray.nodes() if n['Alive']))")
    deadline = time.time() + 90
    while time.time() < deadline:
        out = subprocess.run([os.sys.executable, "-c", probe], env=env, capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(2)
    raise RuntimeError(f"Ray cluster at {address} did not reach {count} nodes")


@pytest.mark.ray
@pytest.mark.slow
def test_tag_on_existing_two_node_cluster(two_node_cluster, corpus, tmp_path):
    local = tmp_path / "local"
    shutil.copytree(corpus / "documents", local / "documents")
    args = ["--experiment", "exp", "--taggers", "char_length_v1", "whitespace_tokenizer_v1", "--processes", "2"]
    env = {**os.environ, "RAY_ADDRESS": two_node_cluster, "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run([*DOLMA, "tag", "--documents", f"{corpus}/documents/**/*", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "4 processed" in proc.stdout
    debug = subprocess.run([*DOLMA, "tag", "--documents", f"{local}/documents/**/*", *args, "--debug"], cwd=REPO,
                           capture_output=True, text=True)
    assert debug.returncode == 0, debug.stderr
    assert read_tree(corpus / "attributes") == read_tree(local / "attributes")
