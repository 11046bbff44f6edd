"""How much of a source file is natural language: the measures behind the StarCoder code taggers.

- Python: docstrings (of the module, classes and functions, read with `ast`) and comments (read with
  `tokenize`, "#" removed); other languages: the characters of Pygments' single- and multi-line comment
  tokens. The ratio is over the whole file's characters, as in BigCode's StarCoder preprocessing.
- HTML: the characters of the visible text (BeautifulSoup, scripts and styles removed) over the page's, 0
  when the visible text has 100 characters or fewer.
"""

from __future__ import annotations

import ast
import io
import tokenize

_DOCSTRING_NODES = {ast.ClassDef: "Class", ast.FunctionDef: "Function/Method", ast.Module: "Module"}


def python_docstrings(source: str) -> str:
    """The docstrings of the module, its classes and (non-async) functions, grouped by kind then name."""
    try:
        found = [(_DOCSTRING_NODES[type(node)], getattr(node, "name", None) or "", ast.get_docstring(node))
                 for node in ast.walk(ast.parse(source)) if type(node) in _DOCSTRING_NODES]
    except Exception:  # unparsable code (SyntaxError, RecursionError, ...): no docstrings, as BigCode's
        return ""
    return "\n".join(doc for _, _, doc in sorted(found, key=lambda f: (f[0], f[1])) if doc)


def python_comments(source: str) -> str:
    """Every comment of the file, concatenated, with "#" removed; "" if the file does not tokenize."""
    try:
        comments = [(kind, value) for kind, value, *_ in tokenize.generate_tokens(io.StringIO(source).readline)
                    if kind == tokenize.COMMENT]
        return tokenize.untokenize(comments).replace("#", "")
    except Exception:
        return ""


def python_text(source: str) -> str:
    return (python_docstrings(source) + "\n" + python_comments(source)).strip()


def comment_characters(source: str, language: str) -> int:
    """Characters in Pygments' `Comment.Single` and `Comment.Multiline` tokens (language = lexer alias)."""
    import pygments
    from pygments.lexers import get_lexer_by_name
    from pygments.token import Comment

    kinds = (Comment.Multiline, Comment.Single)
    return sum(len(value) for kind, value in pygments.lex(source, get_lexer_by_name(language)) if kind in kinds)


def natural_language_ratio(source: str, language: str) -> float:
    """Docstring and comment characters over all characters; raises on an empty file or unknown lexer."""
    if language == "python":
        return len(python_text(source)) / len(source)
    return comment_characters(source, language) / len(source)


def html_visible_ratio(html: str) -> float:
    """Visible-text characters over page characters, 0 unless the visible text exceeds 100 characters."""
    from bs4 import BeautifulSoup

    try:
        soup = BeautifulSoup(html, features="html.parser")
    except (TypeError, UnboundLocalError):
        return 0.0
    for element in soup(["script", "style"]):
        element.extract()
    text = soup.get_text()
    return (len(text) / len(html)) * (len(text) > 100)
