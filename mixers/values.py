"""JSON value semantics shared by the jq and JSONPath evaluators.

Numbers compare by value whatever their JSON spelling (`1 == 1.0`), unlike Dolma's JSONPath mode where
an int never equals a float. Booleans are not numbers (`true != 1`). Ordering follows jq's total order:
null < false < true < numbers < strings < arrays < objects.
"""

from __future__ import annotations

from typing import Any


class EvalError(Exception):
    """A type error while evaluating an expression on one document (e.g. indexing a string by a number)."""


def is_number(value: Any) -> bool:
    kind = type(value)
    return kind is int or kind is float


def type_rank(value: Any) -> int:
    if value is None:
        return 0
    if value is False:
        return 1
    if value is True:
        return 2
    kind = type(value)
    if kind is int or kind is float:
        return 3
    if kind is str:
        return 4
    if kind is list:
        return 5
    return 6


def type_name(value: Any) -> str:
    return ("null", "boolean", "boolean", "number", "string", "array", "object")[type_rank(value)]


def compare(a: Any, b: Any) -> int:
    """jq's total order: -1, 0 or 1."""
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return (a > b) - (a < b)
    ra, rb = type_rank(a), type_rank(b)
    if ra != rb:
        return (ra > rb) - (ra < rb)
    if ra == 4:
        return (a > b) - (a < b)
    if ra == 5:
        for x, y in zip(a, b):
            c = compare(x, y)
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if ra == 6:
        ka, kb = sorted(a), sorted(b)
        c = compare(ka, kb)
        if c:
            return c
        for key in ka:
            c = compare(a[key], b[key])
            if c:
                return c
    return 0


def equal(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a == b
    return compare(a, b) == 0


def jq_truthy(value: Any) -> bool:
    """jq's truth: only false and null are false."""
    return value is not None and value is not False


def match_truthy(value: Any) -> bool:
    """The truth Dolma applies to a filter's result: false, null, 0, "", [] and {} do not match."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    if type(value) in (int, float):
        return value != 0
    if type(value) in (str, list, dict):
        return len(value) > 0
    return True
