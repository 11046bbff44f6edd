"""A Bloom filter over 128-bit keys, vectorised with numpy, for evaluation indexes too large for memory.

A key is two 64-bit words (h0, h1); its k bit positions are `(h0 + i * h1) mod m` for i < k (Kirsch and
Mitzenmacher's double hashing, h1 forced odd). Sized for a target false-positive rate p at n keys:
m = ceil(-n ln p / (ln 2)^2) bits and k = round(m / n * ln 2). Once filled, the probability that a key
never added is reported present is exactly (bits set / m)^k for random keys: that is the rate the
summary states, with the expected number of false hits among the probes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dolma_pipeline import io

MAX_HASHES = 64


@dataclass
class BloomFilter:
    bits: np.ndarray  # uint8, ceil(m / 8) bytes
    m: int
    k: int

    @classmethod
    def sized(cls, n: int, false_positive_rate: float, size_in_bytes: int = 0) -> BloomFilter:
        """A filter for `n` keys at `false_positive_rate`, or of exactly `size_in_bytes` when that is given."""
        n = max(1, n)
        if size_in_bytes:
            m = 8 * size_in_bytes
        else:
            m = max(64, math.ceil(-n * math.log(false_positive_rate) / math.log(2) ** 2))
        k = min(MAX_HASHES, max(1, round(m / n * math.log(2))))
        return cls(np.zeros((m + 7) // 8, dtype=np.uint8), m, k)

    def _positions(self, h0: np.ndarray, h1: np.ndarray, i: int) -> np.ndarray:
        return (h0 + np.uint64(i) * (h1 | np.uint64(1))) % np.uint64(self.m)

    def add(self, h0: np.ndarray, h1: np.ndarray) -> None:
        for i in range(self.k):
            pos = self._positions(h0, h1, i)
            np.bitwise_or.at(self.bits, (pos >> np.uint64(3)).astype(np.int64),
                             (np.uint8(1) << (pos & np.uint64(7)).astype(np.uint8)))

    def contains(self, h0: np.ndarray, h1: np.ndarray) -> np.ndarray:
        """A boolean per key: False means certainly absent; True means present or a false positive."""
        alive = np.arange(len(h0))
        for i in range(self.k):
            if not len(alive):
                break
            pos = self._positions(h0[alive], h1[alive], i)
            hit = (self.bits[(pos >> np.uint64(3)).astype(np.int64)] >> (pos & np.uint64(7)).astype(np.uint8)) & 1
            alive = alive[hit.astype(bool)]
        out = np.zeros(len(h0), dtype=bool)
        out[alive] = True
        return out

    @property
    def fill_ratio(self) -> float:
        # popcount in 16 MB slices (unpacking the bits took a byte per bit: 0.43 GB for a 54 MB filter)
        step = 1 << 24
        return sum(int(np.bitwise_count(self.bits[i:i + step]).sum(dtype=np.int64))
                   for i in range(0, len(self.bits), step)) / self.m

    @property
    def false_positive_rate(self) -> float:
        """The probability that a key never added is reported present, given the bits now set."""
        return self.fill_ratio ** self.k

    def save(self, path: str) -> None:
        header = np.array([self.m, self.k], dtype=np.uint64)
        with io.AtomicWriter(path) as out:
            out.write(header.tobytes())
            out.write(self.bits.tobytes())

    @classmethod
    def load(cls, path: str) -> BloomFilter:
        """The filter saved at a local `path`, memory-mapped (shared by the workers of one machine)."""
        header = np.fromfile(path, dtype=np.uint64, count=2)
        m, k = int(header[0]), int(header[1])
        bits = np.memmap(path, dtype=np.uint8, mode="r", offset=16, shape=((m + 7) // 8,))
        return cls(bits, m, k)
