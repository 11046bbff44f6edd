"""The jq runtime: indexing, arithmetic, jq's comparisons and the builtins (pure functions on JSON values)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import cmp_to_key
from typing import Any

import regex

from dolma_pipeline.errors import ConfigError
from mixers.values import EvalError, compare, descendants, equal, is_number, jq_truthy, type_name

Fn = Callable[[Any], list]


def index_value(value: Any, key: Any) -> Any:
    if value is None:
        return None
    if type(key) is str:
        if type(value) is dict:
            return value.get(key)
        raise EvalError(f"cannot index {type_name(value)} with string {key!r}")
    if is_number(key):
        if type(value) is list:
            i = int(math.floor(key))
            if i < 0:
                i += len(value)
            return value[i] if 0 <= i < len(value) else None
        raise EvalError(f"cannot index {type_name(value)} with number")
    if key is None and type(value) is dict:
        return None
    raise EvalError(f"cannot index {type_name(value)} with {type_name(key)}")


def iterate(value: Any) -> list:
    if type(value) is list:
        return value
    if type(value) is dict:
        return list(value.values())
    raise EvalError(f"cannot iterate over {type_name(value)}")


def slice_value(value: Any, lo: Any, hi: Any) -> Any:
    if value is None:
        return None
    if type(value) not in (list, str):
        raise EvalError(f"cannot slice {type_name(value)}")
    lo_i = None if lo is None else int(math.floor(lo))
    hi_i = None if hi is None else int(math.ceil(hi))
    return value[lo_i:hi_i]


def arith(op: str, a: Any, b: Any) -> Any:
    if op == "+":
        if a is None:
            return b
        if b is None:
            return a
        if is_number(a) and is_number(b):
            return a + b
        if type(a) is type(b) and type(a) in (str, list):
            return a + b
        if type(a) is dict and type(b) is dict:
            return {**a, **b}
    elif op == "-":
        if is_number(a) and is_number(b):
            return a - b
        if type(a) is list and type(b) is list:
            return [x for x in a if not any(equal(x, y) for y in b)]
    elif op == "*":
        if is_number(a) and is_number(b):
            return a * b
    elif op == "/":
        if is_number(a) and is_number(b):
            if b == 0:
                raise EvalError("division by zero")
            return a / b
        if type(a) is str and type(b) is str:
            return a.split(b)
    elif op == "%":
        if is_number(a) and is_number(b):
            if int(b) == 0:
                raise EvalError("modulo by zero")
            return int(math.fmod(int(a), int(b)))
    raise EvalError(f"{type_name(a)} and {type_name(b)} cannot be combined with {op}")


def _numeric_fast(test: Callable[[Any, Any], bool], general: Callable[[Any, Any], bool]):
    """Compare two plain numbers directly; anything else through jq's total order."""
    def check(a: Any, b: Any) -> bool:
        ta, tb = type(a), type(b)
        if (ta is float or ta is int) and (tb is float or tb is int):
            return test(a, b)
        return general(a, b)
    return check


CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": _numeric_fast(lambda a, b: a == b, equal),
    "!=": _numeric_fast(lambda a, b: a != b, lambda a, b: not equal(a, b)),
    "<": _numeric_fast(lambda a, b: a < b, lambda a, b: compare(a, b) < 0),
    "<=": _numeric_fast(lambda a, b: a <= b, lambda a, b: compare(a, b) <= 0),
    ">": _numeric_fast(lambda a, b: a > b, lambda a, b: compare(a, b) > 0),
    ">=": _numeric_fast(lambda a, b: a >= b, lambda a, b: compare(a, b) >= 0),
}


def _length(v: Any) -> Any:
    if v is None:
        return 0
    if is_number(v):
        return abs(v)
    if type(v) in (str, list, dict):
        return len(v)
    raise EvalError(f"{type_name(v)} has no length")


def _add(v: Any) -> Any:
    items = iterate(v) if v is not None else []
    total = None
    for item in items:
        total = arith("+", total, item)
    return total


def _keys(v: Any) -> list:
    if type(v) is dict:
        return sorted(v)
    if type(v) is list:
        return list(range(len(v)))
    raise EvalError(f"{type_name(v)} has no keys")


def _sorted(items: list, key: Callable[[Any], Any] | None = None) -> list:
    if key is None:
        return sorted(items, key=cmp_to_key(compare))
    pairs = [(key(x), x) for x in items]
    pairs.sort(key=cmp_to_key(lambda p, q: compare(p[0], q[0])))
    return [x for _, x in pairs]


def _tonumber(v: Any) -> Any:
    if is_number(v):
        return v
    if type(v) is str:
        try:
            return int(v) if re.fullmatch(r"\s*-?\d+\s*", v) else float(v)
        except ValueError:
            pass
    raise EvalError(f"cannot parse {v!r} as a number")


def _tostring(v: Any) -> str:
    return v if type(v) is str else json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _need_str(v: Any, name: str) -> str:
    if type(v) is not str:
        raise EvalError(f"{name} needs a string input, got {type_name(v)}")
    return v


