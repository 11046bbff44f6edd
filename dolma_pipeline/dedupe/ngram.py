"""Dolma's `dedupe.paragraphs.by_ngram`: paragraphs scored by the fraction of their word n-grams seen
earlier, computed exactly (no Bloom filter) and independently of the number of workers.

Dolma 1.2.1 (`src/deduper.rs`) walks the documents in order with one Bloom filter; for each eligible
paragraph (the same `skip_empty` / `min_length` / `min_words` rules as exact paragraph dedupe):
1. words: `dolma_pipeline.dedupe.words.tokenize` (UAX #29 word segments that are not white space);
2. n-grams of `ngram_length` words at the starts Dolma samples: 0, 1, 1 + stride, 1 + 2 stride, ...
   (its `last_ngram_start == 0` test takes start 1 after start 0 whatever the stride; stride 0 or 1 takes
   every start). Each sampled n-gram is checked, then inserted: `seen` if an earlier one had the same
   words, so a repeat inside one paragraph counts too;
3. a paragraph with fewer than 2 sampled n-grams (at most `ngram_length` words), unless
   `skip_short_paragraphs`, is also checked and inserted as a whole (after its n-grams) and scores
   1.0 if seen, else 0.0; any other paragraph scores seen / sampled n-grams in float32 (0 / 0 is NaN:
   no span). A paragraph is flagged when score >= `overlap_threshold` (float32), with that score.
   The whole-paragraph key shares the n-gram key space as in Dolma: with `ngram_length` 1, a one-word
   paragraph equals its n-gram. The empty piece after a final separator takes part like Dolma's (an
   empty whole paragraph), but its empty span is not written.

Here the same answer comes from "seen" = "an earlier occurrence of the same key exists", where earlier
is the order of (file index in the sorted input list, line, paragraph index, event index in the
paragraph: the n-grams in order, then the whole paragraph). That is the order in which a single Dolma
process meets them (its files in sorted order). Stages, all on the shared executor with completion
markers, so runs resume and any number of workers gives the same bytes (Dolma with several processes
shares one filter between files processed at once, so its answer depends on thread timing):
1. map, per input file: one record per event, (XXH3-128 key, ref, paragraph, event index), partitioned
   by hash (the exact dedupe's record layout: `start` holds the event index), and one record per scored
   paragraph (line, paragraph, span, n-gram count, kind);
2. reduce, per partition: `exact.exact_reduce` (the first occurrence of every key is kept, the others
   are seen), or with `bloom_filter.read_only` the keys found in an earlier run's filter;
3. write, per input file: counts the seen events per paragraph, scores, thresholds, writes the spans.

Keys: a word's key is the XXH3-128 of its UTF-8 (as exact dedupe hashes a paragraph), an n-gram's of 2
or more words the XXH3-128 of its words' keys in order (16 n bytes), a one-word n-gram's its word's key;
a whole paragraph's is its exact-dedupe key, so it equals a one-word n-gram's exactly when the texts are
equal, Dolma's shared key space (and a filter written by exact dedupe holds the same paragraph keys).
Equal keys stand for equal word sequences up to 128-bit collisions (the bound in exact.py).
Scores are written as Dolma writes a float32 (0.8684210777282715, 1.0). Spans are code points with the
separator, as in exact paragraph dedupe (Dolma's last span of a non-ASCII text ends one past the text).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from itertools import accumulate
from operator import methodcaller
from typing import Any

import numpy as np
import orjson
import xxhash

from dolma_pipeline import io
from dolma_pipeline.dedupe.exact import (
    BYTES,
    DUP_RECORD,
    HASH_RECORD,
    ExactMapShard,
    ExactWriteShard,
    eligible_indices,
    hash_partition,
    paragraph_pieces,
)
from dolma_pipeline.dedupe.partfile import read_segment_from_all, write_partitioned, write_segments
from dolma_pipeline.dedupe.plan import LINE_BITS, counts_cpu, write_rows
from dolma_pipeline.dedupe.words import tokenize
from dolma_pipeline.reader import ReadStats, read_documents

# one row per paragraph that can be flagged; `ngrams` sampled n-grams; kind OVERLAP or WHOLE
PARAGRAPH = np.dtype([("line", "<u4"), ("para", "<u4"), ("start", "<u4"), ("end", "<u4"), ("ngrams", "<u4"),
                      ("kind", "u1")])
OVERLAP, WHOLE = 0, 1  # scored by the seen fraction of n-grams / by the whole paragraph being seen
_HASH16 = xxhash.xxh3_128_digest
_ENCODE = methodcaller("encode", "utf-8", "surrogatepass")
_EMPTY_KEY = _HASH16(b"")


@dataclass
class NgramRules:
    """Dolma's by_ngram settings (the unit rules are the exact dedupe's)."""

    ngram_length: int
    stride: int = 0
    overlap_threshold: float = 1.0
    skip_short_paragraphs: bool = False


def sampled_starts(num_words: int, n: int, stride: int) -> range | list[int]:
    """The word indices where Dolma's sampled n-grams start (see the module docstring)."""
    last = num_words - n  # the last possible start
    if last < 0:
        return range(0)
    if stride <= 1:
        return range(last + 1)
    return [0, *range(1, last + 1, stride)]


