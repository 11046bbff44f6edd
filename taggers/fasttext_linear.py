"""Batched prediction for fastText classifiers without character n-grams (quality, toxicity models).

A fastText classifier's scores are a function of `W_out · mean(input rows of the line)`. The output layer
is linear, so each input row can be projected once, at load time, onto the output rows:
`P = input @ W_outᵀ`, one small row per word or word-n-gram bucket (2 numbers for a 2-label softmax
model instead of `dim`). A line then costs one gather and one sum of `P` rows per word and n-gram: no
`dim`-wide vectors and a table that stays in cache. The model file is read through `mmap` and projected in
chunks, so a 2M-bucket model needs its projection (16 MB for 2 labels), not its 800 MB matrix, in memory.

The words of a batch come from `fasttext_words.split_batch` (fastText's separators, on bytes, keyed
with numpy); each distinct word is looked up once and cached with its row in the dictionary (-1 if
unknown) and its FNV-1a hash. As fastText's `Dictionary::getLine`: tokens that start with `__label__` are skipped,
a literal `</s>` ends the line, the end-of-line token is added, word n-grams hash the words' 32-bit
hashes (sign-extended, as fastText's int32 vector) with `h * 116049371 + next` modulo the bucket count,
through the pruning map of quantised models. Output as fastText's `predict(k=-1)` returns it: softmax
and one-vs-all/negative sampling give `p + 1e-5` (one-vs-all with fastText's 512-entry sigmoid table),
hierarchical softmax `∏(f + 1e-5)` along the Huffman path, labels below 1e-5 unreported (0).
Models with character n-grams (`maxn > 0`) are left to fastText's own batch prediction.
"""

from __future__ import annotations

import mmap
import struct
from itertools import repeat

import numpy as np

from taggers.fasttext_lid import EOS_KEY, huffman_paths
from taggers.fasttext_ngrams import FASTTEXT_MAGIC, _decode, _product_quantizer, _Reader
from taggers.fasttext_words import split_batch

EOS = b"</s>"
LABEL_PREFIX = b"__label__"
EPSILON = 1e-5
NGRAM_MULTIPLIER = np.uint64(116049371)
LOSSES = {1: "hs", 2: "ns", 3: "softmax", 4: "ova"}
CHUNK_ROWS = 1 << 16
CACHE_LIMIT = 2_000_000
VECTOR_BYTES = 24
_FNV_OFFSET, _FNV_PRIME = np.uint64(2166136261), np.uint64(16777619)
_U32 = np.uint64(0xFFFFFFFF)


def fnv1a(words: list[bytes]) -> np.ndarray:
    """fastText's `Dictionary::hash` (FNV-1a over signed chars) of every word, as uint32 in uint64.

    One numpy step per byte position over the words still that long, up to `VECTOR_BYTES`; the rare
    longer words finish in Python.
    """
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    data = np.frombuffer(b"".join(words), dtype=np.uint8)
    starts = np.cumsum(lengths) - lengths
    hashes = np.full(len(words), _FNV_OFFSET, dtype=np.uint64)
    signed = data.astype(np.int8).astype(np.int64).astype(np.uint64) & _U32
    alive = np.arange(len(words))
    for k in range(min(int(lengths.max()) if len(words) else 0, VECTOR_BYTES)):
        alive = alive[lengths[alive] > k]
        hashes[alive] = ((hashes[alive] ^ signed[starts[alive] + k]) * _FNV_PRIME) & _U32
    for i in np.flatnonzero(lengths > VECTOR_BYTES).tolist():
        h = int(hashes[i])
        for byte in words[i][VECTOR_BYTES:]:
            h = ((h ^ (byte | 0xFFFFFF00 if byte >= 128 else byte)) * 16777619) & 0xFFFFFFFF
        hashes[i] = h
    return hashes


class _MappedReader(_Reader):
    """`fasttext_ngrams`' reader over a memory map (which has `find`, not `index`)."""

    def cstring(self) -> bytes:
        end = self.data.find(b"\0", self.pos)
        value = self.data[self.pos : end]
        self.pos = end + 1
        return value


