"""A safe evaluator for the JSONPath forms Dolma mixer configs use (no Python `eval`).

Paths: `$` (also Dolma's `$@`), `.key`, `['key']`, `["key"]`, `[n]` (negative from the end), `[a:b]`,
`[*]`, `.*`, `..key`, and filters `[?( ... )]` with `@.path` / `$.path` operands, number/string/boolean/
null literals, `== != < <= > >=`, `&&`, `||`, `!` and parentheses.

Semantics (documented choices):
- A filter applied to an object tests the object itself as `@` (what Dolma's `$.attributes[?(@.k ...)]`
  relies on); applied to an array it tests each element.
- A bare operand (`@.k`) is true when the path selects something that is not null.
- A comparison is true when some selected value on the left and some on the right satisfy it; a missing
  path selects nothing, so every comparison with it is false. Numbers compare by value (`1 == 1.0`, which
  Dolma gets wrong); `<`-style comparisons need two numbers or two strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from dolma_pipeline.errors import ConfigError
from mixers.parsing import TokenParser
from mixers.values import compare, descendants, equal, guard, is_number

Selector = Callable[[Any, Any], list]  # (current node, root) -> selected nodes

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_\-]*)
  | (?P<op>\$@|\.\.|\[\?\(|&&|\|\||==|!=|<=|>=|[$@.\[\]()*:,<>!?])
""", re.VERBOSE)