# Builtins without arguments: value -> list of outputs.
FUNCTIONS: dict[str, Callable[[Any], list]] = {
    "length": lambda v: [_length(v)],
    "add": lambda v: [_add(v)],
    "not": lambda v: [not jq_truthy(v)],
    "keys": lambda v: [_keys(v)],
    "keys_unsorted": lambda v: [list(v) if type(v) is dict else _keys(v)],
    "to_entries": lambda v: [[{"key": k, "value": x} for k, x in (v or {}).items()]],
    "from_entries": lambda v: [{(e.get("key", e.get("name"))): e.get("value") for e in iterate(v)}],
    "values": lambda v: [v] if v is not None else [],
    "empty": lambda v: [],
    "type": lambda v: [type_name(v)],
    "tostring": lambda v: [_tostring(v)],
    "tonumber": lambda v: [_tonumber(v)],
    "tojson": lambda v: [json.dumps(v, separators=(",", ":"), ensure_ascii=False)],
    "first": lambda v: [index_value(v, 0)],
    "last": lambda v: [index_value(v, -1)],
    "max": lambda v: [_sorted(iterate(v))[-1] if v else None],
    "min": lambda v: [_sorted(iterate(v))[0] if v else None],
    "sort": lambda v: [_sorted(iterate(v))],
    "unique": lambda v: [_unique(iterate(v))],
    "reverse": lambda v: [v[::-1] if v is not None else []],
    "any": lambda v: [any(jq_truthy(x) for x in iterate(v))],
    "all": lambda v: [all(jq_truthy(x) for x in iterate(v))],
    "floor": lambda v: [math.floor(need_number(v))],
    "ceil": lambda v: [math.ceil(need_number(v))],
    "round": lambda v: [math.floor(need_number(v) + 0.5)],
    "sqrt": lambda v: [math.sqrt(need_number(v))],
    "fabs": lambda v: [abs(need_number(v))],
    "abs": lambda v: [abs(need_number(v))],
    "log": lambda v: [math.log(need_number(v)) if need_number(v) > 0 else float("-inf")],
    "ascii_downcase": lambda v: [_need_str(v, "ascii_downcase").lower()],
    "ascii_upcase": lambda v: [_need_str(v, "ascii_upcase").upper()],
    "isnull": lambda v: [v is None],
}


def need_number(v: Any) -> Any:
    if not is_number(v):
        raise EvalError(f"{type_name(v)} is not a number")
    return v


def _unique(items: list) -> list:
    out: list = []
    for x in _sorted(items):
        if not out or not equal(out[-1], x):
            out.append(x)
    return out


recurse = descendants  # `..`


# Builtins with one argument (a sub-expression): (value, compiled argument) -> list of outputs.
def _map(v: Any, f: Fn) -> list:
    return [[y for x in iterate(v) for y in f(x)]]


def _select(v: Any, f: Fn) -> list:
    return [v for ok in f(v) if jq_truthy(ok)]


def _by(v: Any, f: Fn, pick: int) -> list:
    items = iterate(v) if v is not None else []
    if not items:
        return [None]
    ordered = _sorted(items, key=lambda x: f(x))
    return [ordered[pick]]


def _startswith(v: Any, f: Fn) -> list:
    return [_need_str(v, "startswith").startswith(_need_str(p, "startswith")) for p in f(v)]


def _endswith(v: Any, f: Fn) -> list:
    return [_need_str(v, "endswith").endswith(_need_str(p, "endswith")) for p in f(v)]


def _has(v: Any, f: Fn) -> list:
    out = []
    for key in f(v):
        if type(v) is dict:
            out.append(_need_str(key, "has") in v)
        elif type(v) is list:
            out.append(0 <= int(need_number(key)) < len(v))
        else:
            raise EvalError(f"cannot check whether {type_name(v)} has a key")
    return out


# A bound on each `test` match: Python's backtracking engines can take exponential time on some patterns, and
# the text comes from the document.
REGEX_TIMEOUT_S = 1.0


def regex_test(pattern: str) -> Callable[[Any], list]:
    """`test(PATTERN)` for a literal pattern, compiled once; each match is bounded by REGEX_TIMEOUT_S.

    A pattern taken from the document is refused when the expression is compiled: a document could then
    choose a pattern that never finishes.
    """
    try:
        compiled = regex.compile(pattern)
    except regex.error as e:
        raise ConfigError(f"jq test({pattern!r}): invalid regular expression ({e})") from None

    def test(v: Any) -> list:
        try:
            return [compiled.search(_need_str(v, "test"), timeout=REGEX_TIMEOUT_S) is not None]
        except TimeoutError:
            raise EvalError(f"test({pattern!r}) ran longer than {REGEX_TIMEOUT_S:g} s on this text") from None
    return test


FUNCTIONS1: dict[str, Callable[[Any, Fn], list]] = {
    "map": _map,
    "select": _select,
    "max_by": lambda v, f: _by(v, f, -1),
    "min_by": lambda v, f: _by(v, f, 0),
    "sort_by": lambda v, f: [_sorted(iterate(v), key=lambda x: f(x))],
    "startswith": _startswith,
    "endswith": _endswith,
    "has": _has,
    "any": lambda v, f: [any(jq_truthy(y) for x in iterate(v) for y in f(x))],
    "all": lambda v, f: [all(jq_truthy(y) for x in iterate(v) for y in f(x))],
    "first": lambda v, f: f(v)[:1],
    "join": lambda v, f: [_need_str(sep, "join").join(_tostring(x) if x is not None else "" for x in iterate(v))
                          for sep in f(v)],
    "split": lambda v, f: [_need_str(v, "split").split(_need_str(sep, "split")) for sep in f(v)],
    "contains": lambda v, f: [_contains(v, x) for x in f(v)],
}


def _contains(a: Any, b: Any) -> bool:
    if type(a) is dict and type(b) is dict:
        return all(k in a and _contains(a[k], v) for k, v in b.items())
    if type(a) is list and type(b) is list:
        return all(any(_contains(x, y) for x in a) for y in b)
    if type(a) is str and type(b) is str:
        return b in a
    return equal(a, b)


