"""Vectorised fastText input vectors for many new words at once (the cold path of `fasttext_lid`).

fastText's `get_subwords` derives each word's character n-grams one string at a time (~0.1 ms per word);
here the model file is read once (dictionary, pruned-bucket map, input matrix de-quantised to a dense
float array) and the n-gram hashes of a whole batch of words are computed with numpy: FNV-1a over the UTF-8
bytes of `<word>`, n = minn..maxn characters, `bucket = hash % buckets`, then the pruning map, exactly as
fastText's `Dictionary::computeSubwords`. Supports the binary format version 12 (`.bin` and `.ftz`).
"""

from __future__ import annotations

import struct

import numpy as np

FASTTEXT_MAGIC = 793712314
KSUB = 256


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def unpack(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype, count: int) -> np.ndarray:
        out = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.pos)
        self.pos += out.nbytes
        return out

    def cstring(self) -> bytes:
        end = self.data.index(b"\0", self.pos)
        value = self.data[self.pos : end]
        self.pos = end + 1
        return value


def _product_quantizer(reader: _Reader) -> tuple[int, int, int, int, np.ndarray]:
    dim, nsubq, dsub, lastdsub = reader.unpack("iiii")
    return dim, nsubq, dsub, lastdsub, reader.array(np.float32, dim * KSUB)


def _decode(codes: np.ndarray, pq: tuple[int, int, int, int, np.ndarray], rows: int) -> np.ndarray:
    """fastText's `ProductQuantizer::addcode` for every row: [rows, dim]."""
    dim, nsubq, dsub, lastdsub, centroids = pq
    codes = codes.reshape(rows, nsubq)
    out = np.zeros((rows, dim), dtype=np.float32)
    for m in range(nsubq):
        width = lastdsub if m == nsubq - 1 else dsub
        table = centroids[m * KSUB * dsub : m * KSUB * dsub + KSUB * width].reshape(KSUB, width)
        out[:, m * dsub : m * dsub + width] = table[codes[:, m]]
    return out