def _tokenize(text: str) -> list[tuple[str, Any, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ConfigError(f"JSONPath {text!r}: unexpected character {text[pos]!r} at column {pos + 1}")
        kind, value = m.lastgroup, m.group(m.lastgroup)
        if kind == "num":
            tokens.append(("num", float(value) if any(c in value for c in ".eE") else int(value), pos))
        elif kind == "str":
            if value[0] == "'":
                value = '"' + value[1:-1].replace('\\"', '"').replace('"', '\\"') + '"'
            tokens.append(("str", json.loads(value), pos))
        elif kind != "ws":
            tokens.append((kind, value, pos))
        pos = m.end()
    tokens.append(("eof", None, len(text)))
    return tokens


def _children(node: Any) -> list:
    if type(node) is dict:
        return list(node.values())
    if type(node) is list:
        return node
    return []




class _Parser(TokenParser):
    language = "JSONPath"

    def __init__(self, text: str):
        super().__init__(text, _tokenize(text))
        self.attribute_keys: set[str] = set()

    # path := ('$' | '$@' | '@') step*
    def path(self, keys_scope: list[str] | None = None) -> tuple[Selector, list[str] | None]:
        """A selector and, while it is a plain `$.a.b` chain, the names along it (for key validation)."""
        tok = self.take()
        if tok[0] != "op" or tok[1] not in ("$", "$@", "@"):
            self.i -= 1
            self.fail("a path starts with $ or @")
        relative = tok[1] == "@"
        chain: list[str] | None = list(keys_scope) if relative and keys_scope is not None else ([] if not relative else None)
        steps: list[Callable[[list, Any], list]] = []
        plain: list[str | int] | None = []  # while every step picks one key or index: those, for a direct walk
        while True:
            if self.at("op", ".") or self.at("op", ".."):
                deep = self.take()[1] == ".."
                if self.at("op", "*"):
                    self.take()
                    steps.append(_deep_all if deep else _all_children)
                    chain = plain = None
                    continue
                if self.at("op", "["):
                    if not deep:
                        self.fail("unexpected '.['")
                    steps.append(lambda nodes, root: [d for n in nodes for d in descendants(n)])
                    chain = plain = None
                    continue
                name = self.take()
                if name[0] not in ("name", "str", "num"):
                    self.i -= 1
                    self.fail("expected a key name")
                key = str(name[1])
                steps.append(_deep_key(key) if deep else _key(key))
                plain = None if deep or plain is None else plain + [key]
                chain = None if deep or chain is None else chain + [key]
                self._note_key(chain)
            elif self.at("op", "["):
                step, key, item = self.bracket()
                steps.append(step)
                plain = None if item is None or plain is None else plain + [item]
                chain = None if key is None or chain is None else chain + [key]
                self._note_key(chain)
            elif self.at("op", "[?("):
                scope = chain
                self.take()
                predicate = self.filter_or(scope)
                self.expect("op", ")")
                self.expect("op", "]")
                steps.append(_filter_step(predicate))
                chain = plain = None
            else:
                break
        if plain:
            return _walk(plain, relative), chain

        def select(current: Any, root: Any) -> list:
            nodes = [current if relative else root]
            for step in steps:
                nodes = step(nodes, root)
                if not nodes:
                    return nodes
            return nodes
        return select, chain

    def _note_key(self, chain: list[str] | None) -> None:
        if chain and len(chain) == 2 and chain[0] == "attributes":
            self.attribute_keys.add(chain[1])

    def bracket(self) -> tuple[Callable[[list, Any], list], str | None, str | int | None]:
        """The step, the key when it picks one key by name, and the key or index when it picks exactly one."""
        self.expect("op", "[")
        if self.at("op", "*"):
            self.take()
            self.expect("op", "]")
            return _all_children, None, None
        items = []
        while True:
            tok = self.take()
            if tok[0] == "str":
                items.append(tok[1])
            elif tok[0] == "num" and self.at("op", ":") or tok[0] == "op" and tok[1] == ":":
                if tok[0] == "num":
                    self.take()
                lo = tok[1] if tok[0] == "num" else None
                hi = self.take()[1] if self.at("num") else None
                self.expect("op", "]")
                return _slice_step(lo, hi), None, None
            elif tok[0] == "num" and isinstance(tok[1], int):
                items.append(tok[1])
            else:
                self.i -= 1
                self.fail("expected a key, an index, * or a filter")
            if self.at("op", ","):
                self.take()
                continue
            self.expect("op", "]")
            break
        single = items[0] if len(items) == 1 and isinstance(items[0], str) else None
        return _pick(items), single, items[0] if len(items) == 1 else None

    # filter := and ('||' and)* ; and := unary ('&&' unary)* ; unary := '!' unary | cmp
    def filter_or(self, scope):
        terms = [self.filter_and(scope)]
        while self.at("op", "||"):
            self.take()
            terms.append(self.filter_and(scope))
        return terms[0] if len(terms) == 1 else (lambda c, r: any(t(c, r) for t in terms))

    def filter_and(self, scope):
        terms = [self.filter_unary(scope)]
        while self.at("op", "&&"):
            self.take()
            terms.append(self.filter_unary(scope))
        return terms[0] if len(terms) == 1 else (lambda c, r: all(t(c, r) for t in terms))

    def filter_unary(self, scope):
        if self.at("op", "!"):
            self.take()
            inner = self.filter_unary(scope)
            return lambda c, r: not inner(c, r)
        if self.at("op", "("):
            self.take()
            inner = self.filter_or(scope)
            self.expect("op", ")")
            return inner
        left = self.operand(scope)
        tok = self.peek()
        if tok[0] == "op" and tok[1] in ("==", "!=", "<", "<=", ">", ">="):
            self.take()
            right = self.operand(scope)
            return _comparison(tok[1], left, right)
        return lambda c, r: any(v is not None for v in left(c, r))

    def operand(self, scope) -> Selector:
        tok = self.peek()
        if tok[0] == "op" and tok[1] in ("$", "$@", "@"):
            select, _ = self.path(scope)
            return select
        self.take()
        if tok[0] in ("num", "str"):
            value = tok[1]
            return lambda c, r: [value]
        if tok[0] == "name" and tok[1] in ("true", "false", "null"):
            value = {"true": True, "false": False, "null": None}[tok[1]]
            return lambda c, r: [value]
        self.i -= 1
        self.fail("expected a path or a literal")


def _walk(plain: list[str | int], relative: bool):
    """A path of single keys and indices (`$.a.b[0][2]`): at most one node, found without node lists."""
    def select(current: Any, root: Any) -> list:
        node = current if relative else root
        for item in plain:
            if type(item) is str:
                if type(node) is not dict or item not in node:
                    return []
            elif type(node) is not list or not -len(node) <= item < len(node):
                return []
            node = node[item]
        return [node]
    return select


def _key(key: str):
    return lambda nodes, root: [n[key] for n in nodes if type(n) is dict and key in n]


def _deep_key(key: str):
    return lambda nodes, root: [d[key] for n in nodes for d in descendants(n) if type(d) is dict and key in d]


def _all_children(nodes, root):
    return [c for n in nodes for c in _children(n)]


def _deep_all(nodes, root):
    return [d for n in nodes for c in _children(n) for d in descendants(c)]


def _pick(items: list):
    def step(nodes, root):
        out = []
        for n in nodes:
            for item in items:
                if isinstance(item, str):
                    if type(n) is dict and item in n:
                        out.append(n[item])
                elif type(n) is list and -len(n) <= item < len(n):
                    out.append(n[item])
        return out
    return step


def _slice_step(lo, hi):
    return lambda nodes, root: [x for n in nodes if type(n) is list for x in n[lo:hi]]


def _filter_step(predicate):
    def step(nodes, root):
        out = []
        for n in nodes:
            if type(n) is list:
                out.extend(x for x in n if predicate(x, root))
            elif predicate(n, root):
                out.append(n)
        return out
    return step


def _ordered(test):
    def check(a, b):
        if is_number(a) and is_number(b) or type(a) is str and type(b) is str:
            return test(compare(a, b))
        return False
    return check


_TESTS = {
    "==": equal,
    "!=": lambda a, b: not equal(a, b),
    "<": _ordered(lambda c: c < 0),
    "<=": _ordered(lambda c: c <= 0),
    ">": _ordered(lambda c: c > 0),
    ">=": _ordered(lambda c: c >= 0),
}


def _comparison(op: str, left: Selector, right: Selector):
    test = _TESTS[op]
    return lambda c, r: any(test(a, b) for a in left(c, r) for b in right(c, r))


class JsonPath:
    """A compiled JSONPath: `select(doc)` lists the selected nodes; `attribute_keys` the keys it reads."""

    def __init__(self, text: str):
        self.text = text
        parser = _Parser(text)
        try:
            select, _ = parser.path()
        except RecursionError:
            raise ConfigError(f"JSONPath {text[:80]!r}...: nested too deeply") from None
        self._guarded = guard(lambda doc: select(doc, doc))
        if not parser.at("eof"):
            parser.fail("unexpected token after the path")
        self.attribute_keys = parser.attribute_keys

    def select(self, doc: Any) -> list:
        return self._guarded(doc)

    def __repr__(self) -> str:
        return f"JsonPath({self.text!r})"


def compile_jsonpath(text: str) -> JsonPath:
    return JsonPath(text)
