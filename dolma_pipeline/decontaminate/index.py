"""The evaluation index: built once from the evaluation sets, saved as files every worker memory-maps.

Stage 1 (`index_eval_file`, one shard per evaluation file on the executor) keeps the normalised
paragraphs of at least `min_words` words and, for n-gram mode, the normalised words of each document.
Stage 2 (`build_index`, once) merges them:

- paragraphs: XXH3-128 digests (dedupe's paragraph hashing, `exact.UNIT_HASH`) sorted by (h0, h1), a 64-bit mask of the
  evaluation sets holding each paragraph, and the paragraph texts themselves, so every hit is verified
  against the text: exact mode has no false positives, whatever the hash width;
- n-grams: the evaluation vocabulary (a training word outside it cannot be part of a match), every
  distinct n-gram as a row of word ids, sorted by a 64-bit key of the row; a hit is verified by comparing
  the rows, so it is exact too;
- with `bloom_filter`, one Bloom filter per evaluation set in place of the sorted arrays (no texts kept);
  paragraph filters are filled one evaluation file at a time, so the evaluation set never has to fit in
  memory (n-gram mode still gathers the distinct n-grams first).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from dolma_pipeline import io
from dolma_pipeline.decontaminate.bloom import BloomFilter
from dolma_pipeline.decontaminate.config import BloomFilterConfig, DecontaminateSection
from dolma_pipeline.decontaminate.normalize import has_min_words, normalize_paragraph, words
from dolma_pipeline.dedupe import exact
from dolma_pipeline.dedupe.plan import counts_cpu
from dolma_pipeline.errors import DataFormatError
from dolma_pipeline.executor import Shard
from dolma_pipeline.hashing import mix64
from dolma_pipeline.reader import ReadStats, read_documents

log = logging.getLogger(__name__)

META = "index.json"
_BASE = np.uint64(0x9E3779B97F4A7C15)
_SECOND = np.uint64(0xC2B2AE3D27D4EB4F)


# -------------------------------------------------------------------------------------- hashing helpers
def paragraph_digests(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(h0, h1) of each text with dedupe's paragraph hashing (texts hold no separator and are not empty)."""
    if not texts:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.uint64)
    counts: dict[str, int] = {"units_considered": 0, "skipped_empty": 0}
    rules = exact.UnitRules("paragraphs", separator="\n")
    kept, blob, _, _ = exact.hash_units({}, "\n".join(texts), rules, [], counts)
    assert len(kept) == len(texts)
    pairs = np.frombuffer(blob, dtype="<u8").reshape(len(texts), -1)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


def window_keys(ids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, key) of every window of `n` ids none of which is negative (-1: a word outside the index)."""
    if len(ids) < n:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint64)
    bad = np.concatenate(([0], np.cumsum(ids < 0)))
    starts = np.flatnonzero(bad[n:] == bad[:-n])
    values = ids.astype(np.uint64)
    acc = np.zeros(len(starts), dtype=np.uint64)
    for j in range(n):  # Horner's rule over the window, modulo 2^64
        acc = acc * _BASE + values[starts + j] + np.uint64(1)
    return starts, mix64(acc)


def bloom_words(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit words of a 64-bit n-gram key, for the Bloom filter's double hashing."""
    return keys, mix64(keys ^ _SECOND)


# ------------------------------------------------------------------------------------- stage 1: eval map
@dataclass
class EvalShard(Shard):
    set_index: int = 0
    section: DecontaminateSection = field(default_factory=DecontaminateSection)
    on_error: str = "fail"


@counts_cpu
def index_eval_file(shard: EvalShard) -> dict[str, Any]:
    """The normalised long paragraphs and the normalised words of one evaluation file."""
    section = shard.section
    stats = ReadStats()
    counts = {"eval_paragraphs": 0, "eval_paragraphs_short": 0, "eval_paragraphs_blank": 0}
    paragraphs: dict[str, None] = {}  # insertion-ordered set
    doc_words: list[list[str]] = []
    try:
        for doc in read_documents(shard.input, shard.on_error, stats):
            if section.paragraphs is not None:
                pieces, _ = exact.paragraph_pieces(doc.text, section.paragraphs.paragraph_separator)
                for piece in pieces:
                    counts["eval_paragraphs"] += 1
                    if not has_min_words(piece, section.paragraphs.min_words):
                        counts["eval_paragraphs_short"] += 1
                        continue
                    normalised = normalize_paragraph(piece, section.normalize)
                    if any(map(str.isalnum, normalised)):  # no letter or digit: never evidence (Dolma drops these too)
                        paragraphs[normalised] = None
                    else:
                        counts["eval_paragraphs_blank"] += 1
            if section.ngrams is not None:
                doc_words.append(words(doc.text, section.normalize))
    except DataFormatError as e:
        if shard.on_error == "fail":
            raise
        return {"skipped_file": True, "errors": [*stats.errors, f"file skipped: {e}"],
                "lines_skipped": stats.lines_skipped}
    blob = {"set_index": shard.set_index, "paragraphs": list(paragraphs), "words": doc_words}
    with io.AtomicWriter(shard.output) as out:
        out.write(orjson.dumps(blob))
    return {**stats.as_dict(), **counts}