def paragraph_keys(paragraph: str, rules: NgramRules) -> tuple[bytes, int, int]:
    """(the 16-byte keys of the paragraph's events concatenated, sampled n-grams, kind)."""
    n = rules.ngram_length
    words = tokenize(paragraph)
    starts = sampled_starts(len(words), n, rules.stride)
    keys = b""
    if starts:
        word_keys = b"".join(map(_HASH16, map(str.encode if paragraph.isascii() else _ENCODE, words)))
        if n == 1:
            keys = b"".join([word_keys[16 * s: 16 * s + 16] for s in starts])
        else:
            keys = b"".join(map(_HASH16, [word_keys[16 * s: 16 * (s + n)] for s in starts]))
    if len(starts) < 2 and not rules.skip_short_paragraphs:
        return keys + _HASH16(_ENCODE(paragraph)), len(starts), WHOLE
    return keys, len(starts), OVERLAP


# ------------------------------------------------------------------------------------------------ stages
@dataclass
class NgramMapShard(ExactMapShard):
    ngram: NgramRules = field(default_factory=lambda: NgramRules(1))
    paragraphs: str = ""  # where the file's scored paragraphs go, for the writer


@counts_cpu
def ngram_map(shard: NgramMapShard) -> dict[str, Any]:
    rules, ngram = shard.rules, shard.ngram
    sep_len = len(rules.separator)
    counts = dict.fromkeys(("units_considered", "skipped_empty", "skipped_min_length", "skipped_min_words"), 0)
    keys = bytearray()  # 16 bytes per event
    # one entry per paragraph with events: the PARAGRAPH fields, and its number of events (compact arrays,
    # not lists of Python ints: ~7x less memory)
    columns = {name: array("B" if name == "kind" else "I") for name in (*PARAGRAPH.names, "events")}
    line_col, para_col, start_col, end_col, ngrams_col, kind_col, events_col = columns.values()
    skeleton: dict[str, list] = {"id": [], "source": [], "line": []}
    stats = ReadStats()
    tail = not ngram.skip_short_paragraphs and bool(eligible_indices([""], rules, dict.fromkeys(counts, 0)))
    for doc in read_documents(shard.input, "fail", stats, max_line_bytes=shard.max_line_bytes):
        skeleton["id"].append(doc.id)
        skeleton["source"].append(doc.source)
        skeleton["line"].append(doc.line)
        text, line = doc.text, doc.line
        if not text:  # Dolma skips an empty text: no paragraph at all
            continue
        pieces, trailing = paragraph_pieces(text, rules.separator)
        ends = list(accumulate(len(p) + sep_len for p in pieces))
        if not trailing:
            ends[-1] = len(text)  # the last piece has no separator after it
        for i in eligible_indices(pieces, rules, counts):
            blob, ngrams, kind = paragraph_keys(pieces[i], ngram)
            if blob:
                keys += blob
                line_col.append(line)
                para_col.append(i)
                start_col.append(ends[i - 1] if i else 0)
                end_col.append(ends[i])
                ngrams_col.append(ngrams)
                kind_col.append(kind)
                events_col.append(len(blob) >> 4)
        if trailing and tail:  # the empty piece after a final separator: an empty whole paragraph in Dolma
            keys += _EMPTY_KEY
            for column, value in zip(columns.values(), (line, len(pieces), len(text), len(text), 0, WHOLE, 1)):
                column.append(value)
    skeleton["stats"] = stats.as_dict()
    write_segments(shard.skeleton, [np.frombuffer(orjson.dumps(skeleton), dtype=BYTES)], BYTES)
    paragraphs = np.empty(len(line_col), dtype=PARAGRAPH)
    for name in PARAGRAPH.names:
        paragraphs[name] = np.frombuffer(columns[name], dtype=columns[name].typecode)
    write_segments(shard.paragraphs, [paragraphs], PARAGRAPH)
    sizes = np.frombuffer(events_col, dtype=events_col.typecode).astype(np.int64)
    records = _event_records(keys, paragraphs, sizes, shard.file_index)
    del keys
    records = np.take(records, np.argsort(records["h0"], kind="stable"))  # as exact_map: sorted runs per segment
    written = write_partitioned(shard.output, records, hash_partition(records["h0"], shard.partitions),
                                shard.partitions)
    return {**stats.as_dict(), **counts, "ngram_events": len(records), "intermediate_bytes": written["bytes"]}


