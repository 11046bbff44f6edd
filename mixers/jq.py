"""A safe evaluator for the subset of jq that Dolma mixer configs use (no Python `eval`).

Supported: `.`, `.key`, `."key"`, `.[i]` (negative from the end), `.[a:b]`, `.[]`, `..`, `?`, `|`, `,`,
`//`, `==` `!=` `<` `<=` `>` `>=`, `and` `or` `not`, `+ - * / %`, literals, `[...]` arrays,
`if .. then .. elif .. else .. end`, and the builtins in `FUNCTIONS`/`FUNCTIONS1` (length, add, map,
select, keys, to_entries, startswith, max_by ...). Expressions are parsed once into Python closures that
map one input value to the list of its outputs.

Semantics follow jq: indexing null gives null (so a missing attribute never raises), comparisons use jq's
total order with numbers compared by value, `a // b` gives `b` when `a` has no truthy output. A real
type error (indexing a string with a number, adding a string to a number) raises `EvalError`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import cmp_to_key
from typing import Any

from dolma_pipeline.errors import ConfigError
from mixers.parsing import TokenParser
from mixers.values import EvalError, compare, equal, is_number, jq_truthy, type_name

Fn = Callable[[Any], list]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\.\.|//|==|!=|<=|>=|[.|,<>+\-*/%()\[\]{}:;?])
""", re.VERBOSE)

KEYWORDS = {"and", "or", "if", "then", "elif", "else", "end", "null", "true", "false"}


