"""The engine of Dolma's language identifiers other than fastText (`cld2_*`, `cld3_*`, `langdetect_*`,
`lingua_*`), each in its own `language_<library>.py` module.

A tagger is an identifier (`scores(texts) -> [[(language, score), ...], ...]`, batched so libraries that
run batches in parallel can) plus Dolma's options for the name: the whole document or each non-empty
paragraph; every language or only `en` (0 when the identifier does not report it); `not_<lang>` = 1 -
score spans; the character-weighted document score `doc_en` / `doc_not_en`. The models ship inside the
libraries' PyPI wheels, so nothing is downloaded.

The identifiers are deterministic (langdetect re-seeds before each text), so a text's scores are computed
once: names of one identifier share the scores of the texts it scored last, and the slow identifiers
(`MEMO`) also keep the scores of recent texts (`ScoreMemo`), for paragraphs and documents that recur
(boilerplate lines, repeated headers), and score each distinct text of a batch once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, ClassVar

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.tagger import Tagger, group_by_type
from taggers.paragraphs import paragraph_bounds

Scores = list[tuple[str, float]]
# per worker process: (identifier's load and scores functions, paragraphs?) -> (texts, their scores)
_LAST_SCORED: dict[tuple[Any, Any, bool], tuple[list[str], list[Scores]]] = {}
# per worker process: (identifier's load and scores functions, paragraphs?) -> its recent texts' scores
_MEMOS: dict[tuple[Any, Any, bool], ScoreMemo] = {}


class ScoreMemo:
    """The scores of the texts scored most recently, at most `max_texts` texts and `max_chars` characters
    (the least recently used go first)."""

    def __init__(self, max_texts: int = 10_000, max_chars: int = 4_000_000):
        self.max_texts, self.max_chars = max_texts, max_chars
        self.chars = 0
        self._scores: OrderedDict[str, Scores] = OrderedDict()

    def __len__(self) -> int:
        return len(self._scores)

    def get(self, text: str) -> Scores | None:
        scores = self._scores.get(text)
        if scores is not None:
            self._scores.move_to_end(text)
        return scores

    def put(self, text: str, scores: Scores) -> None:
        if len(text) > self.max_chars or text in self._scores:
            return
        self._scores[text] = scores
        self.chars += len(text)
        while len(self._scores) > self.max_texts or self.chars > self.max_chars:
            oldest, _ = self._scores.popitem(last=False)
            self.chars -= len(oldest)

    def scores(self, texts: list[str], score: Any) -> list[Scores]:
        """The scores of `texts`: remembered ones as they are, the others by one call `score(distinct
        texts)`, then remembered."""
        found = [self.get(t) for t in texts]
        missing = list(dict.fromkeys(t for t, f in zip(texts, found) if f is None))
        if not missing:
            return found  # type: ignore[return-value]
        fresh = dict(zip(missing, score(missing)))
        for text in missing:
            self.put(text, fresh[text])
        return [fresh[t] if f is None else f for t, f in zip(texts, found)]


class LanguageIdentifierTagger(Tagger):
    """Base of the library-backed language taggers; subclasses define `load()` and `scores()`."""

    PARAGRAPHS: ClassVar[bool] = False
    NEGATIVE: ClassVar[bool] = True
    ENGLISH_ONLY: ClassVar[bool] = False
    DOC_SCORE: ClassVar[bool] = False
    LIBRARY: ClassVar[str] = ""  # the PyPI package, named in the error when it is missing
    MEMO: ClassVar[bool] = False  # keep recent texts' scores (`ScoreMemo`): for identifiers slower than a lookup

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.engine: Any = None

    def load(self) -> Any:
        """Build the library's identifier (once per worker)."""
        raise NotImplementedError

    def scores(self, texts: list[str]) -> list[Scores]:
        """(language, score) pairs of each text, in the library's order."""
        raise NotImplementedError

    def adjust(self, scores: list[Scores]) -> list[Scores]:
        """This name's reading of the identifier's scores (as they are by default; never modified in place)."""
        return scores

    def setup(self) -> None:
        if self.engine is None:
            try:
                self.engine = self.load()
            except ImportError as e:
                raise ConfigError(f"tagger {self.name} needs the PyPI package {self.LIBRARY} "
                                  f"(pip install {self.LIBRARY}): {e}") from None

    def _pairs(self, texts: list[str]) -> list[Scores]:
        self.setup()
        # Names of one identifier tag the same texts (the document, or its paragraphs) one after another in
        # a run: the last texts each identifier scored are kept, and a name that asks for the same texts
        # gets the same scores without calling the library again (the identifiers are deterministic).
        key = (type(self).load, type(self).scores, self.PARAGRAPHS)
        last = _LAST_SCORED.get(key)
        if last is not None and last[0] == texts:
            out = last[1]
        else:
            out = self._scored(texts)
            _LAST_SCORED[key] = (texts, out)
        out = self.adjust(out)
        if self.ENGLISH_ONLY:
            out = [[(lang, s) for lang, s in pairs if lang == "en"] or [("en", 0.0)] for pairs in out]
        return out

    def _scored(self, texts: list[str]) -> list[Scores]:
        if not texts:
            return []
        if not self.MEMO:
            return self.scores(texts)
        memo = _MEMOS.setdefault((type(self).load, type(self).scores, self.PARAGRAPHS), ScoreMemo())
        return memo.scores(texts, self.scores)

    def predict(self, doc: Document) -> list[Span]:
        return self.predict_batch([doc])[0]

    def predict_batch(self, docs: list[Document]) -> list[list[Span]]:
        units, pairs = self._units_and_pairs(docs)
        out = []
        for doc, bounds in zip(docs, units):
            spans = [Span(s, e, lang, float(score)) for s, e in bounds for lang, score in next(pairs)]
            if self.NEGATIVE:
                spans += [Span(s.start, s.end, f"not_{s.type}", 1.0 - s.score) for s in spans]
            if self.DOC_SCORE:
                spans += document_english(spans, len(doc.text))
            out.append(spans)
        return out

    def attribute_values(self, docs: list[Document]) -> list[dict[str, list[list]]]:
        # The grouping of `predict_batch`'s spans without building them: `lingua_par_v1` writes 75 spans a
        # paragraph, and the `Span`s and their grouping cost more than half as much CPU as Lingua's scoring.
        if self.DOC_SCORE:
            return super().attribute_values(docs)
        units, pairs = self._units_and_pairs(docs)
        out = []
        for bounds in units:
            scored = [(s, e, next(pairs)) for s, e in bounds]
            values = [(s, e, lang, score) for s, e, p in scored for lang, score in p]
            if self.NEGATIVE:  # after every language, as `predict_batch` orders them
                values += [(s, e, f"not_{lang}", 1.0 - float(score)) for s, e, p in scored for lang, score in p]
            out.append(group_by_type(values))
        return out

    def _units_and_pairs(self, docs: list[Document]) -> tuple[list[list[tuple[int, int]]], Iterator[Scores]]:
        """Each document's scored ranges (the whole text, or each non-empty paragraph) and an iterator over
        their (language, score) pairs, in order."""
        if self.PARAGRAPHS:
            units = [paragraph_bounds(doc) for doc in docs]
        else:
            units = [[(0, len(doc.text))] for doc in docs]
        return units, iter(self._pairs([doc.text[s:e] for doc, bounds in zip(docs, units) for s, e in bounds]))


def document_english(spans: list[Span], length: int) -> list[Span]:
    """Dolma's `doc_en` (characters of `en` spans weighted by their score, over the text's length) and
    `doc_not_en` = 1 - `doc_en`; both 0 for an empty text."""
    if not length:
        return [Span(0, 0, "doc_en", 0.0), Span(0, 0, "doc_not_en", 0.0)]
    doc_en = sum((s.end - s.start) * s.score for s in spans if s.type == "en") / length
    return [Span(0, length, "doc_en", doc_en), Span(0, length, "doc_not_en", 1.0 - doc_en)]
