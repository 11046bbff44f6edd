"""Fixed-size summaries of a stream, mergeable across shards, for reports that cost the same memory for a
thousand documents or a billion.

:class:`LogHistogram` buckets each value by sign and by ``floor(log2(|v|) * SUB)`` (SUB buckets per
octave: ~2% relative width), with exact zeros, count, minimum and maximum kept apart; a histogram with
linear or logarithmic bins over any range is drawn from it afterwards. Its size is bounded by the
dynamic range of the values (a few thousand buckets for all finite doubles actually met), never by their
number. :class:`BottomK` keeps the k items with the smallest keys (a hash of the id for a deterministic
sample, or a distance to a threshold), so merged shards give the same sample as one pass.
"""

from __future__ import annotations

import math
from typing import Any

SUB = 32  # buckets per octave


class LogHistogram:
    def __init__(self) -> None:
        self.buckets: dict[int, int] = {}  # signed bucket index (sign * (offset + bucket)) -> count
        self.zeros = 0
        self.count = 0
        self.min = math.inf
        self.max = -math.inf

    @staticmethod
    def _index(v: float) -> int:
        b = math.floor(math.log2(abs(v)) * SUB) + 1_000_000  # > 0 for every finite double
        return b if v > 0 else -b

    @staticmethod
    def _value(index: int) -> float:
        """The lower edge (in |v|) of a bucket, signed."""
        b = abs(index) - 1_000_000
        return math.copysign(2.0 ** (b / SUB), index)

    def add(self, v: float) -> None:
        if v != v or v in (math.inf, -math.inf):
            return
        self.count += 1
        self.min = min(self.min, v)
        self.max = max(self.max, v)
        if v == 0:
            self.zeros += 1
        else:
            i = self._index(v)
            self.buckets[i] = self.buckets.get(i, 0) + 1

    def merge(self, other: LogHistogram) -> None:
        for i, n in other.buckets.items():
            self.buckets[i] = self.buckets.get(i, 0) + n
        self.zeros += other.zeros
        self.count += other.count
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)

    def points(self) -> list[tuple[float, int]]:
        """(representative value, count) in increasing value order; zeros at 0."""
        pts = [(self._centre(i), n) for i, n in self.buckets.items()]
        if self.zeros:
            pts.append((0.0, self.zeros))
        return sorted(pts)

    def _centre(self, i: int) -> float:
        lo = self._value(i)
        v = lo * 2.0 ** (0.5 / SUB)
        return min(max(v, self.min), self.max)

    def quantile(self, q: float) -> float:
        if not self.count:
            return math.nan
        target, seen = q * self.count, 0
        for v, n in self.points():
            seen += n
            if seen >= target:
                return v
        return self.max

    def to_json(self) -> dict[str, Any]:
        return {"b": {str(k): v for k, v in sorted(self.buckets.items())}, "zeros": self.zeros, "count": self.count,
                "min": self.min if self.count else None, "max": self.max if self.count else None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogHistogram:
        h = cls()
        h.buckets = {int(k): int(v) for k, v in data.get("b", {}).items()}
        h.zeros, h.count = int(data.get("zeros", 0)), int(data.get("count", 0))
        if h.count:
            h.min, h.max = float(data["min"]), float(data["max"])
        return h


class BottomK:
    """The k items with the smallest ``(key, tiebreak)``; items are JSON-able dicts."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.items: list[tuple[float, str, dict]] = []

    def would_keep(self, key: float, tiebreak: str) -> bool:
        return len(self.items) < self.k or (key, tiebreak) < self.items[-1][:2]

    def add(self, key: float, tiebreak: str, item: dict) -> None:
        if not self.would_keep(key, tiebreak):
            return
        self.items.append((key, tiebreak, item))
        self.items.sort(key=lambda t: t[:2])
        del self.items[self.k :]

    def merge(self, other: BottomK) -> None:
        for key, tie, item in other.items:
            self.add(key, tie, item)

    def to_json(self) -> list:
        return [[key, tie, item] for key, tie, item in self.items]

    @classmethod
    def from_json(cls, k: int, data: list) -> BottomK:
        s = cls(k)
        for key, tie, item in data:
            s.add(float(key), str(tie), item)
        return s
