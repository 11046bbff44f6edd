"""Hashing helpers: vectorised 64-bit hashing shared by the taggers and dedupe, and file digests."""

from __future__ import annotations

import hashlib

import numpy as np


def file_sha256(path: str) -> str:
    """The SHA-256 of a local file's bytes, as hex (read in 1 MB pieces)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64/Murmur3 finaliser: a bijection that spreads every input bit over the whole word (mod 2^64)."""
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xFF51AFD7ED558CCD)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(0xC4CEB9FE1A85EC53)
    return x ^ (x >> np.uint64(33))