# ------------------------------------------------------------------------------------ stage 2: merging
def _eval_blobs(paths: list[str]) -> Iterator[dict]:
    for path in paths:
        with io.open_raw(path) as fh:
            yield orjson.loads(fh.read())


def _save(index_dir: str, name: str, array: np.ndarray) -> None:
    with io.AtomicWriter(io.join(index_dir, name)) as out:
        np.save(out, np.ascontiguousarray(array), allow_pickle=False)


def build_index(eval_outputs: list[str], set_names: list[str], section: DecontaminateSection,
                bloom: BloomFilterConfig | None, index_dir: str, fingerprint: str) -> dict[str, Any]:
    """Merge the evaluation files' outputs into the index files under `index_dir`; returns its metadata."""
    meta: dict[str, Any] = {"fingerprint": fingerprint, "sets": set_names, "kind": "bloom" if bloom else "exact"}
    if section.paragraphs is not None and bloom is not None:
        meta["paragraphs"] = _stream_paragraph_blooms(eval_outputs, set_names, bloom, index_dir)
    elif section.paragraphs is not None:
        masks: dict[str, int] = {}
        for blob in _eval_blobs(eval_outputs):
            bit = 1 << blob["set_index"]
            for text in blob["paragraphs"]:
                masks[text] = masks.get(text, 0) | bit
        meta["paragraphs"] = _build_paragraphs(masks, set_names, index_dir)
    if section.ngrams is not None:
        meta["ngrams"] = _build_ngrams(eval_outputs, set_names, section.ngrams.n, bloom, index_dir)
    io.write_text(io.join(index_dir, META), orjson.dumps(meta, option=orjson.OPT_INDENT_2).decode())
    return meta


def _stream_paragraph_blooms(eval_outputs: list[str], set_names: list[str], config: BloomFilterConfig,
                             index_dir: str) -> dict[str, Any]:
    """Bloom filters filled one evaluation file at a time: memory is the filters and one file's paragraphs,
    never the whole evaluation set. Sized by the paragraphs each file kept (a paragraph in two files of a
    set counts twice: the filter is a little larger than needed, never smaller)."""
    counts = [0] * len(set_names)
    shortest, longest = None, 0
    for blob in _eval_blobs(eval_outputs):
        counts[blob["set_index"]] += len(blob["paragraphs"])
        for length in map(len, blob["paragraphs"]):
            shortest = length if shortest is None else min(shortest, length)
            longest = max(longest, length)
    blooms = [BloomFilter.sized(max(n, config.estimated_doc_count), config.desired_false_positive_rate,
                                config.size_in_bytes) for n in counts]
    for blob in _eval_blobs(eval_outputs):
        blooms[blob["set_index"]].add(*paragraph_digests(blob["paragraphs"]))
    info: dict[str, Any] = {"count": sum(counts), "per_set": dict(zip(set_names, counts)),
                            "min_chars": shortest or 1, "max_chars": longest, "bloom": {}}
    for name, bloom, n in zip(set_names, blooms, counts):
        bloom.save(io.join(index_dir, f"paragraphs.bloom.{name}.bin"))
        info["bloom"][name] = {"bits": bloom.m, "hashes": bloom.k, "keys": n, "fill_ratio": round(bloom.fill_ratio, 6),
                               "false_positive_rate": bloom.false_positive_rate}
    return info


def _per_set(masks: np.ndarray, set_names: list[str]) -> dict[str, int]:
    return {name: int(((masks >> np.uint64(i)) & np.uint64(1)).sum()) for i, name in enumerate(set_names)}


def _build_paragraphs(masks: dict[str, int], set_names: list[str], index_dir: str) -> dict[str, Any]:
    texts = list(masks)
    h0, h1 = paragraph_digests(texts)
    sets = np.fromiter(masks.values(), dtype=np.uint64, count=len(texts))
    lengths = list(map(len, texts))
    info: dict[str, Any] = {"count": len(texts), "per_set": _per_set(sets, set_names),
                            "min_chars": min(lengths, default=1), "max_chars": max(lengths, default=0)}
    order = np.lexsort((h1, h0))
    encoded = [texts[i].encode("utf-8", "surrogatepass") for i in order.tolist()]
    offsets = np.zeros(len(encoded) + 1, dtype=np.uint64)
    offsets[1:] = np.cumsum(np.fromiter(map(len, encoded), dtype=np.uint64, count=len(encoded)))
    for name, array in (("paragraphs.h0.npy", h0[order]), ("paragraphs.h1.npy", h1[order]),
                        ("paragraphs.sets.npy", sets[order]), ("paragraphs.offsets.npy", offsets),
                        ("paragraphs.text.npy", np.frombuffer(b"".join(encoded), dtype=np.uint8))):
        _save(index_dir, name, array)
    return info


