"""How a rank that ran collectives with peers leaves: its code, its output, no interpreter finalization.

Two real processes form a gloo group (env:// rendezvous on loopback), run a barrier and leave through
`training.parallel.leave_rank`. The race it avoids (gloo's worker thread freeing the last collective while
the interpreter finalizes, SIGABRT about once in 50-100 runs on a loaded machine) cannot be forced from a
test; what is asserted is the exit it takes instead: the code given, everything printed and logged still
there, and no finalization (an atexit hook never runs). A process that never had peers returns normally.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO
from tests.distributed.netns import free_port

pytestmark = [pytest.mark.distributed]

RANK_SCRIPT = textwrap.dedent("""
    import atexit, logging, sys
    from training.config import ParallelConfig
    from training.parallel import destroy_distributed, init_distributed, leave_rank
    import torch.distributed as dist

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    atexit.register(lambda: print("finalized", flush=True))
    info = init_distributed(ParallelConfig(backend="gloo"), "cpu")
    dist.barrier()
    destroy_distributed()
    logging.getLogger("rank").info("logged by rank %d", info.rank)
    sys.stdout.write(f"printed by rank {info.rank}")  # no newline, no flush: leave_rank flushes it
    sys.exit(leave_rank(int(sys.argv[1])))
""")


def test_rank_with_peers_leaves_with_its_code_and_output_without_finalization() -> None:
    port = str(free_port())
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "PYTHONPATH": REPO, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": port, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}
        procs.append(subprocess.Popen([sys.executable, "-c", RANK_SCRIPT, str(3 + rank)], env=env, cwd=REPO,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for rank, p in enumerate(procs):
        out, err = p.communicate(timeout=180)
        assert p.returncode == 3 + rank, out + err
        assert out == f"printed by rank {rank}", out + err
        assert f"logged by rank {rank}" in err
        assert "finalized" not in out + err


def test_process_without_peers_returns_its_code() -> None:
    script = ("import sys; from training.parallel import destroy_distributed, leave_rank; "
              "destroy_distributed(); print(leave_rank(5)); sys.exit(0)")
    r = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": REPO}, cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (0, "5\n"), r.stderr
