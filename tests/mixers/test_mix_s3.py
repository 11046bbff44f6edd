"""`dolma mix` with documents, attributes and output on S3 (moto's server on loopback)."""

from __future__ import annotations

import os

from dolma_pipeline.config import from_dict
from dolma_pipeline.io import expand_paths, iter_raw_lines
from mixers import command
from mixers.config import MixConfig
from tests.mixers.conftest import stream_config


def upload_tree(s3, local_root, bucket: str, prefix: str) -> None:
    for dirpath, _, files in os.walk(local_root):
        for name in files:
            path = os.path.join(dirpath, name)
            key = f"{prefix}/{os.path.relpath(path, local_root)}"
            with open(path, "rb") as fh:
                s3.put_object(Bucket=bucket, Key=key, Body=fh.read())


def output_objects(s3, bucket: str, prefix: str) -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])
    return {o["Key"][len(prefix) + 1:]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
            for o in listing if "/" not in o["Key"][len(prefix) + 1:] and not o["Key"].rsplit("/", 1)[1].startswith(".")}


def test_mix_from_s3_to_s3_equals_the_local_run(mix_corpus, tmp_path, s3_client):
    root, _ = mix_corpus
    s3_client.create_bucket(Bucket="mix")
    upload_tree(s3_client, root, "mix", "corpus")
    sized = {"max_size_in_bytes": 700, "discard_fields": ["attributes"]}

    local_out = tmp_path / "local"
    local = stream_config(root, local_out, output={"path": str(local_out), **sized})
    assert command.run(from_dict(MixConfig, {"streams": [local], "debug": True})) == 0

    remote = stream_config(root, "unused", output={"path": "s3://mix/out", **sized})
    remote["documents"] = ["s3://mix/corpus/documents/*.jsonl.gz"]
    assert command.run(from_dict(MixConfig, {"streams": [remote], "debug": True})) == 0

    expected = {n: open(local_out / n, "rb").read() for n in sorted(os.listdir(local_out)) if not n.startswith(".")}
    got = output_objects(s3_client, "mix", "out")
    assert len(expected) > 1  # several sized shards
    assert got == expected
    # no temporary or work files are left visible beside the shards
    assert all(not p.rsplit("/", 1)[1].startswith(".") for p in expand_paths("s3://mix/out/*.jsonl.gz"))
    assert sum(1 for _ in iter_raw_lines("s3://mix/out/mixed-0000.jsonl.gz")) > 0
    # a rerun finds the stream finished and leaves the objects as they were
    assert command.run(from_dict(MixConfig, {"streams": [remote], "debug": True})) == 0
    assert output_objects(s3_client, "mix", "out") == expected