def _build_ngrams(eval_outputs: list[str], set_names: list[str], n: int, bloom: BloomFilterConfig | None,
                  index_dir: str) -> dict[str, Any]:
    vocab: dict[str, int] = {}
    rows, row_sets, short = [], [], 0
    for blob in _eval_blobs(eval_outputs):
        for doc_words in blob["words"]:
            if len(doc_words) < n:
                short += 1
                continue
            ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in doc_words), dtype=np.int64,
                              count=len(doc_words))
            windows = np.lib.stride_tricks.sliding_window_view(ids, n)
            rows.append(windows)
            row_sets.append(np.full(len(windows), 1 << blob["set_index"], dtype=np.uint64))
    # ids in order of first appearance depend only on the (sorted) inputs: deterministic
    all_rows = np.concatenate(rows).astype(np.int32) if rows else np.empty((0, n), dtype=np.int32)
    all_sets = np.concatenate(row_sets) if row_sets else np.empty(0, dtype=np.uint64)
    unique, inverse = np.unique(all_rows, axis=0, return_inverse=True) if len(all_rows) else (all_rows, all_sets)
    sets = np.zeros(len(unique), dtype=np.uint64)
    np.bitwise_or.at(sets, np.asarray(inverse, dtype=np.int64).reshape(-1), all_sets)
    keys = np.empty(0, dtype=np.uint64)
    if len(unique):
        flat = np.full(len(unique) * (n + 1), -1, dtype=np.int64)  # rows separated by one unknown word
        flat.reshape(len(unique), n + 1)[:, :n] = unique
        starts, keys = window_keys(flat, n)
        assert len(keys) == len(unique) and np.array_equal(starts, np.arange(len(unique)) * (n + 1))
    info: dict[str, Any] = {"n": n, "count": len(unique), "vocabulary": len(vocab), "documents_shorter_than_n": short,
                            "per_set": _per_set(sets, set_names)}
    with io.AtomicWriter(io.join(index_dir, "ngrams.vocab.txt")) as out:
        out.write("\n".join(vocab).encode("utf-8", "surrogatepass"))
    if bloom is not None:
        info["bloom"] = _build_blooms("ngrams", *bloom_words(keys), sets, set_names, bloom, index_dir)
        return info
    order = np.argsort(keys, kind="stable")
    for name, array in (("ngrams.keys.npy", keys[order]), ("ngrams.ids.npy", unique[order]),
                        ("ngrams.sets.npy", sets[order])):
        _save(index_dir, name, array)
    return info


def _build_blooms(kind: str, h0: np.ndarray, h1: np.ndarray, sets: np.ndarray, set_names: list[str],
                  config: BloomFilterConfig, index_dir: str) -> dict[str, Any]:
    out = {}
    for i, name in enumerate(set_names):
        mine = ((sets >> np.uint64(i)) & np.uint64(1)).astype(bool)
        size = max(int(mine.sum()), config.estimated_doc_count)
        bloom = BloomFilter.sized(size, config.desired_false_positive_rate, config.size_in_bytes)
        bloom.add(h0[mine], h1[mine])
        bloom.save(io.join(index_dir, f"{kind}.bloom.{name}.bin"))
        out[name] = {"bits": bloom.m, "hashes": bloom.k, "keys": int(mine.sum()), "fill_ratio": round(bloom.fill_ratio, 6),
                     "false_positive_rate": bloom.false_positive_rate}
    return out


