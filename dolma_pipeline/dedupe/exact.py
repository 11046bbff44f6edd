"""Exact dedupe of whole documents (by a key) or of paragraphs, in three deterministic stages.

1. map, per input file: hash (XXH3-128, `UNIT_HASH`) every unit that is eligible for dedupe and write
   the records (hash, ref, paragraph index) into one partitioned file, partitioned by hash.
2. reduce, per partition: sort by (hash, ref, paragraph); the first record of each hash is the copy
   that is kept, every other one is a duplicate. Duplicates go to a file partitioned by input file.
3. write, per input file: read its duplicates from every reducer and write the attribute file.

The kept copy is the first in (file path, line, paragraph) order, independent of workers and timing,
and a rerun over the same inputs computes the same answer (no state survives between runs other than
finished, fingerprinted stage outputs).

The hash: XXH3-128 (the `xxhash` package, xxHash 0.8's reference C), ~5x faster per paragraph than
BLAKE2b-128 through hashlib, which was most of the map's CPU. Two units are one when their 128-bit
digests are equal, never compared by text: for n distinct units the chance that any two of them collide
is at most n(n-1)/2 / 2^128 (10^12 paragraphs: < 1.5e-15), assuming XXH3's output behaves as random on
natural text, which its SMHasher results support. XXH3 is not a cryptographic hash: text crafted to
collide with a chosen paragraph could be flagged as its duplicate (dolma's Bloom filter has the same
exposure, with a far larger false-positive rate).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import compress
from operator import methodcaller, not_
from typing import Any

import numpy as np
import orjson
import xxhash

from dolma_pipeline import io
from dolma_pipeline.dedupe.partfile import read_segment_from_all, write_partitioned, write_segments
from dolma_pipeline.dedupe.plan import LINE_BITS, ReduceShard, counts_cpu, write_rows
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.executor import Shard
from dolma_pipeline.lines import DEFAULT_MAX_LINE_BYTES
from dolma_pipeline.reader import ReadStats, read_documents

log = logging.getLogger(__name__)

# a unit's span (start, end in code points) travels with it, so the attribute writer never rereads documents
HASH_RECORD = np.dtype([("h0", "<u8"), ("h1", "<u8"), ("ref", "<u8"), ("para", "<u4"), ("start", "<u4"),
                        ("end", "<u4")])
DUP_RECORD = np.dtype([("ref", "<u8"), ("para", "<u4"), ("start", "<u4"), ("end", "<u4")])
BYTES = np.dtype([("b", "u1")])
# the units' hash; part of every fingerprint that depends on digests (a change redoes those stage outputs)
UNIT_HASH = "xxh3_128"


@dataclass
class UnitRules:
    """Which units take part in the dedupe (the others are never flagged, and are counted)."""

    mode: str  # documents | paragraphs
    key: str = "$.text"
    separator: str = "\n"
    skip_empty: bool = False
    min_length: int = 0
    min_words: int = 0


def parse_key(key: str) -> list[str]:
    """`$.metadata.url` → ["metadata", "url"]; also accepts `$["a"]["b"]`."""
    if not key.startswith("$"):
        raise ConfigError(f"dedupe.documents.key must be a JSONPath starting with `$` (got {key!r})")
    rest = key[1:].replace('"]', "").replace("']", "").replace('["', ".").replace("['", ".")
    parts = [p for p in rest.split(".") if p]
    if not parts or any(c in p for p in parts for c in "[]*?@()"):
        raise ConfigError(f"dedupe.documents.key {key!r}: only plain field paths like $.metadata.url are supported")
    return parts


def extract_key(raw: dict, parts: list[str]) -> Any:
    value: Any = raw
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def paragraph_pieces(text: str, separator: str) -> tuple[list[str], bool]:
    """The paragraphs, and whether the text ended with a separator (that empty tail is no paragraph)."""
    pieces = text.split(separator)
    if len(pieces) > 1 and pieces[-1] == "":
        pieces.pop()
        return pieces, True
    return pieces, False


def unit_spans(lengths: list[int], pieces_per_doc: list[int], trailing: list[bool], kept: list[int],
               kept_per_doc: list[int], sep_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) in code points of the kept pieces of many documents, vectorised.

    `lengths` are the code point lengths of every piece of every document in turn; `kept` the kept
    pieces' indices within their document, `kept_per_doc` how many each document keeps. A span includes
    its separator (removing it removes the whole line), except for a last piece with none after it.
    """
    lengths_arr = np.asarray(lengths, dtype=np.int64)
    counts = np.asarray(pieces_per_doc, dtype=np.int64)
    first = np.cumsum(counts) - counts  # index of each document's first piece
    doc_of_piece = np.repeat(np.arange(len(counts)), counts)
    before = np.cumsum(lengths_arr) - lengths_arr
    index_in_doc = np.arange(len(lengths_arr)) - first[doc_of_piece]
    starts = before - before[first][doc_of_piece] + index_in_doc * sep_len
    ends = starts + lengths_arr + sep_len
    ends[(first + counts - 1)[~np.asarray(trailing, dtype=bool)]] -= sep_len
    chosen = first[np.repeat(np.arange(len(counts)), kept_per_doc)] + np.asarray(kept, dtype=np.int64)
    return starts[chosen], ends[chosen]


