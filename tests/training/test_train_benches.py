"""The benchmark scripts run (CPU smoke versions; the GPU run is bench/gpu_bench.py on a CUDA box)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from train_helpers import REPO


def test_gpu_bench_cpu_smoke_runs_every_part(tmp_path) -> None:
    env = {**os.environ, "OUT": str(tmp_path)}
    r = subprocess.run([sys.executable, "bench/gpu_bench.py", "--cpu-smoke", "--no-compile"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary == json.loads((tmp_path / "gpu_bench.json").read_text())
    assert summary["parts_ok"] == {"a_invariants": True, "b_throughput_eager": True, "c_fsdp": True}
    assert summary["results"]["a_invariants"]["checks"]["olmo_1b_params"]
    assert summary["results"]["c_fsdp"]["fp32"]["max_rel_diff"] <= 1e-4
    assert summary["tokens_per_s"] > 0


@pytest.mark.slow
def test_train_bench_runs_ours_on_a_small_shape(tmp_path) -> None:
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, "bench/train_bench.py", "--d-model", "64", "--layers", "1", "--heads", "2",
                        "--seq", "32", "--batch", "2", "--vocab", "512", "--steps", "2", "--warmup", "1",
                        "--skip-hf", "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["ours"]["tokens_per_s"] > 0 and res["shape"]["vocab_rows"] == 512
