"""HTML → text: `resiliparse` (the default) and `trafilatura`, with Dolma 1.2.1's options by default.

Options are set through `linearizer_options` (e.g. `{main_content: false}`); an unknown option is an
error. Third-party linearizers register with `@LINEARIZERS.register("name")` in a module passed through
`tagger_modules`, or through the entry-point group `dolma_pipeline.linearizers`.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from dolma_pipeline.errors import ConfigError
from dolma_pipeline.registry import Registry


class Linearizer:
    """Turns one decoded HTML page into plain text."""

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **options: Any):
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise ConfigError(f"linearizer {self.name}: unknown option(s) {unknown}; valid: {sorted(self.defaults)}")
        self.options = {**self.defaults, **options}

    def linearize(self, html: str) -> str:
        """The page's text ('' when there is none)."""
        raise NotImplementedError


LINEARIZERS: Registry[Linearizer] = Registry("linearizer", "dolma_pipeline.linearizers")


@LINEARIZERS.register("resiliparse")
class Resiliparse(Linearizer):
    """resiliparse's `extract_plain_text` (main content, block formatting, list bullets), as Dolma calls it."""

    defaults: ClassVar[dict[str, Any]] = dict(
        preserve_formatting=True, main_content=True, list_bullets=True, alt_texts=False, links=False,
        form_fields=False, noscript=False, comments=True, skip_elements=None,
    )

    def __init__(self, **options: Any):
        super().__init__(**options)
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree

        self._parse, self._extract = HTMLTree.parse, extract_plain_text

    def linearize(self, html: str) -> str:
        return self._extract(self._parse(html), **self.options)


@LINEARIZERS.register("trafilatura")
class Trafilatura(Linearizer):
    """trafilatura's `extract` to plain text, with Dolma's options (no comments, links, tables or formatting)."""

    defaults: ClassVar[dict[str, Any]] = dict(
        include_comments=False, include_links=False, include_tables=False, fast=False, favor_precision=False,
        favor_recall=False, include_formatting=False, deduplicate=False,
    )
    FLUSH_AFTER = 10_000  # trafilatura's caches grow without bound; Dolma resets them as often

    def __init__(self, **options: Any):
        if "no_fallback" in options:  # Dolma's (and trafilatura 1.x's) name for `fast`
            options["fast"] = options.pop("no_fallback")
        super().__init__(**options)
        import trafilatura
        import trafilatura.meta

        logging.getLogger("trafilatura").setLevel(logging.CRITICAL)
        self._extract, self._reset = trafilatura.extract, trafilatura.meta.reset_caches
        self._count = 0

    def linearize(self, html: str) -> str:
        self._count += 1
        if self._count >= self.FLUSH_AFTER:
            self._reset()
            self._count = 0
        return self._extract(html, output_format="txt", **self.options) or ""


def build_linearizer(name: str, options: dict[str, Any] | None = None) -> Linearizer:
    """Instantiate the named linearizer; unknown names and options are ConfigErrors naming the choices."""
    cls = LINEARIZERS.get(name)
    return cls(**(options or {}))
