"""`olmo-train` under torchrun on two nodes (two network namespaces, gloo, FSDP2, the tiny preset).

Each node runs `torchrun --nnodes 2 --nproc_per_node 1 --node_rank R --master_addr NODE0` inside its own
namespace with a private /tmp; token files, config and `save_folder` are in a shared directory (the
cluster's shared filesystem, which multi-node checkpoints need). The losses must equal those of a
one-node two-process run bit for bit. Then node 1 is SIGKILLed right after the first checkpoint is
written, the job is restarted on both nodes, resumes from the last checkpoint and ends with the same
losses as the uninterrupted run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.distributed.netns import descendants, free_port, kill_all
from tests.training.train_helpers import byte_tokens, docstrings, small_config, write_tokens
from training.checkpoint import step_dirs
from training.config import save_config

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

STEPS, SAVE_EVERY = 24, 8
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


@pytest.fixture(scope="module")
def tokens(shared_dir) -> Path:
    texts = docstrings()
    train = byte_tokens(texts)
    half = len(train) // 2
    root = shared_dir / "tokens"
    write_tokens(root / "train" / "part-0-00000.npy", train[:half])
    write_tokens(root / "train" / "part-0-00001.npy", train[half:])
    return root


def config(tokens: Path, folder: Path) -> Path:
    cfg = small_config(tokens, folder, trainer={"max_steps": STEPS, "micro_batch_size": 2, "precision": "bf16",
                                                "log_interval": 1, "eval_interval": 0},
                       optim={"z_loss": 1e-4}, parallel={"fsdp": "auto"},
                       checkpoint={"save_interval": SAVE_EVERY, "keep_last": 0})
    cfg.data.eval = []
    path = folder.parent / f"{folder.name}.yaml"
    save_config(cfg, path)
    return path


def records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line.strip()]


def losses(folder: Path) -> dict[int, float]:
    """Loss per step; a step logged twice (before a kill and after the restart) keeps its last record."""
    return {r["step"]: r["loss"] for r in records(folder) if "loss" in r}


def node_env(fabric) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MASTER_", "RANK", "WORLD_SIZE", "LOCAL_"))}
    return {**base, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1",
            "GLOO_SOCKET_IFNAME": "eth0" if fabric.isolated else "lo"}


def start_nodes(fabric, cfg: Path, port: int, log_dir: Path) -> list[subprocess.Popen]:
    port = port if fabric.isolated else free_port()  # on loopback the ports are this machine's
    procs = []
    for rank in (0, 1):
        argv = [*TORCHRUN, "--nnodes", "2", "--nproc_per_node", "1", "--node_rank", str(rank),
                "--master_addr", fabric.addresses[0], "--master_port", str(port), "-m", "training.cli", str(cfg)]
        log = open(log_dir / f"{cfg.stem}-node{rank}-{time.time_ns()}.log", "wb")
        procs.append(subprocess.Popen(fabric.wrap(rank, argv), cwd=REPO, env=node_env(fabric), stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
        log.close()
    return procs


def wait_all(procs: list[subprocess.Popen], timeout: float) -> list[int]:
    deadline = time.time() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(1.0, deadline - time.time()))
        except subprocess.TimeoutExpired:
            pass
    return [proc.poll() for proc in procs]


def logs(log_dir: Path, stem: str) -> str:
    return "\n".join(p.read_text(errors="replace")[-2500:] for p in sorted(log_dir.glob(f"{stem}-node*.log")))


@pytest.fixture(scope="module")
def reference(tokens, shared_dir) -> dict[int, float]:
    """One node, two processes (torchrun --standalone): the losses to match."""
    cfg = config(tokens, shared_dir / "one-node")
    env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([*TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "training.cli", str(cfg)],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = losses(shared_dir / "one-node")
    assert sorted(out) == list(range(1, STEPS + 1)) and out[STEPS] < out[1]
    return out


def test_two_nodes_match_one_node_two_processes(fabric, tokens, reference, shared_dir):
    logs_dir = shared_dir / "train-logs"
    logs_dir.mkdir(exist_ok=True)
    cfg = config(tokens, shared_dir / "two-nodes")
    started = time.perf_counter()
    procs = start_nodes(fabric, cfg, 29500, logs_dir)
    try:
        codes = wait_all(procs, 600)
    finally:
        for proc in procs:
            _kill_node_of(fabric, procs.index(proc), proc)
    assert codes == [0, 0], logs(logs_dir, cfg.stem)
    print(f"\ntwo-node run: {time.perf_counter() - started:.1f}s ({fabric.notes or 'namespaces'})")
    assert losses(shared_dir / "two-nodes") == reference
    ckpt = step_dirs(shared_dir / "two-nodes")[-1][1]
    assert json.loads((ckpt / "train_state.json").read_text())["world_size"] == 2


def test_node_killed_then_job_restarted_resumes_with_same_losses(fabric, tokens, reference, shared_dir):
    logs_dir = shared_dir / "train-logs"
    logs_dir.mkdir(exist_ok=True)
    folder = shared_dir / "killed"
    cfg = config(tokens, folder)
    procs = start_nodes(fabric, cfg, 29501, logs_dir)
    try:
        # progress: the first checkpoint is complete (renamed into place); then node 1 dies at once
        deadline = time.time() + 600
        while not step_dirs(folder) and time.time() < deadline and all(p.poll() is None for p in procs):
            time.sleep(0.01)
        assert step_dirs(folder), "no checkpoint was written before the run ended: " + logs(logs_dir, cfg.stem)
        killed = _kill_node_of(fabric, 1, procs[1])
        assert killed
        # node 0 loses its peer: its rank fails and torchrun exits non-zero (or we stop it, as an operator would)
        code0 = wait_all(procs[:1], 120)[0]
    finally:
        for i, proc in enumerate(procs):
            _kill_node_of(fabric, i, proc)
    before = losses(folder)
    logged_before = len(records(folder))
    assert max(before) < STEPS, "the run finished before the node was killed"
    assert code0 != 0
    last = step_dirs(folder)[-1][0]
    assert last < STEPS

    procs = start_nodes(fabric, cfg, 29502, logs_dir)
    try:
        codes = wait_all(procs, 600)
    finally:
        for i, proc in enumerate(procs):
            _kill_node_of(fabric, i, proc)
    assert codes == [0, 0], logs(logs_dir, cfg.stem)
    restarted = [r["step"] for r in records(folder)[logged_before:]]
    assert restarted == list(range(last + 1, STEPS + 1))  # resumed from the checkpoint, not from step 1
    assert losses(folder) == reference  # and repeats the uninterrupted run's losses exactly
    print(f"\nkilled node 1 after step {max(before)} (checkpoint {last}); resumed from step {last}")


def _kill_node_of(fabric, node: int, proc: subprocess.Popen) -> list[int]:
    """SIGKILL every process of a node (its namespace, or its process tree on loopback)."""
    pids = fabric.pids(node) if fabric.isolated else (descendants(proc.pid) if proc.poll() is None else [])
    kill_all(pids)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    return pids
