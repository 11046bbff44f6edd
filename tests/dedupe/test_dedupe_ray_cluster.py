"""`dolma dedupe` on an existing two-node Ray cluster (`ray start --head` + `ray start --address=...`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.conftest import DOLMA, REPO
from tests.dedupe.conftest import read_attributes
from tests.dolma_pipeline.test_ray_cluster import assert_ran_on, two_node_cluster  # noqa: F401  (the fixture)

MINHASH = os.path.join(REPO, "configs", "dedupe", "minhash.yaml")
PARAGRAPHS = os.path.join(REPO, "configs", "dedupe", "paragraphs.yaml")


@pytest.mark.ray
@pytest.mark.slow
def test_minhash_and_paragraphs_on_two_nodes_match_a_serial_run(two_node_cluster, near_dup_corpus, tmp_path):  # noqa: F811
    serial = tmp_path / "serial"
    shutil.copytree(near_dup_corpus / "documents", serial / "documents")
    env = {**os.environ, **two_node_cluster.env}
    for config, name in ((MINHASH, "minhash"), (PARAGRAPHS, "dedupe_para")):
        for root, extra, run_env in ((near_dup_corpus, ["--processes", "2"], env), (serial, ["--debug"], None)):
            proc = subprocess.run([*DOLMA, "-c", config, "dedupe", "--documents", str(root / "documents"), *extra],
                                  cwd=REPO, env=run_env, capture_output=True, text=True, timeout=300)
            assert proc.returncode == 0, proc.stderr[-3000:]
        clustered = read_attributes(near_dup_corpus, name)
        assert clustered and clustered == read_attributes(serial, name)
        with open(near_dup_corpus / "attributes" / name / "dolma_dedupe.summary.json") as fh:
            assert_ran_on(two_node_cluster, json.load(fh)["summary"]["executor"])
