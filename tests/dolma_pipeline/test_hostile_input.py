"""Hostile input is bounded: overlong lines, decompression bombs and deep nesting are data errors.

Each is a clear error naming file, line (and byte offset) under `--on_error fail`, or a counted skip
under `skip_line` that keeps every other document of the run.
"""

from __future__ import annotations

import json
import random
import time

import pytest
import zstandard
from zlib_ng import zlib_ng as zlib

from dolma_pipeline.cli import main
from dolma_pipeline.documents import parse_document
from dolma_pipeline.errors import DataFormatError
from dolma_pipeline.io import iter_lines, iter_raw_lines, open_raw, write_jsonl
from dolma_pipeline.lines import CHUNK, LineTooLong, decompressed_chunks, split_lines
from tests.conftest import make_docs

GOOD = b'{"id": "g1", "text": "fine"}\n'


def _gzip_member(data: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


def _tag(root, policy, capsys, *extra):
    code = main(["tag", "--documents", f"{root}/documents/*", "--experiment", "e", "--taggers", "char_length_v1",
                 "--debug", "--on_error", policy, *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _summary(root):
    return json.loads((root / "attributes" / "e" / "dolma_tag.summary.json").read_text())["summary"]


def _ids(path):
    return [json.loads(line)["id"] for line in iter_raw_lines(str(path))]


def test_split_lines_equals_split_for_any_chunking():
    rng = random.Random(0)
    for _ in range(3000):
        data = bytes(rng.choice(b"ab\n") for _ in range(rng.randint(0, 60)))
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randint(0, 6))))
        chunks = [data[i:j] for i, j in zip([0, *cuts], [*cuts, len(data)]) if data[i:j]]
        bound = rng.choice([3, 5, 1000])
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        expected, offset = [], 0
        for line in lines:
            expected.append(line if len(line) <= bound else LineTooLong(offset, bound))
            offset += len(line) + 1
        assert list(split_lines(chunks, bound)) == expected, (data, chunks, bound)


def test_line_assembly_is_linear():
    """A 32 MB line in 4 KB chunks: copying the pending line per chunk would move ~128 GB."""
    chunk = b"x" * 4096
    started = time.perf_counter()
    lines = list(split_lines([chunk] * 8192 + [b"\nend"], 1 << 30))
    assert [len(line) for line in lines] == [32 << 20, 3]
    assert time.perf_counter() - started < 5  # ~0.05 s linear; minutes if quadratic


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_decompression_output_is_bounded(tmp_path, kind):
    """A bomb (256 MB of zeros from a few hundred KB) comes out in pieces of at most CHUNK bytes."""
    block = b"\0" * (32 << 20)
    if kind == "gz":
        member = _gzip_member(block)
        data = member * 8  # multi-member gzip
    else:
        data = zstandard.ZstdCompressor(level=3).compress(block * 8)
    path = tmp_path / f"bomb.jsonl.{kind}"
    path.write_bytes(data)
    total = 0
    with open_raw(str(path)) as raw:
        for piece in decompressed_chunks(raw, str(path)):
            assert len(piece) <= CHUNK
            total += len(piece)
    assert total == 8 * len(block)


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_bomb_without_newline_stops_at_the_bound(tmp_path, kind):
    block = b"a" * (8 << 20)
    raw = block * 16 + b"\n" + GOOD  # a 128 MB line, then a good document
    data = b"".join([_gzip_member(block)] * 16) + _gzip_member(b"\n" + GOOD) if kind == "gz" \
        else zstandard.ZstdCompressor().compress(raw)
    path = tmp_path / f"bomb.jsonl.{kind}"
    path.write_bytes(data)
    lines = iter_lines(str(path), max_line_bytes=1 << 20)
    assert next(lines) == LineTooLong(0, 1 << 20)  # reported once the bound is passed, not at the newline
    assert list(lines) == [GOOD.rstrip(b"\n")]
    with pytest.raises(DataFormatError, match=r"bomb.jsonl.(gz|zst):1: line longer than max_line_bytes=1048576 "
                                              r"\(it starts at byte 0"):
        list(iter_raw_lines(str(path), max_line_bytes=1 << 20))


