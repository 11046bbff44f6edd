"""fastText content classifiers: the generic `fasttext_classifier_v1` and Dolma's jigsaw and quality taggers.

Every unit of a batch of documents (the document, its paragraphs or its sentences) goes to fastText in
one call. Units and their text come from `dolma_pipeline.classifier.text`, the same code that builds
the training examples of `dolma train-classifier`. Values are what fastText's `predict(text, k=-1)`
returns (its probability plus the 1e-5 of its log floor, so 1.00001 occurs), rounded to 5 decimals by
the writer, as Dolma's. Dolma's names keep Dolma's keys: `jigsaw_*` write the two most likely labels
with fastText's `__label__` prefix (`{experiment}__jigsaw_hatespeech_document_v2____label__toxic`),
`dolma17-quality` every label, `dclm-oh-eli5` one `score`. Their weights are not bundled: pass
`model_path`, or put the file under the name Dolma uses in `$DOLMA_CACHE/models/`.
"""

from __future__ import annotations

import os
import re
import struct
from typing import Any, ClassVar

import numpy as np

from dolma_pipeline.assets import cache_dir
from dolma_pipeline.classifier.text import MODES, prepare, split_units
from dolma_pipeline.documents import Document, Span
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.tagger import TAGGERS, Tagger

LABEL_PREFIX = "__label__"


class FastTextClassifierModel:
    """A fastText classifier file, loaded once per worker: all-label values for many lines in one call.

    Models without character n-grams (the usual quality and toxicity models) are evaluated by
    `fasttext_linear.LinearFastText` (projected rows, no `dim`-wide work per word); others by fastText's
    own batch prediction. Both give fastText's `predict(k=-1)` values.
    """

    def __init__(self, path: str, engine: str = "auto"):
        from taggers.fasttext_linear import LinearFastText

        self.path = path
        self.linear: LinearFastText | None = None
        self.model: Any = None
        if engine != "fasttext" and LinearFastText.supports(path):
            try:
                self.linear = LinearFastText(path)
            except (ValueError, OSError, struct.error, KeyError, IndexError) as e:
                raise ConfigError(f"cannot read fastText model {path}: {e}") from None
            self.labels: list[str] = list(self.linear.labels)
        else:
            from fasttext.FastText import _FastText  # the private class skips fastText's deprecation print

            try:
                self.model = _FastText(path)
            except (ValueError, RuntimeError, OSError, MemoryError) as e:
                raise ConfigError(f"cannot read fastText model {path}: {e}") from None
            args = self.model.f.getArgs()
            if args.model.name != "supervised":
                raise ConfigError(f"fastText model {path} is not a classifier (trained as {args.model.name})")
            self.labels = list(self.model.get_labels())
        self.index = {label: i for i, label in enumerate(self.labels)}

    def values(self, lines: list[str], k: int = -1) -> np.ndarray:
        """[line, label] as fastText's `predict(line, k=-1)` gives them; 0 for labels it does not report.

        `k` > 0 may leave out all but the best k labels (the values of those are the same).
        """
        if self.linear is not None:
            return self.linear.values(lines)
        out = np.zeros((len(lines), len(self.labels)))
        if not lines:
            return out
        # fastText reads UTF-8; a lone surrogate becomes "?" (one character, as the span offsets count it)
        text = [line.encode("utf-8", "replace").decode("utf-8") + "\n" for line in lines]
        labels, probabilities = self.model.f.multilinePredict(text, k, 0.0, "replace")
        index = self.index
        for row, (names, values) in enumerate(zip(labels, probabilities)):
            for name, value in zip(names, values):
                out[row, index[name]] = value
        return out


def resolve_model(tagger: str, model_path: str | None, dolma_url: str | None) -> str:
    """A local model file for `tagger`: `model_path` (local or remote), else Dolma's file name in the cache."""
    from taggers.language import local_model_path

    if model_path:
        return local_model_path(model_path)
    if dolma_url:
        cached = os.path.join(cache_dir(), "models", os.path.basename(dolma_url))
        if os.path.exists(cached):
            return cached
        raise ConfigError(
            f"tagger {tagger} needs its fastText model, which is not bundled and cannot be downloaded here. "
            f"Dolma uses {dolma_url}; copy that file to {cached}, or pass its path with "
            f"`tagger_options: {{{tagger}: {{model_path: /path/to/{os.path.basename(dolma_url)}}}}}` "
            f"(flag: --tagger_options.{tagger}.model_path=PATH)")
    raise ConfigError(f"tagger {tagger} needs `model_path` (a fastText classifier, e.g. from "
                      f"`dolma train-classifier`): --tagger_options.{tagger}.model_path=PATH")