def _event_records(keys: bytearray, paragraphs: np.ndarray, sizes: np.ndarray, file_index: int) -> np.ndarray:
    """HASH_RECORDs in (line, paragraph, event) order; `start` is the event index in its paragraph."""
    pairs = np.frombuffer(keys, dtype="<u8").reshape(-1, 2)
    records = np.zeros(len(pairs), dtype=HASH_RECORD)
    records["h0"], records["h1"] = pairs[:, 0], pairs[:, 1]
    records["ref"] = np.repeat(paragraphs["line"].astype(np.uint64) | np.uint64(file_index << LINE_BITS), sizes)
    records["para"] = np.repeat(paragraphs["para"], sizes)
    first = np.cumsum(sizes) - sizes
    records["start"] = np.arange(len(pairs)) - np.repeat(first, sizes)
    return records


@dataclass
class NgramWriteShard(ExactWriteShard):
    paragraphs: str = ""
    overlap_threshold: float = 1.0


def paragraph_scores(paragraphs: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """float32 score per paragraph row from its seen events (DUP_RECORDs of the same file, `start` the
    event index): seen n-grams / n-grams, or 1.0 / 0.0 for a WHOLE paragraph (its last event)."""
    row_keys = paragraphs["line"].astype(np.uint64) << np.uint64(32) | paragraphs["para"].astype(np.uint64)
    lines = seen["ref"] & np.uint64((1 << LINE_BITS) - 1)
    seen_keys = lines << np.uint64(32) | seen["para"].astype(np.uint64)
    rows = np.searchsorted(row_keys, seen_keys)
    assert len(rows) == 0 or (rows.max() < len(row_keys) and np.all(row_keys[rows] == seen_keys)), \
        "a seen event of a paragraph the map did not record"
    ngrams = paragraphs["ngrams"].astype(np.int64)
    is_ngram = seen["start"].astype(np.int64) < ngrams[rows]
    seen_ngrams = np.bincount(rows[is_ngram], minlength=len(paragraphs)).astype(np.float32)
    whole_seen = np.zeros(len(paragraphs), dtype=np.float32)
    whole_seen[rows[~is_ngram]] = 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = seen_ngrams / ngrams.astype(np.float32)
    return np.where(paragraphs["kind"] == WHOLE, whole_seen, fraction).astype(np.float32)


@counts_cpu
def ngram_write(shard: NgramWriteShard) -> dict[str, Any]:
    skeleton = orjson.loads(read_segment_from_all([shard.skeleton], 0, BYTES).tobytes())
    paragraphs = read_segment_from_all([shard.paragraphs], 0, PARAGRAPH)
    seen = read_segment_from_all(shard.reduce_files, shard.file_index, DUP_RECORD)
    scores = paragraph_scores(paragraphs, seen)
    flagged = (scores >= np.float32(shard.overlap_threshold)) & (paragraphs["end"] > paragraphs["start"])
    spans: dict[int, list[list]] = {}
    for line, start, end, score in zip(paragraphs["line"][flagged].tolist(), paragraphs["start"][flagged].tolist(),
                                       paragraphs["end"][flagged].tolist(), scores[flagged].tolist()):
        spans.setdefault(line, []).append([start, end, score])
    name = shard.attribute_name

    def rows() -> Any:
        for doc_id, source, line in zip(skeleton["id"], skeleton["source"], skeleton["line"]):
            row: dict[str, Any] = {"id": doc_id, "attributes": {name: spans.get(line, [])}}
            if source is not None:
                row["source"] = source
            yield orjson.dumps(row)

    with io.AtomicWriter(shard.output) as writer:
        write_rows(writer, rows())
    return {**skeleton["stats"], "documents_with_duplicates": len(spans), "duplicate_units_flagged": int(flagged.sum()),
            "ngram_events_seen": len(seen)}
