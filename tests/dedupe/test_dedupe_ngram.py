"""`dedupe.paragraphs.by_ngram`: Dolma's overlap-scored n-gram paragraph dedupe, exact and deterministic.

The expected spans of the hand-made cases are dolma 1.2.1's own output for them (`python
bench/ngram_parity.py --cases --ngram-length 2 --stride 0 --threshold 0.5 [--skip-short]`: every span
equal); Dolma's repository config is checked in test_dolma_repo_configs.py.
"""

from __future__ import annotations

import gzip
import shutil

import orjson
import pytest

from dolma_pipeline.dedupe.ngram import sampled_starts
from dolma_pipeline.dedupe.words import tokenize
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.io import write_jsonl
from tests.dedupe.conftest import assert_resumed_stage, dedupe_case, read_attributes, run_dedupe
from tests.sigkill import sigkill_and_resume

# one document each, in this order, deduped with word bigrams at every start and threshold 0.5
CASES = [
    "a b c d e",  # 0: 4 new bigrams
    "a b c x y",  # 1: "a b", "b c" seen: 2/4 = 0.5, exactly the threshold
    "a b q r s t",  # 2: 1/5 below
    "m n m n m n",  # 3: repeats inside one paragraph: "m n", "n m" new, then 3 seen: 3/5
    "hello",  # 4: no bigram: a short paragraph, judged whole: new
    "hello",  # 5: ... seen whole
    "hi there",  # 6: one bigram (short): judged whole, new; its bigram is recorded all the same
    "say hi there",  # 7: "hi there" seen: 1/2
    "so oh well",  # 8: two new bigrams
    "oh well",  # 9: whole: new (0.0); with skip_short_paragraphs its one bigram is seen (1/1)
    "zz",  # 10
    "zz",  # 11: whole: seen; with skip_short_paragraphs 0/0 n-grams: never flagged
    "e1 e2 e3\n",  # 12: the empty piece after the final newline is an empty paragraph in Dolma
    "f1 f2 f3\n\ng1 g2 g3",  # 13: ... so this empty paragraph has been seen
]
EXPECTED = {1: [[0, 9, 0.5]], 3: [[0, 11, 0.6000000238418579]], 5: [[0, 5, 1.0]], 7: [[0, 12, 0.5]],
            11: [[0, 2, 1.0]], 13: [[9, 10, 1.0]]}
EXPECTED_SKIP_SHORT = {1: [[0, 9, 0.5]], 3: [[0, 11, 0.6000000238418579]], 7: [[0, 12, 0.5]],
                       9: [[0, 7, 1.0]]}


def ngram_args(n: int = 2, stride: int = 0, threshold: float = 0.5, *extra: str) -> list[str]:
    return ["--dedupe.name", "ng", "--dedupe.paragraphs.attribute_name", "dup",
            "--dedupe.paragraphs.by_ngram.ngram_length", str(n), "--dedupe.paragraphs.by_ngram.stride", str(stride),
            "--dedupe.paragraphs.by_ngram.overlap_threshold", str(threshold), *extra]


def flagged(tmp_path, texts: list[str], args: list[str]) -> dict[int, list]:
    root = tmp_path / "c"
    write_jsonl(str(root / "documents" / "a.jsonl.gz"), [{"id": str(i), "text": t} for i, t in enumerate(texts)])
    assert run_dedupe(["--documents", str(root / "documents"), "--debug", *args]) == 0
    with gzip.open(root / "attributes" / "ng" / "a.jsonl.gz") as fh:
        rows = [orjson.loads(line) for line in fh]
    return {int(r["id"]): r["attributes"]["dup"] for r in rows if r["attributes"]["dup"]}


def test_overlap_rule_on_hand_made_paragraphs(tmp_path):
    assert flagged(tmp_path, CASES, ngram_args()) == EXPECTED


def test_skip_short_paragraphs_scores_them_by_their_ngrams(tmp_path):
    args = ngram_args(2, 0, 0.5, "--dedupe.paragraphs.by_ngram.skip_short_paragraphs")
    assert flagged(tmp_path, CASES, args) == EXPECTED_SKIP_SHORT


@pytest.mark.parametrize("threshold, hit", [(0.6666667, True), (0.66666675, False)])
def test_threshold_is_compared_in_float32(tmp_path, threshold, hit):
    """2/3 in float32 is 0.6666667 (as parsed into float32): flagged, although 2/3 < 0.6666667 in float64;
    the next float32 up is not reached."""
    found = flagged(tmp_path, ["a1 a2 a3 a4", "a1 a2 a3 b4"], ngram_args(2, 0, threshold))
    assert found == ({1: [[0, 11, 0.6666666865348816]]} if hit else {})


