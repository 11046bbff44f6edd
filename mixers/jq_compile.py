"""Compile a jq AST (see `mixers.jq`) into Python closures.

`compile_node` gives the general form, value -> list of outputs (jq is a language of generators).
`compile_scalar` gives value -> value for the (usual) expressions that always have exactly one output,
or None; it skips building a list at every step, which makes typical filters several times faster.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dolma_pipeline.errors import ConfigError
from mixers.jq_runtime import (
    CMP,
    FUNCTIONS,
    FUNCTIONS1,
    Fn,
    arith,
    index_value,
    iterate,
    need_number,
    recurse,
    regex_test,
    slice_value,
)
from mixers.values import EVAL_ERRORS, jq_truthy


def compile_node(node) -> Fn:
    kind = node[0]
    if kind == "id":
        return lambda v: [v]
    if kind == "lit":
        value = node[1]
        return lambda v: [value]
    if kind == "field":
        base, name = node[1], node[2]
        if base == ("id",):
            return lambda v: [index_value(v, name)]
        base_f = compile_node(base)
        return lambda v: [index_value(x, name) for x in base_f(v)]
    if kind == "index":
        base_f, key_f = compile_node(node[1]), compile_node(node[2])
        if node[2][0] == "lit":
            key = node[2][1]
            return lambda v: [index_value(x, key) for x in base_f(v)]
        return lambda v: [index_value(x, k) for x in base_f(v) for k in key_f(v)]
    if kind == "slice":
        base_f = compile_node(node[1])
        lo_f = compile_node(node[2]) if node[2] is not None else (lambda v: [None])
        hi_f = compile_node(node[3]) if node[3] is not None else (lambda v: [None])
        return lambda v: [slice_value(x, lo, hi) for x in base_f(v) for lo in lo_f(v) for hi in hi_f(v)]
    if kind == "iter":
        base_f = compile_node(node[1])
        return lambda v: [y for x in base_f(v) for y in iterate(x)]
    if kind == "try":
        base_f = compile_node(node[1])

        def attempt(v):
            try:
                return base_f(v)
            except EVAL_ERRORS:
                return []
        return attempt
    if kind == "recurse":
        return recurse
    if kind == "pipe":
        left, right = compile_node(node[1]), compile_node(node[2])
        return lambda v: [y for x in left(v) for y in right(x)]
    if kind == "comma":
        left, right = compile_node(node[1]), compile_node(node[2])
        return lambda v: left(v) + right(v)
    if kind == "alt":
        left, right = compile_node(node[1]), compile_node(node[2])

        def alternative(v):
            try:
                found = [x for x in left(v) if jq_truthy(x)]
            except EVAL_ERRORS:
                found = []
            return found or right(v)
        return alternative
    if kind in ("and", "or"):
        left, right = compile_node(node[1]), compile_node(node[2])
        short = kind == "or"  # the left value that decides without looking right

        def logic(v):
            out = []
            for a in left(v):
                if jq_truthy(a) == short:
                    out.append(short)
                else:
                    out.extend(jq_truthy(b) for b in right(v))
            return out
        return logic
    if kind == "cmp":
        test = CMP[node[1]]
        left, right = compile_node(node[2]), compile_node(node[3])
        return lambda v: [test(a, b) for b in right(v) for a in left(v)]
    if kind == "arith":
        op = node[1]
        left, right = compile_node(node[2]), compile_node(node[3])
        return lambda v: [arith(op, a, b) for b in right(v) for a in left(v)]
    if kind == "neg":
        inner = compile_node(node[1])
        return lambda v: [-need_number(x) for x in inner(v)]
    if kind == "array":
        if node[1] is None:
            return lambda v: [[]]
        inner = compile_node(node[1])
        return lambda v: [inner(v)]
    if kind == "if":
        cond, then, other = compile_node(node[1]), compile_node(node[2]), compile_node(node[3])
        return lambda v: [y for c in cond(v) for y in (then(v) if jq_truthy(c) else other(v))]
    if kind == "call":
        return _call(node[1], node[2])
    raise AssertionError(f"unknown node {kind}")


def _literal_test(args: list) -> Fn | None:
    """`test("literal")`, compiled once; any other argument is refused (a pattern from the document)."""
    if len(args) != 1:
        return None
    if args[0][0] != "lit" or type(args[0][1]) is not str:
        raise ConfigError("jq test/1 takes a string literal, e.g. test(\"^https?://\"): a pattern computed "
                          "from the document could take unbounded time")
    return regex_test(args[0][1])


def _call(name: str, args: list) -> Fn:
    if name == "test" and (test := _literal_test(args)) is not None:
        return test
    if not args and name in FUNCTIONS:
        return FUNCTIONS[name]
    if len(args) == 1 and name in FUNCTIONS1:
        fn, arg = FUNCTIONS1[name], compile_node(args[0])
        return lambda v: fn(v, arg)
    known = sorted(set(FUNCTIONS) | {f"{n}/1" for n in FUNCTIONS1})
    raise ConfigError(f"jq function {name}/{len(args)} is not supported; supported: {', '.join(known)}")



_SCALAR_FUNCTIONS1 = {"map", "max_by", "min_by", "sort_by", "any", "all"}  # one output whatever the argument
_ARG_SCALAR_FUNCTIONS1 = {"startswith", "endswith", "has", "test", "split", "join", "contains"}


def compile_scalar(node) -> Callable[[Any], Any] | None:
    """value -> its single output, or None when `node` may have zero or several outputs."""
    kind = node[0]
    if kind == "id":
        return lambda v: v
    if kind == "lit":
        value = node[1]
        return lambda v: value
    if kind == "field":
        name = node[2]
        if node[1] == ("id",):
            return lambda v: v.get(name) if type(v) is dict else index_value(v, name)
        base = compile_scalar(node[1])
        if base is None:
            return None

        def field(v):
            x = base(v)
            return x.get(name) if type(x) is dict else index_value(x, name)
        return field
    if kind == "index":
        base, key_f = compile_scalar(node[1]), compile_scalar(node[2])
        if base is None or key_f is None:
            return None
        if node[2][0] == "lit" and type(node[2][1]) is int and node[2][1] >= 0:
            k = node[2][1]

            def item(v):
                x = base(v)
                if type(x) is list:
                    return x[k] if k < len(x) else None
                return index_value(x, k)
            return item
        return lambda v: index_value(base(v), key_f(v))
    if kind == "slice":
        parts = [compile_scalar(n) if n is not None else (lambda v: None) for n in node[1:]]
        if any(p is None for p in parts):
            return None
        base, lo, hi = parts
        return lambda v: slice_value(base(v), lo(v), hi(v))
    if kind == "pipe":
        left, right = compile_scalar(node[1]), compile_scalar(node[2])
        if left is None or right is None:
            return None
        return lambda v: right(left(v))
    if kind == "alt":
        left, right = compile_scalar(node[1]), compile_scalar(node[2])
        if left is None or right is None:
            return None

        def alternative(v):
            try:
                x = left(v)
            except EVAL_ERRORS:
                return right(v)
            return x if x is not None and x is not False else right(v)
        return alternative
    if kind in ("and", "or"):
        left, right = compile_scalar(node[1]), compile_scalar(node[2])
        if left is None or right is None:
            return None
        if kind == "and":
            return lambda v: jq_truthy(left(v)) and jq_truthy(right(v))
        return lambda v: jq_truthy(left(v)) or jq_truthy(right(v))
    if kind == "cmp":
        test = CMP[node[1]]
        left, right = compile_scalar(node[2]), compile_scalar(node[3])
        if left is None or right is None:
            return None
        return lambda v: test(left(v), right(v))
    if kind == "arith":
        op = node[1]
        left, right = compile_scalar(node[2]), compile_scalar(node[3])
        if left is None or right is None:
            return None
        return lambda v: arith(op, left(v), right(v))
    if kind == "neg":
        inner = compile_scalar(node[1])
        return None if inner is None else (lambda v: -need_number(inner(v)))
    if kind == "array":
        if node[1] is None:
            return lambda v: []
        inner = compile_node(node[1])
        return inner  # [f] has one output: the list of f's outputs, which is what `inner` returns
    if kind == "if":
        cond, then, other = (compile_scalar(n) for n in node[1:])
        if cond is None or then is None or other is None:
            return None
        return lambda v: then(v) if jq_truthy(cond(v)) else other(v)
    if kind == "call":
        return _scalar_call(node[1], node[2])
    return None


def _scalar_call(name: str, args: list) -> Callable[[Any], Any] | None:
    if name == "test" and (test := _literal_test(args)) is not None:
        return lambda v: test(v)[0]
    if not args and name in FUNCTIONS and name not in ("empty", "values"):
        fn = FUNCTIONS[name]
        return lambda v: fn(v)[0]
    if len(args) == 1 and (name in _SCALAR_FUNCTIONS1 or (
            name in _ARG_SCALAR_FUNCTIONS1 and compile_scalar(args[0]) is not None)):
        fn, arg = FUNCTIONS1[name], compile_node(args[0])
        return lambda v: fn(v, arg)[0]
    return None