# ------------------------------------------------------------------------------------------- loading
@dataclass
class ParagraphIndex:
    """Sorted digests with set masks and texts (exact), or one Bloom filter per set."""

    h0: np.ndarray | None = None
    h1: np.ndarray | None = None
    sets: np.ndarray | None = None
    offsets: np.ndarray | None = None
    text: np.ndarray | None = None
    blooms: list[BloomFilter] | None = None

    def lookup(self, h0: np.ndarray, h1: np.ndarray, text_of: Callable[[int], str] | None = None) -> np.ndarray:
        """The set mask of every query (0: not evaluation text); an exact candidate is a hit only when its
        text, `text_of(query number)`, is the evaluation paragraph's."""
        masks = np.zeros(len(h0), dtype=np.uint64)
        if self.blooms is not None:
            for i, bloom in enumerate(self.blooms):
                masks[bloom.contains(h0, h1)] |= np.uint64(1 << i)
            return masks
        assert self.h0 is not None and self.h1 is not None and self.sets is not None
        if not len(self.h0) or not len(h0):
            return masks
        pos = np.minimum(np.searchsorted(self.h0, h0), len(self.h0) - 1)
        for q in np.flatnonzero(self.h0[pos] == h0).tolist():
            p = int(pos[q])
            while p < len(self.h0) and self.h0[p] == h0[q]:
                if self.h1[p] == h1[q] and (text_of is None or self.text_at(p) == text_of(q)):
                    masks[q] = self.sets[p]
                    break
                p += 1
        return masks

    def text_at(self, p: int) -> str:
        assert self.offsets is not None and self.text is not None
        return self.text[int(self.offsets[p]): int(self.offsets[p + 1])].tobytes().decode("utf-8", "surrogatepass")


@dataclass
class NgramIndex:
    vocab: dict[str, int]
    n: int
    keys: np.ndarray | None = None
    ids: np.ndarray | None = None
    sets: np.ndarray | None = None
    blooms: list[BloomFilter] | None = None

    def lookup(self, windows: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(set mask, index position) of every window (rows of n ids); mask 0 when absent.

        Under a Bloom filter the position is the window's own key (positions then name the n-gram)."""
        masks = np.zeros(len(keys), dtype=np.uint64)
        if self.blooms is not None:
            h0, h1 = bloom_words(keys)
            for i, bloom in enumerate(self.blooms):
                masks[bloom.contains(h0, h1)] |= np.uint64(1 << i)
            return masks, keys.astype(np.int64)
        assert self.keys is not None and self.ids is not None and self.sets is not None
        positions = np.full(len(keys), -1, dtype=np.int64)
        if not len(self.keys) or not len(keys):
            return masks, positions
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        candidates = np.flatnonzero(self.keys[pos] == keys)
        same = (self.ids[pos[candidates]] == windows[candidates]).all(axis=1)
        found = candidates[same]  # equal keys of different rows (a 2^-64 event) would be missed: see below
        masks[found] = self.sets[pos[found]]
        positions[found] = pos[found]
        for q in candidates[~same].tolist():  # scan the run of equal keys for the matching row
            p = int(pos[q]) + 1
            while p < len(self.keys) and self.keys[p] == keys[q]:
                if (self.ids[p] == windows[q]).all():
                    masks[q], positions[q] = self.sets[p], p
                    break
                p += 1
        return masks, positions


@dataclass
class Index:
    meta: dict[str, Any]
    paragraphs: ParagraphIndex | None
    ngrams: NgramIndex | None


_LOADED: dict[tuple[str, str], Index] = {}


def load_index(index_dir: str, fingerprint: str) -> Index:
    """The index under a local `index_dir`, memory-mapped; loaded once per worker process."""
    key = (index_dir, fingerprint)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = _load(index_dir, fingerprint)
    return _LOADED[key]


def _load(index_dir: str, fingerprint: str) -> Index:
    meta = orjson.loads(io.read_text(os.path.join(index_dir, META)))
    if meta.get("fingerprint") != fingerprint:
        raise DataFormatError(os.path.join(index_dir, META), None, "the index belongs to another configuration")

    def array(name: str) -> np.ndarray:
        return np.load(os.path.join(index_dir, name), mmap_mode="r", allow_pickle=False)

    def blooms(kind: str) -> list[BloomFilter]:
        return [BloomFilter.load(os.path.join(index_dir, f"{kind}.bloom.{name}.bin")) for name in meta["sets"]]

    paragraphs = ngrams = None
    bloom = meta["kind"] == "bloom"
    if "paragraphs" in meta:
        paragraphs = ParagraphIndex(blooms=blooms("paragraphs")) if bloom else ParagraphIndex(
            array("paragraphs.h0.npy"), array("paragraphs.h1.npy"), array("paragraphs.sets.npy"),
            array("paragraphs.offsets.npy"), array("paragraphs.text.npy"))
    if "ngrams" in meta:
        with open(os.path.join(index_dir, "ngrams.vocab.txt"), "rb") as fh:
            vocab_words = fh.read().decode("utf-8", "surrogatepass").split("\n") if meta["ngrams"]["vocabulary"] else []
        vocab = dict(zip(vocab_words, range(len(vocab_words))))
        n = meta["ngrams"]["n"]
        ngrams = NgramIndex(vocab, n, blooms=blooms("ngrams")) if bloom else NgramIndex(
            vocab, n, array("ngrams.keys.npy"), array("ngrams.ids.npy"), array("ngrams.sets.npy"))
    return Index(meta, paragraphs, ngrams)
