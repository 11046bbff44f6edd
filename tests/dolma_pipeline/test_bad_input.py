"""Every kind of bad input under every error policy: a clear error, or a skip that the summary counts."""

from __future__ import annotations

import json
import os

import pytest
import zstandard

from dolma_pipeline.cli import main
from dolma_pipeline.io import write_jsonl
from tests.conftest import make_docs

GOOD = b'{"id": "g1", "text": "fine"}\n'


def _truncated_gz(path):
    write_jsonl(str(path), make_docs("t", 400))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _truncated_zst(path):
    text = b"".join(json.dumps(d).encode() + b"\n" for d in make_docs("t", 400))
    data = zstandard.ZstdCompressor().compress(text)
    path.write_bytes(data[: len(data) // 2])


# name: (file name, writer, expected message, line-level?)
CASES = {
    "malformed_json": ("bad.jsonl", lambda p: p.write_bytes(GOOD + b'{"id": "x", "text": \n'), "bad.jsonl:2: malformed JSON", True),
    "non_string_id": ("bad.jsonl", lambda p: p.write_bytes(GOOD + b'{"id": 7, "text": "t"}\n'), "bad.jsonl:2: `id` must be a string", True),
    "missing_text": ("bad.jsonl", lambda p: p.write_bytes(GOOD + b'{"id": "m"}\n'), "bad.jsonl:2: `text` is missing or null", True),
    "null_text": ("bad.jsonl", lambda p: p.write_bytes(GOOD + b'{"id": "m", "text": null}\n'), "bad.jsonl:2: `text` is missing or null", True),
    "invalid_utf8": ("bad.jsonl", lambda p: p.write_bytes(GOOD + b'{"id": "u", "text": "\xff"}\n'), "bad.jsonl:2: invalid UTF-8", True),
    "truncated_gz": ("bad.jsonl.gz", _truncated_gz, "bad.jsonl.gz: truncated gzip", False),
    "truncated_zst": ("bad.jsonl.zst", _truncated_zst, "bad.jsonl.zst: truncated zstd", False),
    "empty_file": ("bad.jsonl", lambda p: p.write_bytes(b""), "bad.jsonl: empty file", False),
}


def _run(root, policy, capsys, *extra):
    code = main(["tag", "--documents", f"{root}/documents/*", "--experiment", "e", "--taggers", "char_length_v1",
                 "--debug", "--on_error", policy, *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("policy", ["fail", "skip_line", "skip_file"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(tmp_path, capsys, case, policy):
    name, writer, message, line_level = CASES[case]
    docs_dir = tmp_path / "documents"
    docs_dir.mkdir()
    write_jsonl(str(docs_dir / "good.jsonl"), make_docs("ok", 5))
    writer(docs_dir / name)
    code, output = _run(tmp_path, policy, capsys)
    attrs = tmp_path / "attributes" / "e"
    assert (attrs / "good.jsonl").exists() or policy == "fail"
    if policy == "fail":
        assert code == 1
        assert message in output
        assert not (attrs / name).exists()
        return
    assert code == 0, output
    summary = json.loads((attrs / "dolma_tag.summary.json").read_text())["summary"]
    assert message in " ".join(summary["errors"])
    if policy == "skip_line" and line_level:
        assert summary["lines_skipped"] == 1
        rows = [json.loads(line) for line in (attrs / name).read_text().splitlines()]
        assert [r["id"] for r in rows] == ["g1"]  # the good line of the same file is kept
    else:
        assert summary["files_skipped"] == 1
        assert not (attrs / name).exists()
        assert not (attrs / f".{name}.done.json").exists()  # a rerun will try it again
    assert summary["documents"] == 5 + (1 if policy == "skip_line" and line_level else 0)


@pytest.mark.parametrize("policy", ["fail", "skip_line", "skip_file"])
def test_nothing_matches_is_always_an_error(tmp_path, capsys, policy):
    (tmp_path / "documents").mkdir()
    code, output = _run(tmp_path, policy, capsys)
    assert code == 1
    assert "no files match" in output
    code = main(["tag", "--documents", str(tmp_path / "documents"), "--taggers", "char_length_v1", "--debug",
                 "--on_error", policy])
    assert code == 1


def test_empty_line_in_the_middle_is_an_error(tmp_path, capsys):
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "x.jsonl").write_bytes(GOOD + b"\n" + GOOD + b"\n")
    code, output = _run(tmp_path, "fail", capsys)
    assert code == 1 and "x.jsonl:2: empty line" in output
    assert os.path.exists(tmp_path / "documents" / "x.jsonl")
