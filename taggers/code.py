"""Code taggers with Dolma's names, keys and values: copyright headers, RedPajama and StarCoder statistics,
and the code/prose composition classifier. Secrets are in `taggers.code_secrets`.

The StarCoder taggers read the file's extension from `metadata.ext` (language from `taggers.code_languages`)
and its stars from `metadata.max_stars_count`, as Dolma does; the natural-language measures are in
`taggers.code_text`. Deliberate difference: Dolma's `code_starcoder_taggers_v2` crashes (ZeroDivisionError)
on an empty Python, Java or JavaScript file; here its `code_to_comment_ratio_doc` is then -1, the value
`code_starcoder_taggers_v1` gives to files it cannot measure.
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar

import numpy as np
import regex

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.tagger import TAGGERS, Tagger
from taggers.code_languages import EXT_TO_LANG
from taggers.code_text import html_visible_ratio, natural_language_ratio
from taggers.text_stats import cached, char_table, codepoints

_BLOCK_COMMENT = re.compile(r"/\*[^*]*\*+(?:[^/*][^*]*\*+)*/")
_COPYRIGHT = re.compile("copyright", re.IGNORECASE)
_PIECES = regex.compile(r"\w+|[^\w\s]+")


def copyright_spans(text: str) -> list[Span]:
    """The first /* ... */ block if it mentions "copyright" (`copyright_notice`); without any such block,
    the leading run of comment ("//", "#", "--") and empty lines (`comment_block`)."""
    block = _BLOCK_COMMENT.search(text)
    if block:
        return [Span(block.start(), block.end(), "copyright_notice")] if _COPYRIGHT.search(block.group()) else []
    lines = 0
    end = 0
    for line in text.split("\n"):
        if line and not line.startswith(("//", "#", "--")):
            break
        lines += 1
        # Dolma's count: an empty line adds 1, a comment line its length without the newline.
        end += len(line) if line else 1
    # Dolma's end can pass the end of the text (one per empty line): kept inside it here.
    return [Span(0, min(end, len(text)), "comment_block")] if lines else []


@TAGGERS.register("code_copyright_comments_v1")
class CodeCopyright(Tagger):
    """Copyright block comment or leading comment lines, and the fraction of the file they cover (`doc`)."""

    def predict(self, doc: Document) -> list[Span]:
        text = doc.text
        spans = copyright_spans(text)
        if not text:
            score = -1.0 if spans else 0.0
        else:
            score = (spans[0].end - spans[0].start + 1) / len(text) if spans else 0.0
        return spans + [Span(0, len(text), "doc", score)]


@TAGGERS.register("code_redpajama_taggers_v1")
class CodeRedPajama(Tagger):
    """RedPajama's code statistics: longest and mean line, alphanumeric share, letters per token."""

    def predict(self, doc: Document) -> list[Span]:
        text = doc.text
        n = len(text)
        lengths = [len(line) for line in text.splitlines()]
        tokens = len(_PIECES.split(text))
        codes = codepoints(doc)
        alpha = int(np.count_nonzero(char_table("alpha")[codes]))
        alnum = int(np.count_nonzero(char_table("alnum")[codes]))
        return [
            Span(0, n, "max_line_length_doc", float(max(lengths, default=0))),
            Span(0, n, "avg_line_length_doc", float(np.mean(lengths)) if lengths else 0.0),
            Span(0, n, "alnum_prop_doc", alnum / n if n else 0.0),
            Span(0, n, "alpha_token_prop_doc", alpha / tokens if tokens else 0.0),
        ]


def shared_natural_language_ratio(doc: Document, language: str) -> float:
    """`natural_language_ratio` of the document's text, computed once for both StarCoder names (they lex the
    same text with the same lexer; a failure is not kept, so each name meets it)."""
    return cached(doc, f"_natural_language_ratio_{language}", lambda d: natural_language_ratio(d.text, language))


def shared_html_visible_ratio(doc: Document) -> float:
    """`html_visible_ratio` of the document's text, computed once for both StarCoder names."""
    return cached(doc, "_html_visible_ratio", lambda d: html_visible_ratio(d.text))


class StarCoder(Tagger):
    """StarCoder's filters: XML template, GitHub stars, comment share, HTML visible-text share."""

    def language(self, doc: Document) -> str | None:
        ext = doc.metadata.get("ext", "-no-lang")
        return EXT_TO_LANG.get(ext) if isinstance(ext, str) else None

    def common(self, doc: Document) -> list[Span]:
        n = len(doc.text)
        return [Span(0, n, "has_xml_template_doc", 1.0 if "<?xml version=" in doc.text[:100] else 0.0),
                Span(0, n, "num_github_stars_doc", float(doc.metadata.get("max_stars_count", 0) or 0))]


