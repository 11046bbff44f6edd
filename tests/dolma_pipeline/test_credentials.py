"""Credentials inside an `s3://KEY:SECRET@bucket/...` URL are used to reach the data and never recorded:
not in configs beside outputs, markers, summaries, reports, lineage, token metadata or error messages."""

from __future__ import annotations

import gzip
import os

import pytest
import yaml

from dolma_pipeline.cli import main
from dolma_pipeline.io import write_jsonl
from dolma_pipeline.lineage import Lineage
from dolma_pipeline.safety import redact, split_credentials, strip_credentials
from tests.conftest import make_docs

KEY_ID = "AKIAEXAMPLEKEYID0001"
SECRET = "wJalrXUtnFEMI/K7MDENG//bPxRfiCYzEXAMPLE+"  # AWS secrets may hold "/" (even "//") and "+"
AUTH = f"{KEY_ID}:{SECRET}@"


def test_strip_and_split():
    url = f"s3://{AUTH}corpus/root/documents/*.gz"
    assert strip_credentials(url) == "s3://corpus/root/documents/*.gz"
    assert split_credentials(url) == ("s3://corpus/root/documents/*.gz", (KEY_ID, SECRET))
    assert strip_credentials(f"error: no files match: {url}, https://u:p@host/x") == \
        "error: no files match: s3://corpus/root/documents/*.gz, https://host/x"
    for untouched in ("s3://bucket/path/user@example.org.jsonl", "s3://bucket/a:b@c", "/local/a@b:c"):
        assert strip_credentials(untouched) == untouched
    assert redact({"paths": [url, ("x", url)], url: 1}) == {"paths": ["s3://corpus/root/documents/*.gz",
                                                                      ("x", "s3://corpus/root/documents/*.gz")],
                                                            "s3://corpus/root/documents/*.gz": 1}


def _all_objects(s3) -> dict[str, bytes]:
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="corpus"):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket="corpus", Key=obj["Key"])["Body"].read()
            out[obj["Key"]] = gzip.decompress(body) if obj["Key"].endswith(".gz") else body
    return out


def _local_files(root) -> dict[str, bytes]:
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            data = open(path, "rb").read()
            out[path] = gzip.decompress(data) if name.endswith(".gz") else data
    return out


def test_no_secret_in_anything_the_tool_writes_or_prints(s3_client, tmp_path, capsys, caplog):
    s3 = s3_client
    s3.create_bucket(Bucket="corpus")
    write_jsonl("s3://corpus/root/documents/a.jsonl.gz", make_docs("a", 12))
    write_jsonl("s3://corpus/root/documents/b.jsonl.gz", make_docs("b", 9))
    docs = f"s3://{AUTH}corpus/root/documents/*.gz"

    assert main(["tag", "--documents", docs, "--experiment", "e", "--taggers", "char_length_v1", "--debug"]) == 0
    mix = tmp_path / "mix.yaml"
    mix.write_text(yaml.safe_dump({
        "streams": [{"name": "long", "documents": [docs], "attributes": ["e"],
                     "rules": [{"attribute": "e__char_length_v1__length", "op": "lt", "value": 100}],
                     "output": {"path": f"s3://{AUTH}corpus/mixed"}}],
        "debug": True, "report": str(tmp_path / "local" / "mix_report.json")}))
    assert main(["-c", str(mix), "mix"]) == 0
    assert main(["tokenize", "--documents", docs, "--destination", str(tmp_path / "local" / "tokens"), "--debug"]) == 0
    Lineage(stage="tag", command="tag", output=str(tmp_path / "local" / "lineage"), config={"documents": [docs]},
            inputs=[f"s3://{AUTH}corpus/root/documents"]).write()
    assert main(["tag", "--documents", docs, "--taggers", "char_length_v1", "--dryrun"]) == 0  # prints paths
    assert main(["-c", str(mix), "mix", "--dryrun"]) == 0
    # an error naming the path: a glob that matches nothing
    assert main(["tag", "--documents", f"s3://{AUTH}corpus/none/*.gz", "--taggers", "char_length_v1"]) == 1

    objects = _all_objects(s3)
    assert any(k.startswith("root/attributes/e/") and "done.json" in k for k in objects)  # markers were written
    assert any(k.startswith("mixed/long-0000") for k in objects)
    local = _local_files(tmp_path / "local")
    assert any(p.endswith(".csv.gz") for p in local) and any(p.endswith("lineage.json") for p in local)
    captured = capsys.readouterr()
    printed = {"stdout": captured.out.encode(), "stderr": captured.err.encode(), "log": caplog.text.encode()}
    assert b"no files match: s3://corpus/none/*.gz" in printed["stderr"]
    for where, data in [*objects.items(), *local.items(), *printed.items()]:
        assert SECRET.encode() not in data and KEY_ID.encode() not in data, f"credentials recorded in {where}"


@pytest.mark.parametrize("bad", [f"s3://{AUTH}corpus/x", f"https://{AUTH}host/x"])
def test_config_written_beside_outputs_is_redacted(bad):
    from dolma_pipeline.config import dump_yaml

    assert SECRET not in dump_yaml({"documents": [bad]})
