"""An s3:// round trip and a `dolma tag` run against a real S3 endpoint on loopback (moto's server)."""

from __future__ import annotations

import gzip
import json

import pytest

from dolma_pipeline.cli import main
from dolma_pipeline.io import expand_paths, read_text, write_jsonl
from dolma_pipeline.reader import read_documents
from tests.conftest import make_docs


@pytest.fixture
def s3(s3_client):
    s3_client.create_bucket(Bucket="corpus")
    return s3_client


def test_s3_round_trip_and_glob(s3):
    docs = make_docs("s", 30)
    for ext in ("jsonl", "jsonl.gz", "jsonl.zst"):
        write_jsonl(f"s3://corpus/data/documents/x/part.{ext}", docs)
    paths = expand_paths("s3://corpus/data/documents/**/*.jsonl*")
    assert paths == [f"s3://corpus/data/documents/x/part.{ext}" for ext in ("jsonl", "jsonl.gz", "jsonl.zst")]
    for path in paths:
        assert [d.raw for d in read_documents(path)] == docs
    raw = s3.get_object(Bucket="corpus", Key="data/documents/x/part.jsonl.gz")["Body"].read()
    assert json.loads(gzip.decompress(raw).splitlines()[0]) == docs[0]


def test_tag_reads_and_writes_s3_with_completion_markers(s3, capsys):
    write_jsonl("s3://corpus/root/documents/a.jsonl.gz", make_docs("a", 12))
    args = ["tag", "--documents", "s3://corpus/root/documents/*.gz", "--experiment", "e", "--taggers",
            "char_length_v1", "--debug"]
    assert main(args) == 0
    rows = [json.loads(line) for line in gzip.decompress(
        s3.get_object(Bucket="corpus", Key="root/attributes/e/a.jsonl.gz")["Body"].read()).splitlines()]
    assert [r["id"] for r in rows] == [f"a-{i}" for i in range(12)]
    marker = json.loads(read_text("s3://corpus/root/attributes/e/.a.jsonl.gz.done.json"))
    assert marker["stats"]["documents"] == 12
    capsys.readouterr()
    assert main(args) == 0
    assert "1 already done" in capsys.readouterr().out