def eligible_indices(pieces: list[str], rules: UnitRules, counts: dict[str, int]) -> list[int] | range:
    """Indices of the units that take part; the others are counted by reason."""
    if not (rules.skip_empty or rules.min_length or rules.min_words):
        counts["units_considered"] += len(pieces)
        return range(len(pieces))
    if not (rules.min_length or rules.min_words):  # the common Dolma setting: skip_empty alone
        keep = [i for i, piece in enumerate(pieces) if piece and not piece.isspace()]
        counts["skipped_empty"] += len(pieces) - len(keep)
        counts["units_considered"] += len(keep)
        return keep
    keep = []
    skip_empty, min_length, min_words = rules.skip_empty, rules.min_length, rules.min_words
    for i, piece in enumerate(pieces):
        if skip_empty and (not piece or piece.isspace()):
            counts["skipped_empty"] += 1
        elif len(piece) < min_length:
            counts["skipped_min_length"] += 1
        elif min_words and len(piece.split()) < min_words:
            counts["skipped_min_words"] += 1
        else:
            keep.append(i)
    counts["units_considered"] += len(keep)
    return keep


Units = tuple[list[int] | range, bytes, list[int], bool]  # kept indices, digests, piece lengths, trailing


def hash_units(raw: dict, text: str, rules: UnitRules, key_parts: list[str], counts: dict[str, int]) -> Units:
    """(kept indices, their 16-byte digests concatenated, the code point lengths of all the pieces, whether
    the text ends with a separator) for the eligible units of one document."""
    if rules.mode == "documents":
        value = extract_key(raw, key_parts)
        if value is None:
            counts["skipped_missing_key"] += 1
            return [], b"", [], False
        blob = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        if rules.skip_empty and not blob.strip():
            counts["skipped_empty"] += 1
            return [], b"", [], False
        # min_length / min_words look at the document text: the key may be a URL that has no words.
        text_rules = UnitRules("documents", min_length=rules.min_length, min_words=rules.min_words)
        if eligible_indices([text], text_rules, counts):
            return [0], _HASH16(blob.encode("utf-8", "surrogatepass")), [len(text)], False
        return [], b"", [], False
    if not (rules.min_length or rules.min_words):
        return _hash_paragraph_bytes(text, rules, counts)
    pieces, trailing = paragraph_pieces(text, rules.separator)
    keep = eligible_indices(pieces, rules, counts)
    digests = b"".join(map(_HASH16, [pieces[i].encode("utf-8", "surrogatepass") for i in keep]))
    return keep, digests, list(map(len, pieces)), trailing


_HASH16 = xxhash.xxh3_128_digest  # bytes -> 16 bytes
# the ASCII characters str.isspace() accepts (bytes.isspace() lacks \x1c-\x1f)
_ASCII_SPACE = bytes(c for c in range(128) if chr(c).isspace())
_STRIP = methodcaller("strip", _ASCII_SPACE)
_ISASCII = bytes.isascii


