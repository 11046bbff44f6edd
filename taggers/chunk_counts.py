"""Counts of texts cut into chunks whose counts add up (token or pre-token counts), each distinct chunk
counted once: the per-chunk counts sit in a dict that is dropped whole when full, so memory is bounded
and a total never depends on what happened to be cached."""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain

MAX_CACHED_CHUNKS = 1 << 20


class ChunkCounts:
    """`totals(chunk_lists)`: per text, the sum of its chunks' counts; `count_many` counts the unseen ones."""

    def __init__(self, count_many: Callable[[list[str]], list[int]], limit: int = MAX_CACHED_CHUNKS):
        self.count_many, self.limit = count_many, limit
        self.counts: dict[str, int] = {}

    def totals(self, chunk_lists: list[list[str]]) -> list[int]:
        counts = self.counts
        missing = set(chain.from_iterable(chunk_lists)).difference(counts)
        if missing:
            if len(counts) + len(missing) > self.limit:
                counts.clear()
                missing = set(chain.from_iterable(chunk_lists))
            chunks = list(missing)
            counts.update(zip(chunks, self.count_many(chunks)))
        return [sum(map(counts.__getitem__, chunks)) for chunks in chunk_lists]
