from __future__ import annotations

import gzip
import os

import pytest
import zstandard

from dolma_pipeline.errors import DataFormatError, InputNotFoundError
from dolma_pipeline.io import AtomicWriter, expand_paths, iter_raw_lines, write_jsonl
from dolma_pipeline.reader import ReadStats, read_documents
from tests.conftest import make_docs


@pytest.mark.parametrize("ext", [".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".zstd"])
def test_round_trip_every_compression(tmp_path, ext):
    docs = make_docs("x", 57)
    path = str(tmp_path / f"docs{ext}")
    assert write_jsonl(path, docs) == 57
    got = [d.raw for d in read_documents(path)]
    assert got == docs


def test_written_bytes_are_deterministic(tmp_path):
    docs = make_docs("x", 20)
    for ext in (".gz", ".zst"):
        write_jsonl(str(tmp_path / f"1.jsonl{ext}"), docs)
        write_jsonl(str(tmp_path / f"2.jsonl{ext}"), docs)
        assert (tmp_path / f"1.jsonl{ext}").read_bytes() == (tmp_path / f"2.jsonl{ext}").read_bytes()


def test_gzip_written_by_other_tools_and_multi_member(tmp_path):
    path = tmp_path / "m.jsonl.gz"
    with open(path, "wb") as fh:
        fh.write(gzip.compress(b'{"id": "1", "text": "a"}\n'))
        fh.write(gzip.compress(b'{"id": "2", "text": "b"}\n'))
    assert [d.id for d in read_documents(str(path))] == ["1", "2"]


def test_zstd_multi_frame(tmp_path):
    path = tmp_path / "m.jsonl.zst"
    cctx = zstandard.ZstdCompressor()
    path.write_bytes(cctx.compress(b'{"id": "1", "text": "a"}\n') + cctx.compress(b'{"id": "2", "text": "b"}\n'))
    assert [d.id for d in read_documents(str(path))] == ["1", "2"]


@pytest.mark.parametrize("ext", [".gz", ".zst"])
def test_truncated_archive_is_an_error(tmp_path, ext):
    path = tmp_path / f"t.jsonl{ext}"
    write_jsonl(str(path), make_docs("t", 500))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFormatError, match="truncated"):
        list(iter_raw_lines(str(path)))


def test_invalid_utf8_names_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": "1", "text": "ok"}\n{"id": "2", "text": "caf\xe9"}\n')
    with pytest.raises(DataFormatError, match=r"bad.jsonl:2: invalid UTF-8"):
        list(read_documents(str(path)))
    stats = ReadStats()
    assert [d.id for d in read_documents(str(path), "skip_line", stats)] == ["1"]
    assert stats.lines_skipped == 1


def test_lone_surrogate_escape_is_accepted(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"id": "1", "text": "x\\ud800y"}\n')
    assert [d.text for d in read_documents(str(path))] == ["x\ud800y"]


def test_globs_directories_and_double_star(tmp_path):
    for rel in ["documents/a.jsonl.gz", "documents/x/b.jsonl.gz", "documents/x/y/c.jsonl.gz", "documents/x/n.txt"]:
        write_jsonl(str(tmp_path / rel), make_docs("g", 1))
    base = str(tmp_path / "documents")
    assert [os.path.relpath(p, base) for p in expand_paths(f"{base}/**/*.jsonl.gz")] == [
        "a.jsonl.gz", "x/b.jsonl.gz", "x/y/c.jsonl.gz"]
    assert len(expand_paths(base)) == 4
    assert expand_paths([f"{base}/*.gz", f"{base}/a.jsonl.gz"]) == [f"{base}/a.jsonl.gz"]
    with pytest.raises(InputNotFoundError, match="nothing"):
        expand_paths(f"{base}/nothing*.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputNotFoundError):
        expand_paths(str(tmp_path / "empty"))


def test_atomic_writer_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.jsonl.gz"
    with pytest.raises(RuntimeError), AtomicWriter(str(target)) as out:
        out.write(b"partial\n")
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_parquet_with_column_mapping(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"doc_id": ["p1", "p2"], "content": ["first text", "second"], "url": ["u1", "u2"]})
    path = str(tmp_path / "docs.parquet")
    pq.write_table(table, path)
    docs = list(read_documents(path, parquet_columns={"id": "doc_id", "text": "content"}))
    assert [(d.id, d.text, d.line) for d in docs] == [("p1", "first text", 1), ("p2", "second", 2)]
    assert docs[0].metadata == {"url": "u1"}
    with pytest.raises(DataFormatError, match="lacks column"):
        list(read_documents(path))