@pytest.mark.parametrize("policy", ["fail", "skip_line", "skip_file"])
def test_overlong_line_under_each_policy(tmp_path, capsys, policy):
    docs = tmp_path / "documents"
    write_jsonl(str(docs / "good.jsonl"), make_docs("ok", 5))
    long_doc = json.dumps({"id": "long", "text": "x" * 5000}).encode() + b"\n"
    (docs / "bad.jsonl.gz").write_bytes(_gzip_member(GOOD + long_doc + b'{"id": "g3", "text": "after"}\n'))
    code, output = _tag(tmp_path, policy, capsys, "--max_line_bytes", "1000")
    if policy == "fail":
        assert code == 1
        assert "bad.jsonl.gz:2: line longer than max_line_bytes=1000 (it starts at byte 29 " in output
        return
    assert code == 0, output
    summary = _summary(tmp_path)
    assert "bad.jsonl.gz:2: line longer than max_line_bytes=1000" in " ".join(summary["errors"])
    if policy == "skip_line":
        assert summary["lines_skipped"] == 1
        assert _ids(tmp_path / "attributes" / "e" / "bad.jsonl.gz") == ["g1", "g3"]
    else:
        assert summary["files_skipped"] == 1
    assert _ids(tmp_path / "attributes" / "e" / "good.jsonl") == [f"ok-{i}" for i in range(5)]


def _nested(depth: int, doc_id: str = "deep") -> bytes:
    return (f'{{"id": "{doc_id}", "text": "t", "metadata": {{"x": ' + "[" * depth + "]" * depth + "}}").encode()


@pytest.mark.parametrize("depth", [253, 254, 300, 2000, 100_000])
def test_depth_limit_at_parse_time(depth):
    if depth <= 253:  # the document object, metadata and the lists: depth + 2 levels
        assert parse_document(_nested(depth - 1), "f.jsonl", 7).id == "deep"
        return
    with pytest.raises(DataFormatError, match=r"^f.jsonl:7: JSON nested deeper than 254 levels$"):
        parse_document(_nested(depth), "f.jsonl", 7)


def test_depth_limit_with_lone_surrogates_goes_through_the_same_check():
    line = b'{"id": "s", "text": "\\ud800", "m": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    with pytest.raises(DataFormatError, match="nested deeper than 254"):
        parse_document(line, "f.jsonl", 1)


@pytest.mark.parametrize("policy", ["fail", "skip_line"])
def test_deep_document_in_tag(tmp_path, capsys, policy):
    docs = tmp_path / "documents"
    docs.mkdir()
    (docs / "x.jsonl").write_bytes(GOOD + _nested(300) + b"\n" + _nested(100_000, "deeper") + b"\n" + GOOD)
    code, output = _tag(tmp_path, policy, capsys)
    if policy == "fail":
        assert code == 1 and "x.jsonl:2: JSON nested deeper than 254 levels" in output
        return
    assert code == 0, output
    assert _summary(tmp_path)["lines_skipped"] == 2
    assert _ids(tmp_path / "attributes" / "e" / "x.jsonl") == ["g1", "g1"]


def _overlong_corpus(root):
    docs = root / "documents"
    docs.mkdir(parents=True)
    long_doc = json.dumps({"id": "long", "text": "x " * 3000}).encode() + b"\n"
    (docs / "x.jsonl").write_bytes(GOOD + long_doc + b'{"id": "g3", "text": "after it"}\n')
    return docs


def _mix_yaml(root):
    import yaml

    config = {"streams": [{"name": "s", "documents": [f"{root}/documents/*.jsonl"],
                           "output": {"path": f"{root}/mixed"}}], "debug": True}
    path = root / "mix.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


