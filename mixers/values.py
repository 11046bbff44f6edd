"""JSON value semantics shared by the jq and JSONPath evaluators.

Numbers compare by value whatever their JSON spelling (`1 == 1.0`), unlike Dolma's JSONPath mode where
an int never equals a float. Booleans are not numbers (`true != 1`). Ordering follows jq's total order:
null < false < true < numbers < strings < arrays < objects. Comparisons walk nested values with an explicit
stack, never Python recursion, so a deeply nested document cannot exhaust the interpreter's stack.
"""

from __future__ import annotations

from typing import Any


class EvalError(Exception):
    """A type error while evaluating an expression on one document (e.g. indexing a string by a number)."""


# What evaluating an expression on a document may raise besides EvalError (a builtin given a value it cannot
# use: `floor` of an infinite number, `to_entries` of an array...). The evaluators treat all of them as
# EvalError: `?` and `//` catch them, and `guard` turns them into EvalError at the expression's boundary.
EVAL_ERRORS = (EvalError, ArithmeticError, TypeError, ValueError, AttributeError, LookupError, RecursionError)


def guard(fn):
    """`fn` with every evaluation error raised as an EvalError naming its kind."""
    def guarded(value):
        try:
            return fn(value)
        except EvalError:
            raise
        except EVAL_ERRORS as e:
            raise EvalError(f"{type(e).__name__}: {e}") from None
    return guarded


def descendants(value: Any) -> list:
    """The value and every value inside it, depth first in document order (jq `..`, JSONPath `$..`).

    An explicit stack: a document nested thousands deep does not reach Python's recursion limit.
    """
    out = []
    stack = [value]
    while stack:
        node = stack.pop()
        out.append(node)
        if type(node) is list:
            stack.extend(reversed(node))
        elif type(node) is dict:
            stack.extend(reversed(list(node.values())))
    return out


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


_DECIDED = object()  # on the stack of `compare`: (_DECIDED, c) is an outcome to return unless it is 0


def compare(a: Any, b: Any) -> int:
    """jq's total order: -1, 0 or 1."""
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return (a > b) - (a < b)
    stack: list[tuple[Any, Any]] = [(a, b)]
    while stack:
        a, b = stack.pop()
        if a is _DECIDED:
            if b:
                return b
            continue
        ta, tb = type(a), type(b)
        if (ta is int or ta is float) and (tb is int or tb is float):
            c = (a > b) - (a < b)
        else:
            ra, rb = type_rank(a), type_rank(b)
            if ra != rb:
                return (ra > rb) - (ra < rb)
            if ra == 4:
                c = (a > b) - (a < b)
            elif ra == 5:  # element by element, then the shorter first
                stack.append((_DECIDED, (len(a) > len(b)) - (len(a) < len(b))))
                stack.extend(reversed(list(zip(a, b))))
                continue
            elif ra == 6:  # the sorted key lists (strings), then the values in key order
                ka, kb = sorted(a), sorted(b)
                c = (ka > kb) - (ka < kb)
                if not c:
                    stack.extend((a[key], b[key]) for key in reversed(ka))
                    continue
            else:
                c = 0
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
