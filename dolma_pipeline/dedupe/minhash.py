"""MinHash signatures of word n-gram shingles, with datasketch's `affine32` permutation scheme.

Each shingle is hashed to 32 bits (a per-worker cache hashes each distinct word once with BLAKE2b,
and n consecutive word hashes are combined with numpy), then datasketch's scheme applies: the
MurmurHash3 finalizer, then `a_k * h + b_k mod 2^32` for the permutation parameters that
`datasketch.MinHash(num_perm, seed, scheme="affine32")` draws, and the minimum per permutation.
So a signature equals `datasketch.MinHash(..., hashfunc=<our shingle hash>)` fed the same shingles
(a test checks it), but costs one vectorised pass per document instead of one call per shingle.
"""

from __future__ import annotations

import hashlib
import re
from operator import itemgetter

import numpy as np

from dolma_pipeline.dedupe.config import MinHashConfig
from dolma_pipeline.hashing import mix64

_WORDS = re.compile(r"\w+")
_DIGITS = re.compile(r"\d")
_MUL = np.uint64(0x9E3779B97F4A7C15)  # odd constant for the polynomial n-gram combination
_MAX_CACHE = 2_000_000


def fmix32(h: np.ndarray) -> np.ndarray:
    """datasketch's pre-mix for the affine32 scheme (MurmurHash3's 32-bit finaliser)."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def datasketch_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from datasketch import MinHash

    a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
    return np.asarray(a, dtype=np.uint32), np.asarray(b, dtype=np.uint32)


class MinHasher:
    """Normalisation, shingling, signatures and LSH band keys for one MinHash configuration."""

    def __init__(self, config: MinHashConfig, chunk: int = 4096):
        self.config = config
        self.num_perm = config.permutations
        a, b = datasketch_permutations(self.num_perm, config.seed)
        self._a, self._b = a[:, None], b[:, None]
        self._chunk = chunk
        self._word_hash: dict[str, int] = {}
        self._band_salt = mix64(np.arange(1, config.bands + 1, dtype=np.uint64) * _MUL)

    def words(self, text: str) -> list[str]:
        cfg = self.config
        if cfg.lowercase:
            text = text.lower()
        if cfg.fold_digits:
            text = _DIGITS.sub("0", text)
        # \w+ drops punctuation and folds any run of whitespace; without it, words are split on whitespace
        return _WORDS.findall(text) if cfg.strip_punctuation else text.split()

    def _word_ids(self, words: list[str]) -> np.ndarray:
        cache = self._word_hash
        if len(cache) > _MAX_CACHE:
            cache.clear()
        for word in set(words).difference(cache):  # hash each new distinct word once
            cache[word] = int.from_bytes(
                hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
        if len(words) == 1:
            return np.array([cache[words[0]]], dtype=np.uint64)
        return np.array(itemgetter(*words)(cache), dtype=np.uint64)  # the lookups run in C

    def shingle_hashes(self, text: str) -> np.ndarray:
        """32-bit hashes of the word n-grams (a text shorter than n words is one shingle; none if empty)."""
        words = self.words(text)
        if not words:
            return np.empty(0, dtype=np.uint32)
        ids = self._word_ids(words)
        n = min(self.config.ngram, len(ids))
        count = len(ids) - n + 1
        combined = ids[:count].copy()
        for j in range(1, n):
            combined = combined * _MUL + ids[j: j + count]
        return (mix64(combined) >> np.uint64(32)).astype(np.uint32)

    def signature(self, hashes: np.ndarray) -> np.ndarray:
        """The num_perm minima (uint32) of datasketch's affine32 permutations of `hashes` (non-empty)."""
        mixed = fmix32(hashes.astype(np.uint32, copy=False))
        sig = None
        for start in range(0, len(mixed), self._chunk):
            part = (self._a * mixed[None, start: start + self._chunk] + self._b).min(axis=1)
            sig = part if sig is None else np.minimum(sig, part)
        return sig

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """(docs, bands) uint64 keys: one per band of `rows` signature values, salted by the band index."""
        cfg = self.config
        rows = signatures[:, : cfg.bands * cfg.rows].reshape(len(signatures), cfg.bands, cfg.rows).astype(np.uint64)
        key = rows[:, :, 0].copy()
        for j in range(1, cfg.rows):
            key = key * _MUL + rows[:, :, j]
        return mix64(key ^ self._band_salt[None, :])


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted arrays of unique shingle hashes."""
    if len(a) == 0 and len(b) == 0:
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)
