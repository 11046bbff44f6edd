"""fastText's tokenisation of a whole batch of texts at once, on bytes, without a Python string per word.

fastText reads UTF-8 and splits words on exactly the bytes space, \\n, \\r, \\t, \\v, \\f and NUL. Here
the texts of a batch are encoded and joined (NUL between texts, itself a separator), word boundaries are
found with numpy, and each word gets a 64-bit key: a polynomial hash of its bytes modulo 2^64 (Horner's
rule, one vectorised step per byte position over all the words still that long, so memory stays a few
bytes per input byte) mixed with its length. Words longer than
`MAX_HASHED_BYTES` get no key (-1) and are handled by the caller as strings: that keeps the keys clear of
the known constructed collisions of mod-2^64 polynomial hashes, which need words of thousands of bytes.
Two distinct shorter words share a key with probability about 2^-60; the caller treats such a pair as one
word (the cost: one word's input vector stands in for the other's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dolma_pipeline.hashing import mix64

MAX_HASHED_BYTES = 256
_SEPARATOR = np.zeros(256, dtype=bool)
_SEPARATOR[list(b" \n\r\t\v\f\x00")] = True
_BASE = np.uint64(0x9E3779B97F4A7C15)
_LENGTH_MIX = np.uint64(0xC2B2AE3D27D4EB4F)


@dataclass
class BatchWords:
    """The words of a batch of texts, in order: byte ranges in `data`, owning text and key."""

    data: bytes
    starts: np.ndarray  # byte offset of each word
    ends: np.ndarray  # exclusive end
    text_of_word: np.ndarray
    keys: np.ndarray  # int64 key per word; -1 for words too long to hash (use `word(i)`)
    texts: int

    def word(self, i: int) -> str:
        return self.data[self.starts[i] : self.ends[i]].decode("utf-8")

    def words_per_text(self) -> np.ndarray:
        return np.bincount(self.text_of_word, minlength=self.texts)


def split_batch(texts: list[str]) -> BatchWords:
    """fastText's words of every text (lone surrogates replaced, as fastText's UTF-8 input would have them)."""
    encoded = [t.encode("utf-8", "replace") for t in texts]
    data = b"\x00".join(encoded)
    arr = np.frombuffer(data, dtype=np.uint8)
    n = len(arr)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return BatchWords(data, empty, empty, empty, empty, len(texts))
    separator = _SEPARATOR[arr]
    inside = ~separator
    starts = np.flatnonzero(inside & np.concatenate(([True], separator[:-1])))
    ends = np.flatnonzero(inside & np.concatenate((separator[1:], [True]))) + 1
    text_starts = np.zeros(len(texts), dtype=np.int64)
    text_starts[1:] = np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))[:-1] + 1)
    text_of_word = np.searchsorted(text_starts, starts, side="right") - 1
    lengths = ends - starts
    hashed = np.flatnonzero(lengths <= MAX_HASHED_BYTES)
    first, size = starts[hashed], lengths[hashed]
    value = np.zeros(len(hashed), dtype=np.uint64)
    alive = np.arange(len(hashed))
    for k in range(int(size.max()) if len(size) else 0):  # uint64 arithmetic wraps modulo 2^64
        alive = alive[size[alive] > k]
        value[alive] = value[alive] * _BASE + arr[first[alive] + k] + np.uint64(1)
    mixed = mix64(value ^ (size.astype(np.uint64) * _LENGTH_MIX))
    keys = np.full(len(starts), -1, dtype=np.int64)
    keys[hashed] = (mixed >> np.uint64(1)).astype(np.int64)  # non-negative: -1 stays free as "no key"
    return BatchWords(data, starts, ends, text_of_word, keys, len(texts))
