"""Span replacement with Dolma's semantics.

Each `span_replacement` selects an attribute's spans `[[start, end, score], ...]` (offsets in code
points, end exclusive) and replaces those with `min_score <= score < max_score` by its `replacement`, in
which `{}` stands for the original text (`""` deletes the span). Spans of all replacements are sorted by
start (ties keep config order) and the earliest wins: a span overlapping one already taken is skipped
whole. Spans are clipped to the text; empty spans are ignored (Dolma would insert the replacement).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from mixers.config import SpanReplacementConfig
from mixers.jq import compile_jq
from mixers.jsonpath import compile_jsonpath
from mixers.rules import MalformedAttribute
from mixers.values import EvalError

_START_THEN_ORDER = itemgetter(0, 2)


class SpanReplacement:
    def __init__(self, config: SpanReplacementConfig, order: int):
        self.order = order
        self.span = config.span
        self.replacement = config.replacement
        self.min_score = config.min_score if config.min_score is not None else float("-inf")
        self.max_score = config.max_score if config.max_score is not None else float("inf")
        self.has_placeholder = "{}" in config.replacement
        if config.syntax == "jq":
            compiled = compile_jq(config.span)
            self._select = compiled.outputs
        else:
            compiled = compile_jsonpath(config.span)
            self._select = compiled.select
        self.attribute_keys = compiled.attribute_keys
        # The fast path for the usual `$.attributes.KEY`: one dict lookup instead of a path walk.
        self._direct_key = next(iter(compiled.attribute_keys)) if (
            config.syntax == "jsonpath" and config.span.replace(" ", "") in
            {f"$.attributes.{k}" for k in compiled.attribute_keys} | {f"$.attributes['{k}']" for k in compiled.attribute_keys}
        ) else None
        self.label = (self._direct_key or config.span).rsplit("__", 1)[-1]

    def candidates(self, doc: dict) -> list[tuple[int, int, int, SpanReplacement]]:
        """(start, end, order, self) for every selected span whose score is in range."""
        if self._direct_key is not None:
            attributes = doc.get("attributes")
            spans = attributes.get(self._direct_key) if type(attributes) is dict else None
            nodes = [spans] if spans else []
        else:
            try:
                nodes = [n for n in self._select(doc) if n]
            except EvalError as e:
                raise EvalError(f"span_replacement {self.span!r}: {e}") from None
        out = []
        lo, hi = self.min_score, self.max_score
        for node in nodes:
            if type(node) is not list:
                raise MalformedAttribute(f"span selector for {self.label!r} selected a {type(node).__name__}")
            try:
                for span in node:
                    if lo <= span[2] < hi:  # a non-numeric score raises TypeError
                        out.append((int(span[0]), int(span[1]), self.order, self))
            except (TypeError, IndexError, KeyError, ValueError):
                raise MalformedAttribute(f"span {span!r} of {self.label!r} is not [start, end, score]") from None
        return out


def apply_replacements(text: str, candidates: list[tuple[int, int, int, Any]]) -> tuple[str, dict[str, int]]:
    """The new text and how many spans were replaced, per replacement label."""
    if not candidates:
        return text, {}
    candidates.sort(key=_START_THEN_ORDER)
    pieces: list[str] = []
    counts: dict[str, int] = {}
    cursor = 0
    n = len(text)
    for start, end, _, replacer in candidates:
        if start < cursor:
            continue  # overlaps a span already replaced (or starts before the text)
        if end > n:
            end = n
        if end <= start:
            continue
        pieces.append(text[cursor:start])
        replacement = replacer.replacement
        if replacer.has_placeholder:
            replacement = replacement.replace("{}", text[start:end])
        pieces.append(replacement)
        cursor = end
        label = replacer.label
        counts[label] = counts.get(label, 0) + 1
    pieces.append(text[cursor:])
    return "".join(pieces), counts