def tokenize(text: str) -> list[tuple[str, Any, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ConfigError(f"jq expression {text!r}: unexpected character {text[pos]!r} at column {pos + 1}")
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "num":
            tokens.append(("num", float(value) if any(c in value for c in ".eE") else int(value), pos))
        elif kind == "str":
            tokens.append(("str", json.loads(value), pos))
        elif kind == "field":
            tokens.append(("field", value[1:], pos))
        elif kind == "ident":
            tokens.append(("kw" if value in KEYWORDS else "ident", value, pos))
        elif kind == "op":
            tokens.append(("op", value, pos))
        pos = m.end()
    tokens.append(("eof", None, len(text)))
    return tokens


# ---------------------------------------------------------------------------------------------- parsing
# The AST is made of tuples: (kind, ...). Kinds: id, lit, field(base, name), index(base, expr),
# slice(base, lo, hi), iter(base), try(base), recurse, pipe, comma, alt, or, and, cmp(op), arith(op),
# neg, array(expr|None), if(cond, then, else), call(name, args).
class _Parser(TokenParser):
    language = "jq expression"

    def __init__(self, text: str):
        super().__init__(text, tokenize(text))

    def parse(self):
        node = self.pipe()
        if not self.at("eof"):
            self.fail("unexpected token")
        return node

    def pipe(self):
        left = self.comma()
        if self.at("op", "|"):
            self.take()
            return ("pipe", left, self.pipe())
        return left

    def comma(self):
        node = self.alt()
        while self.at("op", ","):
            self.take()
            node = ("comma", node, self.alt())
        return node

    def alt(self):
        left = self.or_()
        if self.at("op", "//"):
            self.take()
            return ("alt", left, self.alt())
        return left

    def or_(self):
        node = self.and_()
        while self.at("kw", "or"):
            self.take()
            node = ("or", node, self.and_())
        return node

    def and_(self):
        node = self.cmp()
        while self.at("kw", "and"):
            self.take()
            node = ("and", node, self.cmp())
        return node

    def cmp(self):
        left = self.additive()
        tok = self.peek()
        if tok[0] == "op" and tok[1] in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            return ("cmp", tok[1], left, self.additive())
        return left

    def additive(self):
        node = self.multiplicative()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            node = ("arith", op, node, self.multiplicative())
        return node

    def multiplicative(self):
        node = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/", "%"):
            op = self.take()[1]
            node = ("arith", op, node, self.unary())
        return node

    def unary(self):
        if self.at("op", "-"):
            self.take()
            return ("neg", self.unary())
        return self.postfix(self.term())

    def postfix(self, node):
        while True:
            if self.at("field"):
                node = ("field", node, self.take()[1])
            elif self.at("op", ".") and self.tokens[self.i + 1][0] == "str":
                self.take()
                node = ("field", node, self.take()[1])
            elif self.at("op", ".") and self.tokens[self.i + 1][:2] == ("op", "["):
                self.take()
            elif self.at("op", "["):
                node = self.bracket(node)
            elif self.at("op", "?"):
                self.take()
                node = ("try", node)
            else:
                return node

    def bracket(self, base):
        self.expect("op", "[")
        if self.at("op", "]"):
            self.take()
            return ("iter", base)
        lo = None if self.at("op", ":") else self.pipe()
        if self.at("op", ":"):
            self.take()
            hi = None if self.at("op", "]") else self.pipe()
            self.expect("op", "]")
            return ("slice", base, lo, hi)
        self.expect("op", "]")
        return ("index", base, lo)

    def term(self):
        kind, value, _ = self.peek()
        if kind == "num" or kind == "str":
            self.take()
            return ("lit", value)
        if kind == "kw" and value in ("null", "true", "false"):
            self.take()
            return ("lit", {"null": None, "true": True, "false": False}[value])
        if kind == "field":
            self.take()
            return ("field", ("id",), value)
        if kind == "op" and value == ".":
            self.take()
            if self.at("str"):
                return ("field", ("id",), self.take()[1])
            return ("id",)
        if kind == "op" and value == "..":
            self.take()
            return ("recurse",)
        if kind == "op" and value == "(":
            self.take()
            node = self.pipe()
            self.expect("op", ")")
            return node
        if kind == "op" and value == "[":
            self.take()
            if self.at("op", "]"):
                self.take()
                return ("array", None)
            node = self.pipe()
            self.expect("op", "]")
            return ("array", node)
        if kind == "kw" and value == "if":
            return self.if_()
        if kind == "ident":
            self.take()
            args = []
            if self.at("op", "("):
                self.take()
                args.append(self.pipe())
                while self.at("op", ";"):
                    self.take()
                    args.append(self.pipe())
                self.expect("op", ")")
            return ("call", value, args)
        self.fail("expected a value, path or function")

    def if_(self):
        self.expect("kw", "if")
        cond = self.pipe()
        self.expect("kw", "then")
        then = self.pipe()
        if self.at("kw", "elif"):
            self.tokens[self.i] = ("kw", "if", self.peek()[2])
            other = self.if_()
            return ("if", cond, then, other)
        other = ("id",)
        if self.at("kw", "else"):
            self.take()
            other = self.pipe()
        self.expect("kw", "end")
        return ("if", cond, then, other)


# ---------------------------------------------------------------------------------------------- runtime
def _index(value: Any, key: Any) -> Any:
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


def _iterate(value: Any) -> list:
    if type(value) is list:
        return value
    if type(value) is dict:
        return list(value.values())
    raise EvalError(f"cannot iterate over {type_name(value)}")


def _slice(value: Any, lo: Any, hi: Any) -> Any:
    if value is None:
        return None
    if type(value) not in (list, str):
        raise EvalError(f"cannot slice {type_name(value)}")
    lo_i = None if lo is None else int(math.floor(lo))
    hi_i = None if hi is None else int(math.ceil(hi))
    return value[lo_i:hi_i]


def _arith(op: str, a: Any, b: Any) -> Any:
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


_CMP = {
    "==": lambda a, b: equal(a, b),
    "!=": lambda a, b: not equal(a, b),
    "<": lambda a, b: compare(a, b) < 0,
    "<=": lambda a, b: compare(a, b) <= 0,
    ">": lambda a, b: compare(a, b) > 0,
    ">=": lambda a, b: compare(a, b) >= 0,
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
    items = _iterate(v) if v is not None else []
    total = None
    for item in items:
        total = _arith("+", total, item)
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
    "from_entries": lambda v: [{(e.get("key", e.get("name"))): e.get("value") for e in _iterate(v)}],
    "values": lambda v: [v] if v is not None else [],
    "empty": lambda v: [],
    "type": lambda v: [type_name(v)],
    "tostring": lambda v: [_tostring(v)],
    "tonumber": lambda v: [_tonumber(v)],
    "tojson": lambda v: [json.dumps(v, separators=(",", ":"), ensure_ascii=False)],
    "first": lambda v: [_index(v, 0)],
    "last": lambda v: [_index(v, -1)],
    "max": lambda v: [_sorted(_iterate(v))[-1] if v else None],
    "min": lambda v: [_sorted(_iterate(v))[0] if v else None],
    "sort": lambda v: [_sorted(_iterate(v))],
    "unique": lambda v: [_unique(_iterate(v))],
    "reverse": lambda v: [v[::-1] if v is not None else []],
    "any": lambda v: [any(jq_truthy(x) for x in _iterate(v))],
    "all": lambda v: [all(jq_truthy(x) for x in _iterate(v))],
    "floor": lambda v: [math.floor(_num(v))],
    "ceil": lambda v: [math.ceil(_num(v))],
    "round": lambda v: [math.floor(_num(v) + 0.5)],
    "sqrt": lambda v: [math.sqrt(_num(v))],
    "fabs": lambda v: [abs(_num(v))],
    "abs": lambda v: [abs(_num(v))],
    "log": lambda v: [math.log(_num(v)) if _num(v) > 0 else float("-inf")],
    "ascii_downcase": lambda v: [_need_str(v, "ascii_downcase").lower()],
    "ascii_upcase": lambda v: [_need_str(v, "ascii_upcase").upper()],
    "isnull": lambda v: [v is None],
}


def _num(v: Any) -> Any:
    if not is_number(v):
        raise EvalError(f"{type_name(v)} is not a number")
    return v


def _unique(items: list) -> list:
    out: list = []
    for x in _sorted(items):
        if not out or not equal(out[-1], x):
            out.append(x)
    return out


def _recurse(v: Any) -> list:
    out = [v]
    if type(v) is list:
        for x in v:
            out.extend(_recurse(x))
    elif type(v) is dict:
        for x in v.values():
            out.extend(_recurse(x))
    return out


# Builtins with one argument (a sub-expression): (value, compiled argument) -> list of outputs.
def _map(v: Any, f: Fn) -> list:
    return [[y for x in _iterate(v) for y in f(x)]]


def _select(v: Any, f: Fn) -> list:
    return [v for ok in f(v) if jq_truthy(ok)]


def _by(v: Any, f: Fn, pick: int) -> list:
    items = _iterate(v) if v is not None else []
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
            out.append(0 <= int(_num(key)) < len(v))
        else:
            raise EvalError(f"cannot check whether {type_name(v)} has a key")
    return out


def _test(v: Any, f: Fn) -> list:
    return [re.search(_need_str(p, "test"), _need_str(v, "test")) is not None for p in f(v)]


FUNCTIONS1: dict[str, Callable[[Any, Fn], list]] = {
    "map": _map,
    "select": _select,
    "max_by": lambda v, f: _by(v, f, -1),
    "min_by": lambda v, f: _by(v, f, 0),
    "sort_by": lambda v, f: [_sorted(_iterate(v), key=lambda x: f(x))],
    "startswith": _startswith,
    "endswith": _endswith,
    "has": _has,
    "test": _test,
    "any": lambda v, f: [any(jq_truthy(y) for x in _iterate(v) for y in f(x))],
    "all": lambda v, f: [all(jq_truthy(y) for x in _iterate(v) for y in f(x))],
    "first": lambda v, f: f(v)[:1],
    "join": lambda v, f: [_need_str(sep, "join").join(_tostring(x) if x is not None else "" for x in _iterate(v))
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


# ---------------------------------------------------------------------------------------------- compiler
def _compile(node) -> Fn:
    kind = node[0]
    if kind == "id":
        return lambda v: [v]
    if kind == "lit":
        value = node[1]
        return lambda v: [value]
    if kind == "field":
        base, name = node[1], node[2]
        if base == ("id",):
            return lambda v: [_index(v, name)]
        base_f = _compile(base)
        return lambda v: [_index(x, name) for x in base_f(v)]
    if kind == "index":
        base_f, key_f = _compile(node[1]), _compile(node[2])
        if node[2][0] == "lit":
            key = node[2][1]
            return lambda v: [_index(x, key) for x in base_f(v)]
        return lambda v: [_index(x, k) for x in base_f(v) for k in key_f(v)]
    if kind == "slice":
        base_f = _compile(node[1])
        lo_f = _compile(node[2]) if node[2] is not None else (lambda v: [None])
        hi_f = _compile(node[3]) if node[3] is not None else (lambda v: [None])
        return lambda v: [_slice(x, lo, hi) for x in base_f(v) for lo in lo_f(v) for hi in hi_f(v)]
    if kind == "iter":
        base_f = _compile(node[1])
        return lambda v: [y for x in base_f(v) for y in _iterate(x)]
    if kind == "try":
        base_f = _compile(node[1])

        def attempt(v):
            try:
                return base_f(v)
            except EvalError:
                return []
        return attempt
    if kind == "recurse":
        return _recurse
    if kind == "pipe":
        left, right = _compile(node[1]), _compile(node[2])
        return lambda v: [y for x in left(v) for y in right(x)]
    if kind == "comma":
        left, right = _compile(node[1]), _compile(node[2])
        return lambda v: left(v) + right(v)
    if kind == "alt":
        left, right = _compile(node[1]), _compile(node[2])

        def alternative(v):
            try:
                found = [x for x in left(v) if jq_truthy(x)]
            except EvalError:
                found = []
            return found or right(v)
        return alternative
    if kind in ("and", "or"):
        left, right = _compile(node[1]), _compile(node[2])
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
        test = _CMP[node[1]]
        left, right = _compile(node[2]), _compile(node[3])
        return lambda v: [test(a, b) for b in right(v) for a in left(v)]
    if kind == "arith":
        op = node[1]
        left, right = _compile(node[2]), _compile(node[3])
        return lambda v: [_arith(op, a, b) for b in right(v) for a in left(v)]
    if kind == "neg":
        inner = _compile(node[1])
        return lambda v: [-_num(x) for x in inner(v)]
    if kind == "array":
        if node[1] is None:
            return lambda v: [[]]
        inner = _compile(node[1])
        return lambda v: [inner(v)]
    if kind == "if":
        cond, then, other = _compile(node[1]), _compile(node[2]), _compile(node[3])
        return lambda v: [y for c in cond(v) for y in (then(v) if jq_truthy(c) else other(v))]
    if kind == "call":
        return _compile_call(node[1], node[2])
    raise AssertionError(f"unknown node {kind}")


def _compile_call(name: str, args: list) -> Fn:
    if not args and name in FUNCTIONS:
        return FUNCTIONS[name]
    if len(args) == 1 and name in FUNCTIONS1:
        fn, arg = FUNCTIONS1[name], _compile(args[0])
        return lambda v: fn(v, arg)
    known = sorted(set(FUNCTIONS) | {f"{n}/1" for n in FUNCTIONS1})
    raise ConfigError(f"jq function {name}/{len(args)} is not supported; supported: {', '.join(known)}")


def _attribute_keys(node, out: set[str]) -> None:
    """Collect `K` of every `.attributes.K` path (for validation against the attribute files)."""
    if not isinstance(node, tuple):
        return
    if node[0] in ("field", "index") and isinstance(node[1], tuple) and node[1][0] == "field" \
            and node[1][2] == "attributes" and node[1][1] == ("id",):
        key = node[2] if node[0] == "field" else (node[2][1] if node[2][0] == "lit" else None)
        if isinstance(key, str):
            out.add(key)
    for child in node[1:]:
        if isinstance(child, tuple):
            _attribute_keys(child, out)
        elif isinstance(child, list):
            for item in child:
                _attribute_keys(item, out)


class JqExpression:
    """A compiled jq expression: `outputs(value)` lists every output; `attribute_keys` the keys it reads."""

    def __init__(self, text: str):
        self.text = text
        tree = _Parser(text).parse()
        self.outputs: Fn = _compile(tree)
        self.attribute_keys: set[str] = set()
        _attribute_keys(tree, self.attribute_keys)

    def __repr__(self) -> str:
        return f"JqExpression({self.text!r})"


def compile_jq(text: str) -> JqExpression:
    return JqExpression(text)