COMMANDS = {
    "tag": lambda r: ["tag", "--documents", f"{r}/documents/*", "--taggers", "char_length_v1", "--debug"],
    "dedupe_exact": lambda r: ["dedupe", "--documents", f"{r}/documents", "--dedupe.name", "d", "--debug",
                               "--dedupe.paragraphs.attribute_name", "para"],
    "dedupe_minhash": lambda r: ["dedupe", "--documents", f"{r}/documents", "--dedupe.name", "m", "--debug",
                                 "--dedupe.minhash.ngram", "2"],
    "mix": lambda r: ["-c", _mix_yaml(r), "mix"],
    "tokenize": lambda r: ["tokenize", "--documents", f"{r}/documents/*.jsonl", "--destination", f"{r}/tokens",
                           "--debug"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_reading_command_takes_max_line_bytes(tmp_path, capsys, command):
    _overlong_corpus(tmp_path)
    code = main([*COMMANDS[command](tmp_path), "--max_line_bytes", "1000"])
    output = "".join(capsys.readouterr())
    assert code == 1
    assert "x.jsonl:2: line longer than max_line_bytes=1000 (it starts at byte 29 " in output
    assert main([*COMMANDS[command](tmp_path), "--max_line_bytes", "100000"]) == 0


COUNTING = '''
import os
from dolma_pipeline.documents import Span
from dolma_pipeline.tagger import TAGGERS, Tagger

@TAGGERS.register("count_attempts_v1")
class CountAttempts(Tagger):
    """Appends a line to $ATTEMPTS each time it tags document g1 (once per attempt at the file)."""
    def predict(self, doc):
        if doc.id == "g1":
            with open(os.environ["ATTEMPTS"], "a") as fh:
                fh.write("attempt\\n")
        return [Span(0, len(doc.text), "length", 1.0)]
'''


@pytest.mark.ray
def test_a_bomb_on_ray_is_a_data_error_not_retried(tmp_path):
    """Under Ray a crash (an OOM kill) is retried three times; a bomb is a data error, reported once."""
    import os
    import subprocess

    from tests.conftest import DOLMA, REPO

    docs = tmp_path / "documents"
    docs.mkdir()
    (docs / "bomb.jsonl.gz").write_bytes(_gzip_member(GOOD) + _gzip_member(b"a" * (8 << 20)) * 64)  # 512 MB
    write_jsonl(str(docs / "good.jsonl"), make_docs("ok", 5))
    plugin = tmp_path / "counting.py"
    plugin.write_text(COUNTING)
    attempts = tmp_path / "attempts"
    proc = subprocess.run([*DOLMA, "tag", "--documents", f"{docs}/*", "--experiment", "e", "--taggers",
                           "count_attempts_v1", "--tagger_modules", str(plugin), "--processes", "2", "--executor",
                           "ray", "--batch_size", "1", "--max_line_bytes", str(1 << 20)],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "ATTEMPTS": str(attempts)})
    assert proc.returncode == 1
    assert "bomb.jsonl.gz:2: line longer than max_line_bytes=1048576" in proc.stderr
    assert attempts.read_text().count("attempt") == 1


def test_parquet_rows_follow_the_same_rules(tmp_path):
    """A bad or overlong Parquet row is skipped and counted under skip_line, not the whole file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from dolma_pipeline.reader import ReadStats, read_documents

    path = str(tmp_path / "docs.parquet")
    pq.write_table(pa.table({"id": ["a", "b", "c", "d"], "text": ["fine", None, "x" * 5000, "also fine"]}), path)
    stats = ReadStats()
    docs = list(read_documents(path, "skip_line", stats, max_line_bytes=1000))
    assert [d.id for d in docs] == ["a", "d"]
    assert stats.lines_skipped == 2
    assert "docs.parquet:3: `text` longer than max_line_bytes=1000" in stats.errors[1]
    with pytest.raises(DataFormatError, match="docs.parquet:2: `text` is missing"):
        list(read_documents(path, "fail", max_line_bytes=1000))