def _hash_paragraph_bytes(text: str, rules: UnitRules, counts: dict[str, int]) -> Units:
    """The fast path without length limits: encode once, split the bytes (UTF-8 splits on the encoded
    separator exactly as the text does), select and hash with C-level maps (no Python step per
    paragraph for ASCII text). Same digests as the text path."""
    pieces = text.encode("utf-8", "surrogatepass").split(rules.separator.encode("utf-8", "surrogatepass"))
    trailing = len(pieces) > 1 and pieces[-1] == b""
    if trailing:
        pieces.pop()
    ascii_text = text.isascii()  # O(1) for a str
    n = len(pieces)
    if rules.skip_empty:
        stripped = list(map(_STRIP, pieces))  # b"" (falsy) for an empty or ASCII-blank piece
        if not ascii_text:  # a piece of Unicode blanks only (e.g. U+3000) is empty too
            for i in compress(range(n), map(not_, map(_ISASCII, stripped))):
                if stripped[i].decode("utf-8", "surrogatepass").isspace():
                    stripped[i] = b""
        keep: list[int] | range = list(compress(range(n), stripped))
        chosen = list(compress(pieces, stripped))
        counts["skipped_empty"] += n - len(keep)
    else:
        keep, chosen = range(n), pieces
    counts["units_considered"] += len(keep)
    # offsets are code points: byte lengths are those only for ASCII text
    lengths = list(map(len, pieces if ascii_text else paragraph_pieces(text, rules.separator)[0]))
    return keep, b"".join(map(_HASH16, chosen)), lengths, trailing


# ------------------------------------------------------------------------------------------------ stages
@dataclass
class ExactMapShard(Shard):
    file_index: int = 0
    rules: UnitRules = field(default_factory=lambda: UnitRules("documents"))
    partitions: int = 1
    skeleton: str = ""  # where the ids and sources of the file's documents go, for the attribute writer
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES


@counts_cpu
def exact_map(shard: ExactMapShard) -> dict[str, Any]:
    rules = shard.rules
    key_parts = parse_key(rules.key) if rules.mode == "documents" else []
    counts = dict.fromkeys(("units_considered", "skipped_empty", "skipped_min_length", "skipped_min_words",
                            "skipped_missing_key"), 0)
    digests: list[bytes] = []
    paras: list[int] = []
    lengths: list[int] = []
    pieces_per_doc: list[int] = []
    trailing: list[bool] = []
    lines: list[int] = []
    per_line: list[int] = []
    skeleton: dict[str, list] = {"id": [], "source": [], "line": []}
    stats = ReadStats()
    for doc in read_documents(shard.input, "fail", stats, max_line_bytes=shard.max_line_bytes):
        skeleton["id"].append(doc.id)
        skeleton["source"].append(doc.source)
        skeleton["line"].append(doc.line)
        indices, blob, doc_lengths, doc_trailing = hash_units(doc.raw, doc.text, rules, key_parts, counts)
        if blob:
            digests.append(blob)
            lines.append(doc.line)
            per_line.append(len(indices))
            paras.extend(indices)
            lengths.extend(doc_lengths)
            pieces_per_doc.append(len(doc_lengths))
            trailing.append(doc_trailing)
    skeleton["stats"] = stats.as_dict()
    blob = orjson.dumps(skeleton)
    write_segments(shard.skeleton, [np.frombuffer(blob, dtype=BYTES)], BYTES)
    pairs = np.frombuffer(b"".join(digests), dtype="<u8").reshape(-1, 2)
    records = np.empty(len(pairs), dtype=HASH_RECORD)
    records["h0"], records["h1"] = pairs[:, 0], pairs[:, 1]
    records["ref"] = np.repeat(np.array(lines, dtype=np.uint64) | np.uint64(shard.file_index << LINE_BITS),
                               per_line)
    records["para"] = paras
    sep_len = len(rules.separator) if rules.mode == "paragraphs" else 0
    records["start"], records["end"] = unit_spans(lengths, pieces_per_doc, trailing, paras, per_line, sep_len)
    # Sorted by hash (stable: equal hashes stay in (ref, paragraph) order); the partition is a monotone
    # function of the hash, so the segments come out grouped and each is a sorted run for the reducer.
    records = np.take(records, np.argsort(records["h0"], kind="stable"))  # take: ~8x faster than [] on records
    written = write_partitioned(shard.output, records, hash_partition(records["h0"], shard.partitions),
                                shard.partitions)
    return {**stats.as_dict(), **counts, "intermediate_bytes": written["bytes"]}


def hash_partition(h0: np.ndarray, partitions: int) -> np.ndarray:
    """floor(h0 / 2^64 * partitions): uniform for random hashes and monotone in h0."""
    return ((h0 >> np.uint64(32)) * np.uint64(partitions) >> np.uint64(32)).astype(np.int64)


