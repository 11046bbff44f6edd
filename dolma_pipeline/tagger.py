"""The tagger contract and registry.

A tagger is a small class registered under a versioned name: `setup()` runs once per worker (load
models there), `predict(doc)` is pure and returns spans, `predict_batch(docs)` exists for libraries that
are faster on batches; `attribute_values(docs)` groups a batch's spans by type as attribute files hold
them. The runtime calls only `attribute_values`; its default groups `predict_batch`'s spans, and
`predict_batch`'s default loops over `predict`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.registry import Registry


class Tagger:
    """Base class of all taggers; subclasses set options through keyword arguments."""

    name: ClassVar[str] = ""

    def __init__(self, **options: Any):
        if options:
            raise ConfigError(f"tagger {self.name} takes no options, got {sorted(options)}")

    def setup(self) -> None:
        """Load models or compile resources; runs once per worker before the first prediction."""

    def predict(self, doc: Document) -> list[Span]:
        """The spans of one document. Every tagger overrides this or `predict_batch` (abstract here)."""
        raise NotImplementedError(f"tagger {self.name} overrides neither predict nor predict_batch")

    def predict_batch(self, docs: list[Document]) -> list[list[Span]]:
        return [self.predict(doc) for doc in docs]

    def attribute_values(self, docs: list[Document]) -> list[dict[str, list[list]]]:
        """Per document, span type -> `[[start, end, score], ...]` in span order, scores as `attribute_score`.
        Taggers with many spans per document may override it to skip building the `Span`s."""
        return [group_by_type(spans) for spans in self.predict_batch(docs)]

    @classmethod
    def describe(cls) -> str:
        """The first line of the class docstring, for `dolma list`."""
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""


TAGGERS: Registry[Tagger] = Registry("tagger", "dolma_pipeline.taggers")


def build_taggers(names: list[str], options: dict[str, dict[str, Any]] | None = None) -> list[Tagger]:
    """Instantiate and set up the named taggers (each once)."""
    options = options or {}
    unknown_options = [k for k in options if k not in names]
    if unknown_options:
        raise ConfigError(f"tagger_options given for tagger(s) not in this run: {unknown_options}")
    taggers = []
    for name in dict.fromkeys(names):
        cls = TAGGERS.get(name)
        try:
            tagger = cls(**options.get(name, {}))
        except TypeError as e:
            raise ConfigError(f"bad options for tagger {name}: {e}") from None
        tagger.setup()
        taggers.append(tagger)
    return taggers


def group_by_type(spans: Iterable[tuple[int, int, str, float]]) -> dict[str, list[list]]:
    """(start, end, type, score) items grouped by type, in order, as attribute files hold them."""
    by_type: dict[str, list] = {}
    for start, end, kind, score in spans:
        score = float(score)
        # `attribute_score` inlined: taggers such as c4_v2 give ~100 spans per document
        value = [start, end, score if score == 1.0 or score == 0.0 else round(score, 5)]
        same = by_type.get(kind)
        if same is None:
            by_type[kind] = [value]
        else:
            same.append(value)
    return by_type