def test_one_word_ngrams_share_keys_with_whole_paragraphs(tmp_path):
    """With ngram_length 1, a one-word paragraph's whole key is its n-gram's, just recorded: Dolma flags it
    even the first time."""
    assert flagged(tmp_path, ["solo", "a b c"], ngram_args(1, 0, 1.0)) == {0: [[0, 4, 1.0]]}


def test_sampled_starts_follow_dolmas_loop():
    def dolma(num_words: int, n: int, stride: int) -> list[int]:  # deduper.rs, word by word
        out, last = [], 0
        for start in range(num_words - n + 1):
            if last == 0 or start - last >= stride:
                last = start
                out.append(start)
        return out

    for num_words in range(0, 15):
        for n in (1, 2, 6):
            for stride in (0, 1, 2, 3, 7):
                assert list(sampled_starts(num_words, n, stride)) == dolma(num_words, n, stride)
    assert list(sampled_starts(10, 2, 3)) == [0, 1, 4, 7]


def test_words_are_dolmas_unicode_segments():
    assert tokenize("You can follow the RSS 2.0 feed") == ["You", "can", "follow", "the", "RSS", "2.0", "feed"]
    assert tokenize("Die (951 - 960) – don't, 1,000") == ["Die", "(", "951", "-", "960", ")", "–", "don't", ",",
                                                        "1,000"]
    assert tokenize("a\x1cb \u3000c") == ["a", "\x1c", "b", "c"]  # U+001C is no White_Space (Rust), U+3000 is
    assert tokenize("caf\u0065\u0301 olé") == ["cafe\u0301", "olé"]  # a combining accent joins its letter


def test_one_and_two_processes_give_identical_bytes(near_dup_corpus, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(near_dup_corpus / "documents", other / "documents")
    args = ngram_args(5, 2, 0.3)
    assert run_dedupe(["--documents", str(near_dup_corpus / "documents"), *args, "--processes", "1"]) == 0
    assert run_dedupe(["--documents", str(other / "documents"), *args, "--processes", "2", "--partitions", "3",
                       "--executor", "local"]) == 0
    first = read_attributes(near_dup_corpus, "ng")
    assert first == read_attributes(other, "ng")
    assert sum(line.count(b"[[") for data in first.values() for line in gzip.decompress(data).splitlines()) > 5


def test_negative_lengths_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="by_ngram"):
        flagged(tmp_path, ["a b"], ngram_args(-1))


def test_sigkilled_run_resumes_to_the_same_bytes(tmp_path):
    """SIGKILL a real 2-process n-gram run once a map shard is finished; the rerun keeps it, ends identical."""
    case = dedupe_case("ng", ngram_args(5, 2, 0.3), "dedupe_work/ng/ngram/map")
    assert_resumed_stage(sigkill_and_resume(case, tmp_path), "map")


def test_read_only_bloom_filter_flags_what_the_filter_holds_and_adds_nothing(tmp_path):
    """Dolma's decontamination workflow with n-grams: build a filter from one set, probe another with
    `read_only` (nothing is inserted while probing, so repeats inside the probe set are not seen)."""
    build, probe = tmp_path / "build", tmp_path / "probe"
    write_jsonl(str(build / "documents" / "a.jsonl.gz"), [{"id": "e", "text": "one two three four\nlone"}])
    write_jsonl(str(probe / "documents" / "a.jsonl.gz"), [
        {"id": "p", "text": "one two three five\nm n m n m n\nlone\nlone"}])
    bloom = str(tmp_path / "filter.bin")
    assert run_dedupe(["--documents", str(build / "documents"), "--debug", *ngram_args(),
                       "--bloom_filter.file", bloom]) == 0
    assert run_dedupe(["--documents", str(probe / "documents"), "--debug", *ngram_args(),
                       "--bloom_filter.file", bloom, "--bloom_filter.read_only"]) == 0
    with gzip.open(probe / "attributes" / "ng" / "a.jsonl.gz") as fh:
        spans = orjson.loads(fh.readline())["attributes"]["dup"]
    # 2 of 3 bigrams in the filter; the repeats of "m n" are not; both "lone" are
    assert spans == [[0, 19, 0.6666666865348816], [31, 36, 1.0], [36, 40, 1.0]]


@pytest.mark.ray
def test_one_and_two_ray_workers_give_identical_bytes(near_dup_corpus, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(near_dup_corpus / "documents", other / "documents")
    args = [*ngram_args(5, 2, 0.3), "--executor", "ray"]
    assert run_dedupe(["--documents", str(near_dup_corpus / "documents"), *args, "--processes", "1"]) == 0
    assert run_dedupe(["--documents", str(other / "documents"), *args, "--processes", "2"]) == 0
    assert read_attributes(near_dup_corpus, "ng") == read_attributes(other, "ng")