class FastTextClassifierTagger(Tagger):
    """Shared set-up and batching; subclasses say how a unit's text is prepared and which spans it gives."""

    MODE: ClassVar[str] = "document"
    DOLMA_MODEL: ClassVar[str | None] = None  # the URL of the weights Dolma downloads, for the error message
    TOP_K: ClassVar[int] = -1

    def __init__(self, model_path: str | None = None, **options: Any):
        if options:
            raise ConfigError(f"tagger {self.name}: unknown option(s) {sorted(options)}; valid: model_path")
        self.model_path = model_path
        self.mode = self.MODE
        self.model: FastTextClassifierModel | None = None
        resolve_model(self.name, model_path, self.DOLMA_MODEL)  # a missing model fails when the tagger is built

    def setup(self) -> None:
        if self.model is None:
            self.model = FastTextClassifierModel(resolve_model(self.name, self.model_path, self.DOLMA_MODEL))
            self.check_model(self.model)

    def check_model(self, model: FastTextClassifierModel) -> None:
        """Reject a model this tagger cannot read (e.g. too few labels)."""

    def prepare(self, text: str) -> str:
        return prepare(text)

    def unit_spans(self, start: int, end: int, values: np.ndarray) -> list[Span]:
        """The spans of one scored unit; each concrete tagger defines it (abstract here)."""
        raise NotImplementedError(f"{type(self).__name__} does not define unit_spans")

    def predict(self, doc: Document) -> list[Span]:
        return self.predict_batch([doc])[0]

    def batch_spans(self, units: list[tuple[int, int]], values: np.ndarray) -> list[list[Span]]:
        """The spans of every scored unit of a batch (taggers with many units override `flat_spans`)."""
        return [self.unit_spans(start, end, row) for (start, end), row in zip(units, values)]

    def flat_spans(self, units: list[tuple[int, int]], values: np.ndarray) -> tuple[list[Span], int]:
        """(the spans of all units in order, spans per unit), for taggers that give every unit the same
        number of spans; (empty, 0) means: use `batch_spans`."""
        return [], 0

    def predict_batch(self, docs: list[Document]) -> list[list[Span]]:
        self.setup()
        assert self.model is not None
        pieces = [split_units(doc.text, self.mode) for doc in docs]
        units = [unit for spans in pieces for unit in spans]
        prepare = self.prepare
        lines = [prepare(doc.text[s:e]) for doc, spans in zip(docs, pieces) for s, e in spans]
        values = self.model.values(lines, self.TOP_K)
        flat, per_unit = self.flat_spans(units, values)
        if per_unit:  # each document's spans are one slice of the flat list
            out, row = [], 0
            for spans in pieces:
                end = row + per_unit * len(spans)
                out.append(flat[row:end])
                row = end
            return out
        per_unit_spans = self.batch_spans(units, values)
        out, row = [], 0
        for spans in pieces:
            doc_spans: list[Span] = []
            for unit_spans in per_unit_spans[row: row + len(spans)]:
                doc_spans.extend(unit_spans)
            row += len(spans)
            out.append(doc_spans)
        return out


@TAGGERS.register("fasttext_classifier_v1")
class FastTextClassifier(FastTextClassifierTagger):
    """Any fastText classifier (`model_path`): each label's probability per document, paragraph or sentence."""

    def __init__(self, model_path: str | None = None, mode: str = "document", labels: list[str] | None = None,
                 **options: Any):
        if options:
            raise ConfigError(f"tagger {self.name}: unknown option(s) {sorted(options)}; "
                              "valid: model_path, mode, labels")
        if mode not in MODES:
            raise ConfigError(f"tagger {self.name}: mode {mode!r} is not one of {', '.join(MODES)}")
        super().__init__(model_path)
        self.mode = mode
        self.keep = [label[len(LABEL_PREFIX):] if label.startswith(LABEL_PREFIX) else label
                     for label in (labels or [])]
        self.columns: list[tuple[int, str]] = []

    def check_model(self, model: FastTextClassifierModel) -> None:
        names = [label[len(LABEL_PREFIX):] if label.startswith(LABEL_PREFIX) else label for label in model.labels]
        unknown = [label for label in self.keep if label not in names]
        if unknown:
            raise ConfigError(f"tagger {self.name}: label(s) {unknown} not in model {model.path}; "
                              f"its labels: {', '.join(names)}")
        wanted = self.keep or names
        self.columns = [(names.index(label), label) for label in wanted]

    def unit_spans(self, start: int, end: int, values: np.ndarray) -> list[Span]:
        return [Span(start, end, label, float(values[column])) for column, label in self.columns]

    def flat_spans(self, units: list[tuple[int, int]], values: np.ndarray) -> tuple[list[Span], int]:
        k = len(self.columns)
        picked = values[:, [column for column, _ in self.columns]].ravel().tolist()
        starts, ends = [s for s, _ in units for _ in range(k)], [e for _, e in units for _ in range(k)]
        names = [label for _, label in self.columns] * len(units)
        return list(map(_make_span, zip(starts, ends, names, picked))), k