@TAGGERS.register("code_starcoder_taggers_v1")
class StarCoderV1(StarCoder):
    """StarCoder filters, v1: natural-language share for every language Pygments knows (-1 otherwise)."""

    def predict(self, doc: Document) -> list[Span]:
        n = len(doc.text)
        language = self.language(doc)
        try:
            if language is None:
                raise KeyError(doc.metadata.get("ext"))
            nl_ratio = shared_natural_language_ratio(doc, language)
            html_ratio = shared_html_visible_ratio(doc) if language == "html" else 1.0
        except Exception:  # unknown extension or lexer, empty file: Dolma's "cannot tell"
            nl_ratio = html_ratio = -1.0
        return self.common(doc) + [Span(0, n, "nl_ratio_doc", nl_ratio),
                                   Span(0, n, "code_to_text_ratio_html_doc", html_ratio)]


@TAGGERS.register("code_starcoder_taggers_v2")
class StarCoderV2(StarCoder):
    """StarCoder filters, v2: comment share for Python, Java and JavaScript only (0.5 for others)."""

    def predict(self, doc: Document) -> list[Span]:
        n = len(doc.text)
        language = self.language(doc) or "-no-lang"
        comment_ratio = 0.5
        if language in ("python", "java", "javascript"):
            comment_ratio = shared_natural_language_ratio(doc, language) if n else -1.0
        html_ratio = 1.0
        if language == "html":
            try:
                html_ratio = shared_html_visible_ratio(doc)
            except Exception:
                html_ratio = -1.0
        return self.common(doc) + [Span(0, n, "code_to_comment_ratio_doc", comment_ratio),
                                   Span(0, n, "code_to_text_ratio_html_doc", html_ratio)]


def _entropy(distribution: Any) -> float:
    return -sum(p * math.log2(p) for p in distribution if p > 0)


@TAGGERS.register("code_composition")
class CodeComposition(Tagger):
    """Code/prose/other label of each line by a fastText model (`model_path`), with shares and entropies."""

    DOLMA_MODEL: ClassVar[str] = "hf://techarb/code-prose-composition/code-comment-prose-model.bin"

    def __init__(self, model_path: str | None = None, **options: Any):
        if options:
            raise ConfigError(f"tagger {self.name}: unknown option(s) {sorted(options)}; valid: model_path")
        self.model_path = model_path
        self.model: Any = None

    def setup(self) -> None:
        if self.model is not None:
            return
        if not self.model_path:
            raise ConfigError(
                f"tagger {self.name} needs the fastText model Dolma downloads from {self.DOLMA_MODEL}, which no "
                f"PyPI wheel ships; pass it with --tagger_options.{self.name}.model_path=PATH (YAML: "
                f"tagger_options: {{{self.name}: {{model_path: PATH}}}})")
        from fasttext.FastText import _FastText

        from taggers.language import local_model_path

        self.model = _FastText(local_model_path(self.model_path))

    def predict(self, doc: Document) -> list[Span]:
        self.setup()
        lines = [line for line in (raw.strip() for raw in doc.text.splitlines()) if line]
        # fastText cannot take lone surrogates: read as "?" (Dolma crashes on them).
        scored = [line.encode("utf-8", "replace").decode("utf-8") for line in lines if len(line) > 3]
        predictions = iter(zip(*self.model.predict(scored, k=-1))) if scored else iter(())
        counts: dict[str, int] = {}
        distributions: dict[str, list[Any]] = {}
        active, boundaries = None, 0
        for line in lines:
            label, probabilities = "other", []
            if len(line) > 3:
                labels, probabilities = next(predictions)
                label = labels[0].lstrip("_labe")  # Dolma's lstrip("__label__"): these characters, not the prefix
            distributions.setdefault(label, []).append(probabilities)
            counts[label] = counts.get(label, 0) + 1
            if active in ("code", "prose") and label in ("code", "prose") and label != active:
                boundaries += 1
            active = label
        n = len(doc.text)
        total = sum(counts.values())
        spans = [Span(0, n, "boundaries", float(boundaries))]
        for label, count in counts.items():
            entropies = [_entropy(d) for d in distributions[label]]
            spans += [Span(0, n, f"{label}_pct", round(count / total, 2)), Span(0, n, label, float(count)),
                      Span(0, n, f"{label}_entropy", sum(entropies) / len(entropies))]
        return spans
