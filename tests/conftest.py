"""Shared fixtures: small Dolma corpora written with the project's own writer."""

from __future__ import annotations

import os
import sys

import pytest

os.environ.setdefault("DOLMA_NO_PROGRESS", "1")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOLMA = [sys.executable, "-m", "dolma_pipeline.cli"]

SENTENCES = [
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Language models are trained on large collections of documents.",
    "Contact the maintainers at maintainers@example.org for help.",
    "Über den Wolken muss die Freiheit wohl grenzenlos sein.",
    "東京は日本の首都です。",
    "Data curation decides what a model will learn from its corpus.",
]


def make_docs(prefix: str, n: int) -> list[dict]:
    return [
        {"id": f"{prefix}-{i}", "text": " ".join(SENTENCES[(i + k) % len(SENTENCES)] for k in range(1 + i % 4)),
         "source": "fixture", "added": "2026-01-01T00:00:00Z", "created": "2026-01-01T00:00:00Z",
         "metadata": {"n": i}}
        for i in range(n)
    ]


@pytest.fixture
def corpus(tmp_path):
    """A corpus of four files in three formats, two directory levels."""
    from dolma_pipeline.io import write_jsonl

    root = tmp_path / "corpus"
    write_jsonl(str(root / "documents" / "a.jsonl.gz"), make_docs("a", 40))
    write_jsonl(str(root / "documents" / "b.jsonl.zst"), make_docs("b", 30))
    write_jsonl(str(root / "documents" / "sub" / "c.jsonl"), make_docs("c", 25))
    write_jsonl(str(root / "documents" / "sub" / "deeper" / "d.jsonl.gz"), make_docs("d", 10))
    return root


@pytest.fixture
def s3_client(monkeypatch):
    """A real S3 endpoint on loopback (moto's server), with the AWS environment pointed at it."""
    moto_server = pytest.importorskip("moto.server")
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    yield boto3.client("s3", endpoint_url=endpoint)
    import urllib.request

    # moto keeps its buckets in this process across servers: empty them for the next test
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
    server.stop()


def read_tree(root) -> dict[str, bytes]:
    """Every file below `root` (hidden markers and run records excluded) with its bytes."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.startswith(".") or name.startswith("dolma_tag."):
                continue
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = fh.read()
    return out