@counts_cpu
def exact_reduce(shard: ReduceShard) -> dict[str, Any]:
    records = read_segment_from_all(shard.inputs, shard.partition, HASH_RECORD)
    # One sorted run per mapper file, in file order, each in (h0, ref, paragraph) order: a stable sort on
    # h0 merges the runs (timsort: cheap) into (h0, ref, paragraph) order.
    records = np.take(records, np.argsort(records["h0"], kind="stable"))
    same_h0 = records["h0"][1:] == records["h0"][:-1]
    if np.any(same_h0 & (records["h1"][1:] != records["h1"][:-1])):  # a 64-bit collision: order fully
        records = np.take(records, np.lexsort((records["para"], records["ref"], records["h1"], records["h0"])))
    first = np.ones(len(records), dtype=bool)
    if len(records) > 1:
        first[1:] = (records["h0"][1:] != records["h0"][:-1]) | (records["h1"][1:] != records["h1"][:-1])
    dups = np.empty(int((~first).sum()), dtype=DUP_RECORD)
    for name in DUP_RECORD.names:
        dups[name] = records[name][~first]
    file_of = (dups["ref"] >> np.uint64(LINE_BITS)).astype(np.int64)
    written = write_partitioned(shard.output, dups, file_of, shard.outputs, sort_order=("ref", "para"))
    return {"unique_units": int(first.sum()), "duplicate_units": len(dups), "intermediate_bytes": written["bytes"]}


@dataclass
class ExactWriteShard(Shard):
    file_index: int = 0
    reduce_files: list[str] = field(default_factory=list)
    skeleton: str = ""
    attribute_name: str = ""


@counts_cpu
def exact_write(shard: ExactWriteShard) -> dict[str, Any]:
    """Attribute rows from the map's skeleton (ids, sources) and the duplicates' spans: no document is
    read again."""
    skeleton = orjson.loads(read_segment_from_all([shard.skeleton], 0, BYTES).tobytes())
    dups = read_segment_from_all(shard.reduce_files, shard.file_index, DUP_RECORD)
    dups = np.take(dups, np.lexsort((dups["para"], dups["ref"])))
    lines = (dups["ref"] & np.uint64((1 << LINE_BITS) - 1)).astype(np.int64)
    cuts = np.flatnonzero(np.r_[True, lines[1:] != lines[:-1]]) if len(lines) else np.empty(0, dtype=np.int64)
    flagged = dict(zip(lines[cuts].tolist(), span_lists(dups["start"], dups["end"], cuts)))
    name = shard.attribute_name
    none = orjson.Fragment(b"[]")

    def rows() -> Iterator[bytes]:
        for doc_id, source, line in zip(skeleton["id"], skeleton["source"], skeleton["line"]):
            row: dict[str, Any] = {"id": doc_id, "attributes": {name: flagged.get(line, none)}}
            if source is not None:
                row["source"] = source
            yield orjson.dumps(row)

    with io.AtomicWriter(shard.output) as writer:
        write_rows(writer, rows())
    return {**skeleton["stats"], "documents_with_duplicates": len(flagged), "duplicate_units_flagged": len(dups)}


def span_lists(starts: np.ndarray, ends: np.ndarray, cuts: np.ndarray) -> list[orjson.Fragment]:
    """`[[start, end, 1.0], ...]` as JSON, one list per group of spans (groups begin at `cuts`): the bytes
    orjson writes for those lists of lists, made by one numpy serialisation instead of a Python list
    per span."""
    if not len(starts):
        return []
    table = np.empty((len(starts), 3), dtype=np.int64)
    table[:, 0], table[:, 1], table[:, 2] = starts, ends, 1
    # rows [s,e,1]: ",1]" is only ever the last element, and "]" only ever closes a row (or the whole list)
    blob = orjson.dumps(table, option=orjson.OPT_SERIALIZE_NUMPY).replace(b",1]", b",1.0]")
    closes = np.flatnonzero(np.frombuffer(blob, dtype=np.uint8) == ord("]"))[:-1]
    opens = np.r_[1, closes[:-1] + 2]  # each row after the first starts past "],"
    firsts = cuts.tolist()
    lasts = [*(c - 1 for c in firsts[1:]), len(starts) - 1]
    begin, end = opens[firsts].tolist(), (closes[lasts] + 1).tolist()
    return [orjson.Fragment(b"[" + blob[a:b] + b"]") for a, b in zip(begin, end)]
