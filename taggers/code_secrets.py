"""Secrets in code (keys, tokens, passwords) with Dolma's `code_secrets_v1` keys and values (detect-secrets).

As Dolma: the text's lines (`str.splitlines`) are scanned by every detect-secrets plugin with its default
filters, as a file named `code_str.yml`, and each distinct secret (per value and type) found becomes a
`SECRET_<type>` span, placed on the first line of the text equal to the line it was found on; `doc` is the
number of secrets per whitespace word (-1 without words).

Dolma enters detect-secrets' default settings for every document (a reconfiguration of all plugins each
time) and runs the library's scan, which works out every plugin's and filter's arguments at every call;
here the settings are entered once per worker and the scan is `taggers.code_secrets_scan.LineScan`: the
same calls, resolved once (same findings, in the same order). A secret whose placement does not reproduce
its value (Dolma asserts and crashes) is left out.
"""

from __future__ import annotations

import atexit
from typing import Any

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.tagger import TAGGERS, Tagger
from taggers.code_secrets_scan import LineScan

FILENAME = "code_str.yml"
_SETTINGS: Any = None  # held: the settings' context manager restores the previous ones when collected
_SCAN: LineScan | None = None


def line_scan() -> LineScan:
    """detect-secrets' line scan with every plugin and the default filters, built once per process (the
    settings are entered for good: Dolma enters the same ones for every document)."""
    global _SETTINGS, _SCAN
    if _SCAN is None:
        from detect_secrets.settings import default_settings

        _SETTINGS = default_settings()
        _SETTINGS.__enter__()
        # Left before the interpreter's teardown, where leaving them fails (a traceback on stderr).
        atexit.register(_SETTINGS.__exit__, None, None, None)
        _SCAN = LineScan(FILENAME)
    return _SCAN


def find_secrets(text: str) -> list[Any]:
    """detect-secrets' findings in `text`, distinct per (value, type), ordered by line, hash and type."""
    from detect_secrets.core.secrets_collection import SecretsCollection

    found = SecretsCollection()
    for secret in line_scan().scan(text.splitlines()):
        found[FILENAME].add(secret)
    return [secret for _, secret in found]


@TAGGERS.register("code_secrets_v1")
class CodeSecrets(Tagger):
    """detect-secrets findings as `SECRET_<type>` spans and secrets per word (`doc`)."""

    def setup(self) -> None:
        try:
            line_scan()
        except ImportError as e:
            raise ConfigError(f"tagger {self.name} needs the PyPI package detect-secrets: {e}") from None

    def predict(self, doc: Document) -> list[Span]:
        self.setup()
        text = doc.text
        lines = text.splitlines()
        spans = []
        for secret in find_secrets(text):
            value = secret.secret_value or ""
            line = lines[secret.line_number - 1]
            start = text.find(line) + line.find(value)
            if text[start : start + len(value)] != value:
                continue
            spans.append(Span(start, start + len(value), "SECRET_" + secret.type.replace(" ", "_")))
        words = len(doc.words)
        return spans + [Span(0, len(text), "doc", len(spans) / words if words else -1.0)]
