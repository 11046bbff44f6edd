"""`dolma decontaminate` on an existing two-node Ray cluster: every worker memory-maps the one index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import DOLMA, REPO
from tests.decontaminate.conftest import NGRAM_ATTR, base_config
from tests.decontaminate.test_decontaminate import training_docs
from tests.dolma_pipeline.test_ray_cluster import two_node_cluster  # noqa: F401  (the fixture)


@pytest.mark.ray
@pytest.mark.slow
def test_two_nodes_match_a_serial_run(two_node_cluster, eval_set, tmp_path):  # noqa: F811
    from tests.decontaminate.conftest import write_corpus

    docs = training_docs()
    for part in range(4):
        write_corpus(tmp_path / "cluster", docs[part::4], f"part-{part}.jsonl.gz")
    shutil.copytree(tmp_path / "cluster" / "documents", tmp_path / "serial" / "documents")
    outputs = {}
    for name, extra, env in (("cluster", ["--processes", "2"], {**os.environ, **two_node_cluster.env}),
                             ("serial", ["--debug", "true"], None)):
        config = tmp_path / f"{name}.json"
        config.write_text(json.dumps(base_config(str(tmp_path / name / "documents"), eval_set,
                                                 ngrams={"attribute_name": NGRAM_ATTR})))
        proc = subprocess.run([*DOLMA, "-c", str(config), "decontaminate", *extra], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        root = tmp_path / name / "attributes" / "decon"
        outputs[name] = {p: (root / p).read_bytes() for p in sorted(os.listdir(root)) if p.startswith("part-")}
    assert len(outputs["cluster"]) == 4 and outputs["cluster"] == outputs["serial"]
    with open(tmp_path / "cluster" / "attributes" / "decon" / "dolma_decontaminate.summary.json") as fh:
        executor = json.load(fh)["summary"]["executor"]
    # the cluster ran it (with shards this short, Ray may place all of them on one node under load)
    assert executor["kind"] == "ray" and two_node_cluster.address in executor["reason"], executor
    assert set(executor["nodes"]) <= two_node_cluster.node_ids
