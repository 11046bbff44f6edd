"""The draws a `random.Random` re-seeded with one seed makes, read off its stream of 32-bit words.

After `seed(s)` a Mersenne Twister hands out one fixed stream of 32-bit words; `getrandbits(k <= 32)` takes
one word's top k bits, `random()` two words (`(a >> 5) * 2**26 + (b >> 6)` over 2**53), `choice(seq)` draws
`getrandbits(len(seq).bit_length())` until it is below `len(seq)`, and `gauss()` makes two normals from two
`random()`s, returning one and keeping the other for its next call. langdetect re-seeds before every text,
so every text reads the same stream: here the stream is drawn once and the draws are read off it, many at
a time. `matches_random()` replays a sample against `random.Random` itself (once per object), so a Python
whose generator draws otherwise is noticed and not used.
"""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

_STREAM_CHUNK = 1 << 16  # words drawn from the generator at a time


class SeededDraws:
    """`random.Random(seed)`'s draws, by position in its word stream (position 0: just after seeding)."""

    def __init__(self, seed: Any):
        self.seed = seed
        self._source = random.Random(seed)
        self._words = np.empty(0, dtype=np.uint32)
        self._matches: bool | None = None

    def words(self, start: int, count: int) -> np.ndarray:
        """The stream's words start .. start + count - 1."""
        missing = start + count - len(self._words)
        if missing > 0:
            more = max(missing, _STREAM_CHUNK)
            drawn = np.fromiter((self._source.getrandbits(32) for _ in range(more)), dtype=np.uint32, count=more)
            self._words = np.concatenate([self._words, drawn])
        return self._words[start:start + count]

    def random_at(self, position: int) -> float:
        """`random()` read from the two words at `position`."""
        a, b = self.words(position, 2).tolist()
        return ((a >> 5) * 67108864.0 + (b >> 6)) * (1.0 / 9007199254740992.0)

    def gauss_pair(self, position: int) -> tuple[float, float]:
        """The two normals `gauss()` makes from the four words at `position` (it returns the first)."""
        x2pi = self.random_at(position) * random.TWOPI
        g2rad = math.sqrt(-2.0 * math.log(1.0 - self.random_at(position + 2)))
        return math.cos(x2pi) * g2rad, math.sin(x2pi) * g2rad

    def choices(self, position: int, length: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The indices `count` successive `choice(seq)` with `len(seq) == length` draw from `position` on,
        and the stream position just after each draw."""
        shift = 32 - length.bit_length()
        span = 2 * count + 64
        while True:
            top = self.words(position, span) >> shift
            taken = np.flatnonzero(top < length)
            if len(taken) >= count:
                break
            span *= 2
        taken = taken[:count]
        return top[taken].astype(np.int64), taken + (position + 1)

    def matches_random(self) -> bool:
        """Whether these draws are `random.Random`'s on a sample of gauss() and choice() calls."""
        if self._matches is None:
            rng = random.Random(self.seed)
            position, spare, same = 0, None, True
            for length in (1, 2, 7, 55, 1000, 30_001, 3):
                if spare is None:
                    z, spare = self.gauss_pair(position)
                    position += 4
                else:
                    z, spare = spare, None
                same &= rng.gauss(0.0, 1.0) == 0.0 + z * 1.0
                indices, ends = self.choices(position, length, 40)
                same &= [rng.choice(range(length)) for _ in range(40)] == indices.tolist()
                position = int(ends[-1])
            self._matches = same and rng.getrandbits(32) == int(self.words(position, 1)[0])
        return self._matches
