"""Dolma's e-mail and phone regexes, matched in linear time with the same matches as `re.finditer`.

Dolma's patterns backtrack: on `'x' * 20000 + '@'` the e-mail regex takes seconds, and on a 200 KB line of
minified code or a long run of dots it does not finish (each start position rescans the run). The matches
are not changed here, only found without rescanning:

E-mail, `[.\\s@,?!;:)(]*([^\\s@]+@[^\\s@,?!;:)(]+?)[.\\s@,?!;:)(]?[\\s\\n\\r]`, call it `C* L+ @ D+? C? W`. The
local part `L+` cannot contain `@`, so from a position q it can only end at the first whitespace or `@`
after q; what follows an `@` at r (the lazy domain, the optional class character, the whitespace) depends
on r alone. So a position q is "good" when its run of non-space, non-`@` characters ends at an `@` whose
tail matches, and these good positions form one interval before each such `@`. From a start s the regex
takes the largest good q within the class run `C*` from s; the leftmost start is the beginning of the
class run that reaches the first good position. Each step is one regex call over characters never scanned
twice. `tests/taggers/test_pii_scan.py` checks the matches against `re.finditer` on random texts.

Phone, `\\s+\\(?(\\d{3})\\)?[-\\. ]*(\\d{3})[-. ]?(\\d{4})`: `\\s+` must take the whole whitespace run (what
follows it cannot be whitespace), so a start inside a run matches exactly when the run's first position
does. Starting only where the previous character is not whitespace (and at the line's first position)
gives the same matches with each run scanned once.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator

_CLASS = r".\s@,?!;:)("  # Dolma's `[.\s@,?!;:)(]`, around the address
_RUN_TO_AT = re.compile(r"(?<![^\s@])[^\s@]*+@")  # a maximal run of local-part characters and its `@`
_DOMAIN_RUN = re.compile(r"[^\s@,?!;:)(]*+")
_SPACE = re.compile(r"\s")
_CLASS_RUN = re.compile(f"[{_CLASS}]*+")
_LAST_NON_CLASS = re.compile(f"[^{_CLASS}](?=[{_CLASS}]*+\\Z)")


def _tail(text: str, at: int, end: int) -> tuple[int, int] | None:
    """(end of group 1, end of the match) for the part of Dolma's e-mail regex after the `@` at `at`."""
    v = _DOMAIN_RUN.match(text, at + 1, end).end()  # the domain characters `[^\s@,?!;:)(]` after the `@`
    if v < at + 2 or v >= end:
        return None
    # The lazy domain stops before a final "." followed by whitespace, else at v (every non-domain character
    # is in the class): then the class character and whitespace, or whitespace alone.
    if v - 1 >= at + 2 and text[v - 1] == "." and _SPACE.match(text, v, end):
        return v - 1, v + 1
    if v + 1 < end and _SPACE.match(text, v + 1, end):
        return v, v + 2
    if _SPACE.match(text, v, end):
        return v, v + 1
    return None


def dolma_email_matches(text: str, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(match start, match end, group 1 start, group 1 end) of Dolma's e-mail regex in `text[start:end]`.

    The same as `DOLMA_EMAIL.finditer(text, start, end)` when `start` is 0 or follows whitespace (a line).
    """
    lows: list[int] = []  # good intervals [lows[k], ats[k] - 1], one before each `@` whose tail matches
    ats: list[int] = []
    tails: list[tuple[int, int]] = []
    for m in _RUN_TO_AT.finditer(text, start, end):
        at = m.end() - 1
        if m.start() < at and (tail := _tail(text, at, end)) is not None:
            lows.append(m.start())
            ats.append(at)
            tails.append(tail)
    pos, k = start, 0
    while True:
        while k < len(ats) and ats[k] - 1 < pos:
            k += 1
        if k == len(ats):
            return
        first_good = max(lows[k], pos)
        before = _LAST_NON_CLASS.search(text, pos, first_good)
        match_start = before.end() if before else pos
        run_end = _CLASS_RUN.match(text, match_start, end).end()
        j = bisect.bisect_right(lows, run_end, k) - 1  # the last interval starting within the class run
        q = min(run_end, ats[j] - 1)
        group_end, match_end = tails[j]
        yield match_start, match_end, q, group_end
        pos = match_end


def dolma_phone_matches(pattern: re.Pattern, after_non_space: re.Pattern, text: str, start: int,
                        end: int) -> Iterator[re.Match]:
    """`pattern.finditer(text, start, end)` for Dolma's phone regex, each whitespace run scanned once.

    `after_non_space` is the same pattern behind `(?<!\\s)`; `start` must be 0 or follow whitespace.
    """
    first = pattern.match(text, start, end)
    if first:
        yield first
        start = first.end()
    yield from after_non_space.finditer(text, start, end)
