"""Exact document and paragraph dedupe: which copy is kept, spans, reruns, resume, worker counts."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import orjson
import pytest
import xxhash

from dolma_pipeline.dedupe import exact
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.io import write_jsonl
from tests.dedupe.conftest import assert_resumed_stage, dedupe_case, read_attributes, run_dedupe
from tests.sigkill import sigkill_and_resume

PARA = ["--dedupe.name", "para", "--dedupe.paragraphs.attribute_name", "dup", "--debug"]


def _rows(path) -> list[dict]:
    with gzip.open(path) as fh:
        return [orjson.loads(line) for line in fh]


@pytest.fixture
def small(tmp_path):
    root = tmp_path / "c"
    write_jsonl(str(root / "documents" / "a.jsonl.gz"), [
        {"id": "a1", "text": "alpha one\nbeta two\n", "metadata": {"url": "http://x/1"}},
        {"id": "a2", "text": "beta two\ngamma three", "metadata": {"url": "http://x/2"}},
        {"id": "a3", "text": "short\n\nshort", "metadata": {}},
    ])
    write_jsonl(str(root / "documents" / "b.jsonl.gz"), [
        {"id": "b1", "text": "alpha one\nnew words here", "metadata": {"url": "http://x/1"}},
        {"id": "b2", "text": "beta two\ngamma three", "metadata": {"url": ""}},
    ])
    return root


def test_paragraph_spans_flag_every_copy_after_the_first(small):
    assert run_dedupe(["--documents", str(small / "documents"), *PARA]) == 0
    a = _rows(small / "attributes" / "para" / "a.jsonl.gz")
    b = _rows(small / "attributes" / "para" / "b.jsonl.gz")
    assert [r["id"] for r in a] == ["a1", "a2", "a3"]
    assert a[0]["attributes"]["dup"] == []
    assert a[1]["attributes"]["dup"] == [[0, 9, 1.0]]  # "beta two\n": the separator goes with the paragraph
    # without skip_empty the empty line is a unit too, and the second "short" repeats the first
    assert a[2]["attributes"]["dup"] == [[7, 12, 1.0]]
    assert b[0]["attributes"]["dup"] == [[0, 10, 1.0]]
    assert b[1]["attributes"]["dup"] == [[0, 9, 1.0], [9, 20, 1.0]]
    assert all(isinstance(s[2], float) for r in a + b for s in r["attributes"]["dup"])


def test_documents_by_url_keep_the_first_and_skip_empty_keys(small):
    args = ["--documents", str(small / "documents"), "--dedupe.name", "url", "--dedupe.documents.key",
            "$.metadata.url", "--dedupe.documents.attribute_name", "dup_url", "--dedupe.skip_empty", "--debug"]
    assert run_dedupe(args) == 0
    flags = {r["id"]: r["attributes"]["dup_url"] for name in ("a", "b")
             for r in _rows(small / "attributes" / "url" / f"{name}.jsonl.gz")}
    assert flags == {"a1": [], "a2": [], "a3": [], "b1": [[0, len("alpha one\nnew words here"), 1.0]], "b2": []}


def test_min_words_that_excludes_everything_is_an_error(small):
    with pytest.raises(ConfigError, match="no paragraphs unit is eligible"):
        run_dedupe(["--documents", str(small / "documents"), *PARA, "--dedupe.min_words", "50"])


def test_min_words_leaves_short_paragraphs_alone(small):
    assert run_dedupe(["--documents", str(small / "documents"), *PARA, "--dedupe.min_words", "2"]) == 0
    a = _rows(small / "attributes" / "para" / "a.jsonl.gz")
    assert a[1]["attributes"]["dup"] == [[0, 9, 1.0]]
    assert a[2]["attributes"]["dup"] == []  # "short" has one word: never flagged


def test_rerun_flags_the_same_units_not_everything(near_dup_corpus):
    args = ["--documents", str(near_dup_corpus / "documents"), *PARA, "--dedupe.skip_empty"]
    assert run_dedupe(args) == 0
    first = read_attributes(near_dup_corpus, "para")
    flagged = sum(len(orjson.loads(line)["attributes"]["dup"]) for data in first.values()
                  for line in gzip.decompress(data).splitlines())
    assert flagged > 0
    assert run_dedupe([*args, "--ignore_existing"]) == 0
    assert read_attributes(near_dup_corpus, "para") == first
    assert run_dedupe(args) == 0  # resumed from markers: still the same
    assert read_attributes(near_dup_corpus, "para") == first


def test_partition_count_does_not_change_the_bytes(near_dup_corpus, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(near_dup_corpus / "documents", other / "documents")
    assert run_dedupe(["--documents", str(near_dup_corpus / "documents"), *PARA, "--partitions", "1"]) == 0
    assert run_dedupe(["--documents", str(other / "documents"), *PARA, "--partitions", "7"]) == 0
    assert read_attributes(near_dup_corpus, "para") == read_attributes(other, "para")


@pytest.mark.parametrize("stage, watch", [("map", "dedupe_work/para/exact/map"),
                                          pytest.param("reduce", "dedupe_work/para/exact/reduce", marks=pytest.mark.slow),
                                          pytest.param("write", "attributes/para", marks=pytest.mark.slow)])
def test_sigkilled_run_resumes_to_the_same_bytes(tmp_path, stage, watch):
    """SIGKILL a real 2-process run once `stage` has finished a shard; the rerun keeps it and ends identical."""
    case = dedupe_case("para", [a for a in PARA if a != "--debug"], watch)
    outcome = sigkill_and_resume(case, tmp_path)
    assert_resumed_stage(outcome, stage)


@pytest.mark.ray
def test_one_and_two_ray_workers_give_identical_bytes(near_dup_corpus, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(near_dup_corpus / "documents", other / "documents")
    base = [a for a in PARA if a != "--debug"]
    assert run_dedupe(["--documents", str(near_dup_corpus / "documents"), *base, "--processes", "1"]) == 0
    assert run_dedupe(["--documents", str(other / "documents"), *base, "--processes", "2"]) == 0
    assert read_attributes(near_dup_corpus, "para") == read_attributes(other, "para")


def test_key_syntax_is_checked():
    assert exact.parse_key("$.metadata.url") == ["metadata", "url"]
    assert exact.parse_key('$["metadata"]["url"]') == ["metadata", "url"]
    with pytest.raises(ConfigError):
        exact.parse_key("metadata.url")


def test_local_process_pool_gives_the_same_bytes_as_a_serial_run(near_dup_corpus, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(near_dup_corpus / "documents", other / "documents")
    base = [a for a in PARA if a != "--debug"]
    assert run_dedupe(["--documents", str(near_dup_corpus / "documents"), *PARA]) == 0
    assert run_dedupe(["--documents", str(other / "documents"), *base, "--processes", "2",
                       "--executor", "local"]) == 0
    assert read_attributes(near_dup_corpus, "para") == read_attributes(other, "para")


@pytest.mark.parametrize("text", ["a\n\x1c\nb\n\u3000\n\n  \nc\u00e9\n", "a\n\x1c\n \t\nb\n", "x", "\n\n", "a\nb", "é\n é \n\u2029\n"])
@pytest.mark.parametrize("skip_empty", [True, False])
def test_fast_byte_path_hashes_the_same_paragraphs_as_the_text_path(text, skip_empty):
    rules = exact.UnitRules("paragraphs", skip_empty=skip_empty)
    keys = ("units_considered", "skipped_empty", "skipped_min_length", "skipped_min_words", "skipped_missing_key")
    fast_counts, slow_counts = dict.fromkeys(keys, 0), dict.fromkeys(keys, 0)
    indices, digests, lengths, trailing = exact._hash_paragraph_bytes(text, rules, fast_counts)
    starts, ends = exact.unit_spans(lengths, [len(lengths)], [trailing], list(indices), [len(indices)], 1)
    starts, ends = starts.tolist(), ends.tolist()
    pieces, _ = exact.paragraph_pieces(text, "\n")
    keep = exact.eligible_indices(pieces, rules, slow_counts)
    assert list(indices) == list(keep) and fast_counts == slow_counts
    assert digests == b"".join(xxhash.xxh3_128_digest(pieces[i].encode()) for i in keep)  # exact.UNIT_HASH
    # spans in code points, separator included: cutting them all out leaves only the skipped pieces
    assert [text[s:e].rstrip("\n") for s, e in zip(starts, ends, strict=True)] == [pieces[i] for i in keep]
    assert all(text[e - 1] == "\n" for s, e in zip(starts, ends, strict=True) if e < len(text))


def test_a_missing_dedupe_block_is_a_config_error(small):
    with pytest.raises(ConfigError, match="exactly one of"):
        run_dedupe(["--documents", str(small / "documents")])


def test_reduce_handles_a_64_bit_hash_prefix_collision(tmp_path):
    import numpy as np

    from dolma_pipeline.dedupe.partfile import read_segment_from_all, write_partitioned
    from dolma_pipeline.dedupe.plan import ReduceShard

    def map_file(name, rows):
        records = np.array(rows, dtype=exact.HASH_RECORD)
        write_partitioned(str(tmp_path / name), records, np.zeros(len(records), dtype=np.int64), 1)
        return str(tmp_path / name)

    a, b, c = 1 << 32 | 1, 1 << 32 | 2, 2 << 32 | 1  # (file 1, line 1), (file 1, line 2), (file 2, line 1)
    inputs = [map_file("m0.bin", [(5, 1, a, 0, 0, 1), (5, 2, b, 0, 0, 1)]), map_file("m1.bin", [(5, 1, c, 0, 0, 1)])]
    out = str(tmp_path / "r.bin")
    stats = exact.exact_reduce(ReduceShard(input="p0", output=out, fingerprint="x", partition=0, inputs=inputs,
                                           outputs=3))
    assert stats["duplicate_units"] == 1
    assert read_segment_from_all([out], 2, exact.DUP_RECORD)["ref"].tolist() == [c]


def test_span_lists_are_the_json_of_the_spans():
    """The attribute writer's numpy serialisation gives orjson's bytes for [[start, end, 1.0], ...], also for
    spans whose numbers end in 1 (the ",1]" it rewrites) and for groups of one."""
    starts, ends = np.array([0, 1, 10, 11, 101, 5], dtype=np.uint32), np.array([1, 11, 11, 21, 111, 61], dtype=np.uint32)
    cuts = np.array([0, 2, 3, 5])
    got = [orjson.dumps(f) for f in exact.span_lists(starts, ends, cuts)]
    bounds = [*cuts.tolist(), len(starts)]
    want = [orjson.dumps([[int(s), int(e), 1.0] for s, e in zip(starts[a:b], ends[a:b])]) for a, b in zip(bounds, bounds[1:])]
    assert got == want and exact.span_lists(starts[:0], ends[:0], cuts[:0]) == []
