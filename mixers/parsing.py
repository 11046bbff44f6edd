"""The token cursor shared by the jq and JSONPath parsers."""

from __future__ import annotations

from typing import Any

from dolma_pipeline.errors import ConfigError

Token = tuple[str, Any, int]  # (kind, value, column)


class TokenParser:
    """Walks a token list; `fail` raises a ConfigError naming the expression, the problem and the column."""

    language = "expression"

    def __init__(self, text: str, tokens: list[Token]):
        self.text = text
        self.tokens = tokens
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def at(self, kind: str, value: Any = None) -> bool:
        tok = self.tokens[self.i]
        return tok[0] == kind and (value is None or tok[1] == value)

    def expect(self, kind: str, value: Any = None) -> Token:
        if not self.at(kind, value):
            self.fail(f"expected {value or kind}")
        return self.take()

    def fail(self, problem: str):
        tok = self.peek()
        found = "end of expression" if tok[0] == "eof" else repr(tok[1])
        raise ConfigError(f"{self.language} {self.text!r}: {problem}, found {found} at column {tok[2] + 1}")