@TAGGERS.register("jigsaw_hatespeech_document_v2")
class JigsawHatespeechDocument(FastTextClassifierTagger):
    """Dolma's jigsaw hate-speech classifier per document (`model_path` required: weights not bundled)."""

    DOLMA_MODEL = ("https://dolma-artifacts.org/fasttext_models/jigsaw_fasttext_bigrams_20230515/"
                   "jigsaw_fasttext_bigrams_hatespeech_final.bin")

    def check_model(self, model: FastTextClassifierModel) -> None:
        if len(model.labels) < 2:
            raise ConfigError(f"tagger {self.name}: model {model.path} has {len(model.labels)} label(s); "
                              "Dolma's jigsaw taggers read two")

    def unit_spans(self, start: int, end: int, values: np.ndarray) -> list[Span]:
        return self.flat_spans([(start, end)], values[None, :])[0]

    def flat_spans(self, units: list[tuple[int, int]], values: np.ndarray) -> tuple[list[Span], int]:
        # Dolma: the two most likely labels, the one without "non" in its name first
        assert self.model is not None
        order = np.argsort(-values, axis=1, kind="stable")[:, :2]
        swap = np.array(["non" in label for label in self.model.labels])[order[:, 0]]
        order[swap] = order[swap][:, ::-1]
        picked = np.take_along_axis(values, order, axis=1).ravel().tolist()
        labels = np.array(self.model.labels, dtype=object)[order.ravel()].tolist()
        starts, ends = [s for s, _ in units for _ in (0, 1)], [e for _, e in units for _ in (0, 1)]
        return list(map(_make_span, zip(starts, ends, labels, picked))), 2


@TAGGERS.register("jigsaw_hatespeech_sentence_v2")
class JigsawHatespeechSentence(JigsawHatespeechDocument):
    """Dolma's jigsaw hate-speech classifier per sentence (`model_path` required: weights not bundled)."""

    MODE = "sentence"


@TAGGERS.register("jigsaw_nsfw_document_v1")
class JigsawNsfwDocument(JigsawHatespeechDocument):
    """Dolma's jigsaw NSFW classifier per document (`model_path` required: weights not bundled)."""

    DOLMA_MODEL = ("https://dolma-artifacts.org/fasttext_models/jigsaw_fasttext_bigrams_20230515/"
                   "jigsaw_fasttext_bigrams_nsfw_final.bin")


@TAGGERS.register("jigsaw_nsfw_sencence_v2")
class JigsawNsfwSentence(JigsawNsfwDocument):
    """Dolma's jigsaw NSFW classifier per sentence (Dolma's spelling; `model_path` required)."""

    MODE = "sentence"


# Rust's `char::is_whitespace` (what tokenizers' WhitespaceSplit splits on): Python's `str.split()` also
# splits on U+001C..U+001F, which Rust does not.
_PY_ONLY_SPACE = re.compile("[\x1c-\x1f]")
_RUST_SPACE = re.compile("[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")


@TAGGERS.register("dolma17-quality")
class Dolma17Quality(FastTextClassifierTagger):
    """Dolma 1.7's quality classifier: every label's probability (`model_path` required: weights not bundled)."""

    DOLMA_MODEL = ("https://dolma-artifacts.org/fasttext_models/dolma-1_7/"
                   "cc_wiki_wikiref_sw_pes2o_adult_fakenews_math_books_openhermes.bin")

    def prepare(self, text: str) -> str:
        # Dolma: tokenizers' Strip normaliser and WhitespaceSplit, words joined by one space
        if _PY_ONLY_SPACE.search(text):
            return " ".join(word for word in _RUST_SPACE.split(text) if word)
        return " ".join(text.split())

    def unit_spans(self, start: int, end: int, values: np.ndarray) -> list[Span]:
        assert self.model is not None
        order = np.argsort(-values, kind="stable")
        return [Span(start, end, _strip_prefix(self.model.labels[i]), float(values[i])) for i in order
                if values[i] > 0.0]


@TAGGERS.register("dclm-oh-eli5")
class DclmOhEli5(FastTextClassifierTagger):
    """DCLM's OpenHermes/ELI5 quality classifier: one `score` per document (`model_path` required)."""

    DOLMA_MODEL = ("https://huggingface.co/mlfoundations/fasttext-oh-eli5/resolve/main/"
                   "openhermes_reddit_eli5_vs_rw_v2_bigram_200k_train.bin")
    TOP_K = 1

    def prepare(self, text: str) -> str:
        return " ".join(text.strip().splitlines())

    def unit_spans(self, start: int, end: int, values: np.ndarray) -> list[Span]:
        # Dolma: the most likely label; for `cc` its complement; both named `score`
        assert self.model is not None
        best = int(np.argmax(values))
        label, score = self.model.labels[best], float(values[best])
        if label == "__label__cc":
            score = 1.0 - score
        return [Span(start, end, label.replace(LABEL_PREFIX, "").replace("cc", "score").replace("hq", "score"),
                     score)]


_make_span = Span._make  # a tuple's own constructor: about 3x faster than `Span(...)` per span


def _strip_prefix(label: str) -> str:
    return label.replace(LABEL_PREFIX, "")
