"""Evaluation sets and training documents on S3 (moto's server on loopback); attributes written back there."""

from __future__ import annotations

import gzip
import json

from dolma_pipeline.io import write_jsonl
from tests.decontaminate.conftest import ATTR, base_config, eval_docs, run_decon
from tests.decontaminate.test_decontaminate import PLANTED, training_docs


def test_s3_evaluation_set_and_training_documents(s3_client):
    s3_client.create_bucket(Bucket="corpus")
    write_jsonl("s3://corpus/eval/documents/eval.jsonl.gz", eval_docs())
    write_jsonl("s3://corpus/train/documents/part-0000.jsonl.gz", training_docs())
    config = base_config("s3://corpus/train/documents/*.jsonl.gz", "s3://corpus/eval/documents/*.jsonl.gz")
    assert run_decon(["--debug", "true"], config) == 0
    body = s3_client.get_object(Bucket="corpus", Key="train/attributes/decon/part-0000.jsonl.gz")["Body"].read()
    rows = [json.loads(line) for line in gzip.decompress(body).splitlines()]
    assert [r["id"] for r in rows] == [d["id"] for d in training_docs()]
    assert {r["id"] for r in rows if r["attributes"][ATTR]} == {f"plant-{kind}" for kind in PLANTED}
    summary = json.loads(s3_client.get_object(Bucket="corpus", Key="train/attributes/decon/dolma_decontaminate"
                                              ".summary.json")["Body"].read())
    assert summary["summary"]["extra"]["decontamination"]["per_set"]["heldout"]["documents_contaminated"] == 5
