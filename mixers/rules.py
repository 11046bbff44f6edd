"""Keep-or-drop decisions for one document: typed rules, dedupe flags, Dolma filters and sampling.

Every check answers with the label of the rule that dropped the document (for the report) or None.
"""

from __future__ import annotations

import hashlib
import math
import operator
from collections.abc import Callable
from typing import Any

from dolma_pipeline.errors import ConfigError
from mixers.config import FilterConfig, RuleConfig
from mixers.jq import compile_jq
from mixers.jsonpath import compile_jsonpath
from mixers.values import EvalError, is_number, match_truthy

OPS: dict[str, Callable[[float, float], bool]] = {
    "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge, "eq": operator.eq, "ne": operator.ne,
}


class MalformedAttribute(ValueError):
    """An attribute value is not a list of [start, end, score] spans."""


def _scores(spans: Any, key: str) -> list:
    if type(spans) is not list:
        raise MalformedAttribute(f"attribute {key!r} is {type(spans).__name__}, not a list of spans")
    try:
        scores = [span[2] for span in spans]
    except (TypeError, IndexError, KeyError):
        raise MalformedAttribute(f"attribute {key!r} has a span that is not [start, end, score]") from None
    if not all(is_number(s) for s in scores):
        raise MalformedAttribute(f"attribute {key!r} has a non-numeric score")
    return scores


def reduce_spans(spans: Any, how: str, key: str, text_length: int) -> float | None:
    """One number from an attribute's spans; None when the attribute is missing/empty and `how` needs a value."""
    if spans is None or spans == []:
        return 0.0 if how in ("count", "sum", "frac") else None
    scores = _scores(spans, key)
    if how == "first":
        return scores[0]
    if how == "last":
        return scores[-1]
    if how == "max":
        return max(scores)
    if how == "min":
        return min(scores)
    if how == "sum":
        return math.fsum(scores)
    if how == "count":
        return float(len(scores))
    covered = math.fsum((span[1] - span[0]) * span[2] for span in spans)
    return covered / text_length if text_length else 0.0


class Rule:
    """A compiled typed rule."""

    def __init__(self, config: RuleConfig):
        self.key = config.attribute
        self.reduce = config.reduce
        self.test = OPS[config.op]
        self.op_name = config.op
        self.value = config.value
        self.exclude = config.action == "exclude"
        self.default = config.default
        self.label = config.label()

    def drops(self, attributes: dict, text_length: int) -> bool:
        reduced = reduce_spans(attributes.get(self.key), self.reduce, self.key, text_length)
        if reduced is None:
            reduced = self.default
        holds = reduced is not None and self.test(reduced, self.value)
        return holds if self.exclude else not holds


class DedupeFlag:
    """Keep one copy per duplicate cluster: drop documents the dedupe step flagged (score >= 0.5)."""

    def __init__(self, key: str):
        self.key = key
        self.label = f"dedupe {key}"

    def drops(self, attributes: dict, text_length: int) -> bool:
        spans = attributes.get(self.key)
        if not spans:
            return False
        return max(_scores(spans, self.key)) >= 0.5


class Expression:
    """One include/exclude expression of a Dolma filter, in either syntax.

    `matches` follows Dolma: a jq expression matches when it has at least one output and every output is
    truthy in Dolma's sense (false, null, 0, "", [] and {} are not); for exclusion, any truthy output
    matches. A JSONPath expression matches when it selects anything.
    """

    def __init__(self, text: str, syntax: str, label: str):
        self.text = text
        self.label = label
        self.place = f"filter.{'include' if label.startswith('include') else 'exclude'} {syntax} expression {text!r}"
        self._scalar = None
        if syntax == "jq":
            compiled = compile_jq(text)
            self._outputs = compiled.outputs
            self._scalar = compiled.scalar  # the one-output fast path, when the expression allows it
            self.is_jq = True
        else:
            compiled = compile_jsonpath(text)
            self._outputs = compiled.select
            self.is_jq = False
        self.attribute_keys = compiled.attribute_keys

    def include_matches(self, doc: dict) -> bool:
        try:
            return self._include_matches(doc)
        except EvalError as e:
            raise EvalError(f"{self.place}: {e}") from None

    def exclude_matches(self, doc: dict) -> bool:
        try:
            return self._exclude_matches(doc)
        except EvalError as e:
            raise EvalError(f"{self.place}: {e}") from None

    def _include_matches(self, doc: dict) -> bool:
        if self._scalar is not None:
            return match_truthy(self._scalar(doc))
        outputs = self._outputs(doc)
        if not self.is_jq:
            return bool(outputs)
        return bool(outputs) and all(match_truthy(v) for v in outputs)

    def _exclude_matches(self, doc: dict) -> bool:
        if self._scalar is not None:
            return match_truthy(self._scalar(doc))
        outputs = self._outputs(doc)
        if not self.is_jq:
            return bool(outputs)
        return any(match_truthy(v) for v in outputs)


class DocFilter:
    """Dolma's include/exclude semantics over compiled expressions."""

    def __init__(self, config: FilterConfig):
        self.include = [Expression(t, config.syntax, f"include (matched none of {len(config.include)})")
                        for t in config.include]
        self.exclude = [Expression(t, config.syntax, f"exclude: {t}") for t in config.exclude]
        self.include_label = f"filter.include ({len(self.include)} expression(s), none matched)"

    @property
    def attribute_keys(self) -> set[str]:
        return {k for e in self.include + self.exclude for k in e.attribute_keys}

    def drop_reason(self, doc: dict) -> str | None:
        """The label of what dropped `doc`, or None to keep it. Raises EvalError on a type error."""
        if self.include and not any(e.include_matches(doc) for e in self.include):
            return self.include_label
        for e in self.exclude:
            if e.exclude_matches(doc):
                return f"filter.exclude: {e.text}"
        return None


def sample_copies(doc_id: str, seed: int, rate: float) -> int:
    """How many copies of a document to write: floor(rate), plus one more with probability frac(rate).

    The draw is a hash of (seed, id) only, so it does not depend on sharding, order or worker count.
    """
    if rate == 1.0:
        return 1
    whole = int(math.floor(rate))
    digest = hashlib.blake2b(f"{seed}\x00{doc_id}".encode(), digest_size=8).digest()
    draw = int.from_bytes(digest, "big") / 2.0**64
    return whole + (1 if draw < rate - whole else 0)


def build_checks(rules: list[RuleConfig], dedupe: list[str]) -> list[Rule | DedupeFlag]:
    checks: list[Rule | DedupeFlag] = [DedupeFlag(key) for key in dedupe]
    checks.extend(Rule(r) for r in rules)
    labels = [c.label for c in checks]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"two rules have the same label; give them distinct `name`s: {labels}")
    return checks


__all__ = ["DocFilter", "DedupeFlag", "EvalError", "MalformedAttribute", "Rule", "build_checks",
           "reduce_spans", "sample_copies"]