class NgramModel:
    """Words and input rows of a fastText model file, for computing word vectors in bulk."""

    def __init__(self, path: str):
        with open(path, "rb") as f:
            reader = _Reader(f.read())
        magic, version = reader.unpack("ii")
        if magic != FASTTEXT_MAGIC or version != 12:
            raise ValueError(f"{path}: not a fastText v12 model")
        (self.dim, _, _, _, _, self.word_ngrams, _, _, self.buckets, self.minn, self.maxn, _,
         _) = reader.unpack("iiiiiiiiiiiid")
        size, self.nwords, _, _, prune_size = reader.unpack("iiiqq")
        self.word_ids: dict[str, int] = {}
        for i in range(size):
            word = reader.cstring()
            _, kind = reader.unpack("qb")
            if kind == 0:
                self.word_ids[word.decode("utf-8", "replace")] = i
        self.bucket_rows: np.ndarray | None = None  # bucket -> row, -1 pruned; None: no pruning
        if prune_size > 0:
            pairs = reader.array(np.int32, 2 * prune_size).reshape(-1, 2)
            self.bucket_rows = np.full(self.buckets, -1, dtype=np.int64)
            self.bucket_rows[pairs[:, 0]] = self.nwords + pairs[:, 1].astype(np.int64)
        self.no_ngrams = prune_size == 0
        quantised = reader.unpack("?")
        if quantised:
            qnorm, rows, dim, codesize = reader.unpack("?qqi")
            codes = reader.array(np.uint8, codesize)
            pq = _product_quantizer(reader)
            matrix = _decode(codes, pq, rows)
            if qnorm:
                norm_codes = reader.array(np.uint8, rows)
                norm_pq = _product_quantizer(reader)
                matrix *= norm_pq[4][norm_codes.astype(np.int64)][:, None]
        else:
            rows, dim = reader.unpack("qq")
            matrix = reader.array(np.float32, rows * dim).reshape(rows, dim)
        self.input = matrix.astype(np.float64)
        self.input_by_dim = np.ascontiguousarray(self.input.T)

    def word_sums(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(sum of input rows, number of rows) per word, as fastText's `getSubwords` would select them."""
        count = len(words)
        ids: list[np.ndarray] = []
        owners: list[np.ndarray] = []
        known = [(i, self.word_ids[w]) for i, w in enumerate(words) if w in self.word_ids]
        if known:
            owners.append(np.array([i for i, _ in known], dtype=np.int64))
            ids.append(np.array([j for _, j in known], dtype=np.int64))
        # EOS has no n-grams (fastText skips them for "</s>").
        ngram_words = [i for i, w in enumerate(words) if w != "</s>"]
        if ngram_words and not self.no_ngrams:
            word_owner, rows = self._ngram_rows([words[i] for i in ngram_words])
            owners.append(np.asarray(ngram_words, dtype=np.int64)[word_owner])
            ids.append(rows)
        if not ids:
            return np.zeros((count, self.dim)), np.zeros(count)
        all_ids, all_owners = np.concatenate(ids), np.concatenate(owners)
        # per dimension, rows added in order (what np.add.at does, bit for bit, at a fraction of its cost)
        sums = np.stack([np.bincount(all_owners, weights=column[all_ids], minlength=count)
                         for column in self.input_by_dim], axis=1)
        return sums, np.bincount(all_owners, minlength=count).astype(np.float64)

    def _ngram_rows(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(index of the word, input row) for every kept character n-gram of `<word>`."""
        ascii_words = [i for i, w in enumerate(words) if w.isascii()]
        if len(ascii_words) == len(words):
            return self._ngram_rows_of(words, ascii=True)
        other_words = [i for i, w in enumerate(words) if not w.isascii()]
        owners, rows = [], []
        for subset, ascii in ((ascii_words, True), (other_words, False)):
            if subset:
                owner, row = self._ngram_rows_of([words[i] for i in subset], ascii)
                owners.append(np.asarray(subset, dtype=np.int64)[owner])
                rows.append(row)
        return np.concatenate(owners), np.concatenate(rows)

    def _ngram_rows_of(self, words: list[str], ascii: bool) -> tuple[np.ndarray, np.ndarray]:
        encoded = [("<" + w + ">").encode("utf-8", "replace") for w in words]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        word_of_byte = np.repeat(np.arange(len(words)), lengths)
        word_end = np.cumsum(lengths)[word_of_byte]  # exclusive end byte of each byte's word
        if ascii:
            return self._ascii_ngram_rows(data, word_of_byte, word_end)
        char_start = (data & 0xC0) != 0x80
        starts = char_start.nonzero()[0]
        # byte offset where the next character begins, for every character start
        next_start = np.append(starts[1:], len(data))
        owner_of_start = word_of_byte[starts]
        end_of_word = word_end[starts]
        # signed-char FNV-1a, as fastText's Dictionary::hash
        signed = data.astype(np.int8).astype(np.int64) & 0xFFFFFFFF
        hashes = np.full(len(starts), 2166136261, dtype=np.uint64)
        position = starts.copy()  # next byte to hash for each n-gram start
        chars = np.arange(len(starts))  # index (in `starts`) of the next character to consume
        alive = np.ones(len(starts), dtype=bool)
        found: list[tuple[np.ndarray, np.ndarray]] = []
        for n in range(1, self.maxn + 1):
            alive &= position < end_of_word
            if not alive.any():
                break
            take = alive.nonzero()[0]
            stop = next_start[chars[take]]
            # consume the bytes of one character (1 to 4 bytes)
            for _ in range(4):
                active = take[position[take] < stop]
                if not len(active):
                    break
                byte = signed[position[active]].astype(np.uint64)
                hashes[active] = ((hashes[active] ^ byte) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF)
                position[active] += 1
            chars[take] += 1
            if n >= self.minn:
                if n == 1:  # fastText skips the lone "<" and ">" unigrams
                    take = take[(position[take] != end_of_word[take]) & (data[starts[take]] != ord("<"))
                                | (position[take] - starts[take] > 1)]
                found.append(self._kept_rows(hashes[take], owner_of_start[take]))
        return _joined(found)

    def _ascii_ngram_rows(self, data: np.ndarray, word_of_byte: np.ndarray,
                          word_end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`_ngram_rows` when every byte is ASCII: characters are bytes, one hash step per n."""
        hashes = np.full(len(data), 2166136261, dtype=np.uint64)
        values = data.astype(np.uint64)
        alive = np.arange(len(data))  # n-gram start positions whose n-gram still fits in its word
        found: list[tuple[np.ndarray, np.ndarray]] = []
        for n in range(1, self.maxn + 1):
            alive = alive[alive + (n - 1) < word_end[alive]]
            if not len(alive):
                break
            hashes[alive] = ((hashes[alive] ^ values[alive + (n - 1)]) * np.uint64(16777619)) & np.uint64(0xFFFFFFFF)
            if n >= self.minn:
                take = alive
                if n == 1:  # fastText skips the lone "<" and ">" unigrams
                    take = take[(data[take] != ord("<")) & (take + 1 != word_end[take])]
                found.append(self._kept_rows(hashes[take], word_of_byte[take]))
        return _joined(found)

    def _kept_rows(self, hashes: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(owner, input row) of the n-grams with these hashes whose bucket the model kept."""
        buckets = (hashes % np.uint64(self.buckets)).astype(np.int64)
        rows = self.bucket_rows[buckets] if self.bucket_rows is not None else self.nwords + buckets
        keep = rows >= 0
        return owners[keep], rows[keep]


def _joined(found: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not found:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate([o for o, _ in found]), np.concatenate([r for _, r in found])
