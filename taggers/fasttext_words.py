"""fastText's tokenisation of a whole batch of texts at once, on bytes, without a Python string per word.

fastText reads UTF-8 and splits words on exactly the bytes space, \\n, \\r, \\t, \\v, \\f and NUL. Here
the texts of a batch are encoded and joined (NUL between texts, itself a separator), word boundaries are
found with numpy, and each word gets a 64-bit key: a polynomial hash of its bytes modulo 2^64 (prefix
sums over the whole batch, so one pass for every word) mixed with its length. Words longer than
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
_BASE = 0x9E3779B97F4A7C15 | 1  # odd, so invertible modulo 2^64
_BASE_INVERSE = pow(_BASE, -1, 1 << 64)
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


class _Powers:
    """BASE^i and BASE^-i modulo 2^64 for i < size, grown on demand."""

    def __init__(self) -> None:
        self.up = self.down = np.ones(0, dtype=np.uint64)

    def get(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        if size > len(self.up):
            size = max(size, 2 * len(self.up), 1 << 16)
            self.up, self.down = _power_table(_BASE, size), _power_table(_BASE_INVERSE, size)
        return self.up, self.down


def _power_table(base: int, size: int) -> np.ndarray:
    table = np.ones(size, dtype=np.uint64)
    if size > 1:  # uint64 products wrap modulo 2^64, which is the arithmetic wanted
        table[1:] = np.cumprod(np.full(size - 1, base, dtype=np.uint64))
    return table


_POWERS = _Powers()


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
    up, down = _POWERS.get(n + 1)
    prefix = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum((arr.astype(np.uint64) + np.uint64(1)) * up[:n], out=prefix[1:])
    length = (ends - starts).astype(np.uint64)
    keys = mix64(((prefix[ends] - prefix[starts]) * down[starts]) ^ (length * _LENGTH_MIX))
    keys = (keys >> np.uint64(1)).astype(np.int64)  # non-negative: -1 stays free as "no key"
    keys[(ends - starts) > MAX_HASHED_BYTES] = -1
    return BatchWords(data, starts, ends, text_of_word, keys, len(texts))
