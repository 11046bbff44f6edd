"""A safe evaluator for the subset of jq that Dolma mixer configs use (no Python `eval`).

Supported: `.`, `.key`, `."key"`, `.[i]` (negative from the end), `.[a:b]`, `.[]`, `..`, `?`, `|`, `,`,
`//`, `==` `!=` `<` `<=` `>` `>=`, `and` `or` `not`, `+ - * / %`, literals, `[...]` arrays,
`if .. then .. elif .. else .. end`, and the builtins in `FUNCTIONS`/`FUNCTIONS1` (length, add, map,
select, keys, to_entries, startswith, max_by ...). Expressions are parsed once into Python closures that
map one input value to the list of its outputs.

Semantics follow jq: indexing null gives null (so a missing attribute never raises), comparisons use jq's
total order with numbers compared by value, `a // b` gives `b` when `a` has no truthy output. A real
type error (indexing a string with a number, adding a string to a number) raises `EvalError`, and so does
anything else a builtin raises on a document's values (see `mixers.values.guard`).

Bounded on hostile documents: `..` and comparisons walk values with an explicit stack (no recursion),
`test` takes only a literal pattern, compiled once, and each match has a time bound.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from dolma_pipeline.errors import ConfigError
from mixers.jq_compile import compile_node, compile_scalar
from mixers.parsing import TokenParser
from mixers.values import guard

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
        self.attribute_keys: set[str] = set()
        try:
            tree = _Parser(text).parse()
            scalar = compile_scalar(tree)
            outputs = compile_node(tree) if scalar is None else None
            _attribute_keys(tree, self.attribute_keys)
        except RecursionError:  # parsing and compiling recurse on the expression (from the config)
            raise ConfigError(f"jq expression {text[:80]!r}...: nested too deeply") from None
        self.scalar = guard(scalar) if scalar is not None else None
        if scalar is not None:
            self.outputs: Fn = guard(lambda v: [scalar(v)])
        else:
            self.outputs = guard(outputs)

    def __repr__(self) -> str:
        return f"JqExpression({self.text!r})"


def compile_jq(text: str) -> JqExpression:
    return JqExpression(text)