class LinearFastText:
    """A fastText classifier file (v12, `.bin` or `.ftz`, `maxn` = 0) as projected input rows."""

    def __init__(self, path: str):
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            self._load(path, mm)
        self._reset_cache()
        self._grow(1024)

    @staticmethod
    def supports(path: str) -> bool:
        """True for a supervised v12 model without character n-grams."""
        try:
            with open(path, "rb") as fh:
                head = fh.read(64)
            magic, version, *args = struct.unpack_from("<ii12id", head)
        except (OSError, struct.error):
            return False
        maxn, model = args[10], args[7]
        return magic == FASTTEXT_MAGIC and version == 12 and model == 3 and maxn <= 0 and args[6] in LOSSES

    def _load(self, path: str, data: mmap.mmap) -> None:
        reader = _MappedReader(data)
        magic, version = reader.unpack("ii")
        if magic != FASTTEXT_MAGIC or version != 12:
            raise ValueError(f"{path}: not a fastText v12 model")
        (self.dim, _, _, _, _, self.word_ngrams, loss, _, self.buckets, _, maxn, _, _) = reader.unpack("iiiiiiiiiiiid")
        if maxn > 0:
            raise ValueError(f"{path}: character n-grams (maxn={maxn}) are not supported here")
        self.loss = LOSSES[loss]
        size, self.nwords, nlabels, _, prune_size = reader.unpack("iiiqq")
        self.word_ids: dict[bytes, int] = {}
        self.labels: list[str] = []
        counts: list[int] = []
        entry, find, pos = struct.Struct("<qb"), data.find, reader.pos
        for i in range(size):  # word, NUL, int64 count, int8 type
            end = find(b"\0", pos)
            word = data[pos:end]
            count, kind = entry.unpack_from(data, end + 1)
            pos = end + 10
            if kind == 0:
                self.word_ids[word] = i
            else:
                self.labels.append(word.decode("utf-8", "replace"))
                counts.append(count)
        reader.pos = pos
        self.bucket_rows: np.ndarray | None = None  # bucket -> input row, -1 pruned; None: not pruned
        if prune_size > 0:
            pairs = reader.array(np.int32, 2 * prune_size).reshape(-1, 2).astype(np.int64)
            self.bucket_rows = np.full(self.buckets, -1, dtype=np.int64)
            self.bucket_rows[pairs[:, 0]] = self.nwords + pairs[:, 1]
        self.ngrams = self.word_ngrams > 1 and prune_size != 0 and self.buckets > 0
        input_rows = self._matrix(reader)  # a function of a row range, [rows, dim] float32
        outputs = self._matrix(reader)
        total_out = outputs[1]
        output = outputs[0](0, total_out).astype(np.float64)
        if self.loss == "hs":
            self.right, self.left = huffman_paths(counts)
            output = output[: max(len(self.labels) - 1, 1)]
        rows = input_rows[1]
        # [output row, input row]: one contiguous column of scores per output row, for `np.bincount`
        self.projected_by_column = np.empty((output.shape[0], rows), dtype=np.float64)
        output32 = output.astype(np.float32)
        for start in range(0, rows, CHUNK_ROWS):
            stop = min(rows, start + CHUNK_ROWS)
            self.projected_by_column[:, start:stop] = (output32 @ input_rows[0](start, stop).T)
        self.eos_row = self.word_ids.get(EOS, -1)

    @staticmethod
    def _matrix(reader: _Reader):
        """(rows(start, stop) -> float32 [stop - start, dim], number of rows) of the next matrix in the file."""
        if not reader.unpack("?"):
            rows, dim = reader.unpack("qq")
            offset = reader.pos
            reader.pos += rows * dim * 4
            data = reader.data

            def dense(start: int, stop: int) -> np.ndarray:
                # copied: rows at an odd file offset are unaligned, which keeps BLAS off the product
                return np.frombuffer(data, dtype=np.float32, count=(stop - start) * dim,
                                     offset=offset + start * dim * 4).reshape(stop - start, dim).copy()

            return dense, rows
        qnorm, rows, dim, codesize = reader.unpack("?qqi")
        codes = reader.array(np.uint8, codesize).copy()
        pq = _product_quantizer(reader)
        pq = (*pq[:4], pq[4].copy())
        norms = None
        if qnorm:
            norm_codes = reader.array(np.uint8, rows).copy()
            norm_pq = _product_quantizer(reader)
            norms = norm_pq[4].copy()[norm_codes.astype(np.int64)]
        per_row = codesize // rows if rows else 0

        def quantised(start: int, stop: int) -> np.ndarray:
            block = _decode(codes[start * per_row: stop * per_row], pq, stop - start)
            return block * norms[start:stop, None] if norms is not None else block

        return quantised, rows

    def _grow(self, size: int) -> None:
        """Room for `size` cached words (rows, hashes and word flags kept)."""
        rows, hashes, is_word = np.full(size, -1, dtype=np.int64), np.zeros(size, np.uint64), np.zeros(size, bool)
        if self.count:
            rows[: self.count] = self.rows[: self.count]
            hashes[: self.count] = self.hashes[: self.count]
            is_word[: self.count] = self.is_word[: self.count]
        self.rows, self.hashes, self.is_word = rows, hashes, is_word

    def _reset_cache(self) -> None:
        self.sorted_keys = np.zeros(0, dtype=np.int64)  # word keys of `split_batch`, sorted
        self.sorted_slots = np.zeros(0, dtype=np.int64)  # their cache slots
        self.long_words: dict[bytes, int] = {}  # words too long for a key
        self.count = 0

    def _add(self, words: list[bytes]) -> np.ndarray:
        """Cache (row, hash, is a word) of new distinct words; their slots."""
        first, needed = self.count, self.count + len(words)
        if needed > len(self.rows):
            self._grow(max(needed, 2 * len(self.rows)))
        self.rows[first:needed] = list(map(self.word_ids.get, words, repeat(-1)))
        self.hashes[first:needed] = fnv1a(words)
        self.is_word[first:needed] = ~np.fromiter(map(bytes.startswith, words, repeat(LABEL_PREFIX)), bool, len(words))
        self.count = needed
        return np.arange(first, needed)

    def _words(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cache slot of every word fastText reads, its text, texts already closed by a literal `</s>`).

        Words and their 64-bit keys come from `fasttext_words.split_batch` (fastText's separators, on
        bytes, vectorised); the cache is consulted once per distinct key of the batch. A literal `</s>`
        word is read as the end of the line and what follows it is ignored, as in fastText.
        """
        n = len(texts)
        if self.count > CACHE_LIMIT:
            self._reset_cache()
        batch = split_batch(texts)
        unique, first, inverse = np.unique(batch.keys, return_index=True, return_inverse=True)
        keys = self.sorted_keys
        at = np.minimum(np.searchsorted(keys, unique), max(len(keys) - 1, 0))
        hit = keys[at] == unique if len(keys) else np.zeros(len(unique), dtype=bool)
        slots = np.where(hit, self.sorted_slots[at] if len(keys) else -1, -1)
        new = np.flatnonzero(~hit & (unique >= 0))
        if len(new):
            data, picked = batch.data, first[new]
            words = [data[a:b] for a, b in zip(batch.starts[picked].tolist(), batch.ends[picked].tolist())]
            slots[new] = fresh = self._add(words)
            where = np.searchsorted(keys, unique[new])
            self.sorted_keys = np.insert(keys, where, unique[new])
            self.sorted_slots = np.insert(self.sorted_slots, where, fresh)
        slots = slots[inverse.ravel()]
        unhashed = np.flatnonzero(batch.keys < 0)  # very long words: keyed by their bytes
        if len(unhashed):
            words = [batch.data[batch.starts[i]: batch.ends[i]] for i in unhashed.tolist()]
            long_words = self.long_words
            fresh_words = sorted(set(words).difference(long_words))
            if fresh_words:
                long_words.update(zip(fresh_words, self._add(fresh_words).tolist()))
            slots[unhashed] = [long_words[w] for w in words]
        text_of = batch.text_of_word
        closed = np.zeros(n, dtype=bool)
        literal = np.flatnonzero(batch.keys == EOS_KEY)
        if len(literal):
            texts_cut, first_literal = np.unique(text_of[literal], return_index=True)
            cut = np.full(n, len(slots))
            cut[texts_cut] = literal[first_literal]
            read = np.arange(len(slots)) <= cut[text_of]
            slots, text_of = slots[read], text_of[read]
            closed[texts_cut] = True
        return slots, text_of, closed

    def values(self, texts: list[str]) -> np.ndarray:
        """[text, label] as fastText's `predict(text, k=-1)` returns them (0: not reported)."""
        n = len(texts)
        out = np.zeros((n, len(self.labels)))
        if n == 0:
            return out
        slots, text_of, closed = self._words(texts)
        rows, hashes, is_word = self.rows[slots], self.hashes[slots], self.is_word[slots]
        keep = is_word
        rows, hashes, text_of = rows[keep], hashes[keep], text_of[keep]
        ends = np.cumsum(np.bincount(text_of, minlength=n))
        open_texts = np.flatnonzero(~closed)
        eos_hash = fnv1a([EOS])[0]
        rows = np.insert(rows, ends[open_texts], self.eos_row)
        hashes = np.insert(hashes, ends[open_texts], eos_hash)
        text_of = np.insert(text_of, ends[open_texts], open_texts)
        ids, owners = [rows[rows >= 0]], [text_of[rows >= 0]]
        if self.ngrams:
            # int32 hashes sign-extended to 64 bits, as fastText's `uint64_t h = hashes[i]`
            signed = np.where(hashes >= np.uint64(1 << 31), hashes | np.uint64(0xFFFFFFFF00000000), hashes)
            h = signed.copy()
            for g in range(2, self.word_ngrams + 1):
                count = len(signed) - (g - 1)
                if count <= 0:
                    break
                h = h[:count] * NGRAM_MULTIPLIER + signed[g - 1:]
                same = text_of[:count] == text_of[g - 1:]
                bucket = (h[same] % np.uint64(self.buckets)).astype(np.int64)
                ngram_rows = self.bucket_rows[bucket] if self.bucket_rows is not None else self.nwords + bucket
                kept = ngram_rows >= 0
                ids.append(ngram_rows[kept])
                owners.append(text_of[:count][same][kept])
        all_ids, all_owners = np.concatenate(ids), np.concatenate(owners)
        sizes = np.bincount(all_owners, minlength=n).astype(np.float64)
        scores = np.stack([np.bincount(all_owners, weights=column[all_ids], minlength=n)
                           for column in self.projected_by_column], axis=1)
        present = sizes > 0  # fastText predicts nothing for a line without any known row
        scores = scores[present] / sizes[present, None]
        out[present] = self._output(scores)
        return out

    def _output(self, scores: np.ndarray) -> np.ndarray:
        if self.loss == "softmax":
            z = np.exp(scores - scores.max(axis=1, keepdims=True))
            return z / z.sum(axis=1, keepdims=True) + EPSILON
        if self.loss in ("ova", "ns"):
            return _table_sigmoid(scores) + EPSILON
        f = 1.0 / (1.0 + np.exp(-scores))
        log_p = np.log(f + EPSILON) @ self.right.T + np.log(1.0 - f + EPSILON) @ self.left.T
        values = np.exp(log_p)
        values[log_p < np.log(EPSILON)] = 0.0
        return values


_SIGMOID_TABLE = (1.0 / (1.0 + np.exp(-((np.arange(513, dtype=np.float64) * 16.0) / 512 - 8.0)))).astype(np.float32)


def _table_sigmoid(x: np.ndarray) -> np.ndarray:
    """fastText's `Loss::sigmoid`: a 512-step table on [-8, 8], 0 and 1 outside."""
    x32 = x.astype(np.float32)
    index = ((x32 + np.float32(8)) * np.float32(512) / np.float32(8) / np.float32(2)).astype(np.int64)
    out = _SIGMOID_TABLE[np.clip(index, 0, 512)].astype(np.float64)
    out[x32 < -8] = 0.0
    out[x32 > 8] = 1.0
    return out
