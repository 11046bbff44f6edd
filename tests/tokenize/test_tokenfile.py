"""The token-file format: raw memmaps + `start,end,id,src,loc` CSV, round trips and dtype rules."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from dolma_pipeline.tokenize.tokenfile import (
    DocumentRow,
    PartWriter,
    dtype_for_vocab,
    infer_dtype,
    iter_documents,
    list_parts,
    metadata_path,
    part_stem,
    read_rows,
)


@pytest.mark.parametrize(("vocab", "dtype"), [(50280, "uint16"), (65536, "uint16"), (65537, "uint32"),
                                                (100, "uint16"), (2**32, "uint32"), (2**32 + 1, "uint64")])
def test_dtype_from_vocabulary(vocab, dtype):
    assert dtype_for_vocab(vocab) == np.dtype(dtype)


@pytest.mark.parametrize("dtype", ["uint16", "uint32"])
def test_part_round_trip(tmp_path, dtype):
    path = str(tmp_path / (part_stem("7", 3) + ".npy"))
    assert path.endswith("part-7-00003.npy")
    docs = [("a,quoted \"id\"", [5, 6, 7]), ("b", [70000 if dtype == "uint32" else 9]), ("c", [1, 2])]
    with PartWriter(path, dtype) as writer:
        writer.write(np.array([t for _, ids in docs[:2] for t in ids], dtype=dtype), [d for d, _ in docs[:2]],
                     ["s3://bucket/x.jsonl.gz", "/local/y.jsonl"], [1, 20], np.array([3, 1]))
        writer.write(np.array(docs[2][1], dtype=dtype), ["c"], ["/local/y.jsonl"], [21], np.array([2]))
    raw = np.fromfile(path, dtype=dtype)
    assert raw.tolist() == [t for _, ids in docs for t in ids]
    rows = read_rows(metadata_path(path))
    assert rows == [DocumentRow(0, 3, "a,quoted \"id\"", "s3://bucket/x.jsonl.gz", 1),
                    DocumentRow(3, 4, "b", "/local/y.jsonl", 20), DocumentRow(4, 6, "c", "/local/y.jsonl", 21)]
    assert infer_dtype(path, rows) == np.dtype(dtype)
    assert [(r.id, t.tolist()) for r, t in iter_documents(path)] == [(d, ids) for d, ids in docs]
    with gzip.open(metadata_path(path), "rb") as fh:
        assert fh.readline() == b'0,3,"a,quoted ""id""",s3://bucket/x.jsonl.gz,1\r\n'
    assert list_parts(str(tmp_path)) == [path]


def test_failed_write_leaves_nothing(tmp_path):
    path = str(tmp_path / "part-0-00000.npy")
    with pytest.raises(RuntimeError), PartWriter(path, "uint16") as writer:
        writer.write(np.array([1, 2], dtype="uint16"), ["x"], ["s"], [1], np.array([2]))
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_wrong_dtype_is_refused(tmp_path):
    with pytest.raises(TypeError), PartWriter(str(tmp_path / "part-0-00000.npy"), "uint16") as writer:
        writer.write(np.array([1], dtype="uint32"), ["x"], ["s"], [1], np.array([1]))
