"""Lingua (`lingua-language-detector`, models inside its wheel) with Dolma's `lingua_*` names and values.

As Dolma: a detector over all of Lingua's 75 languages; each text gets Lingua's confidence for every
language, keyed by its ISO 639-1 code (`lingua_1e2`: those above 0.01, rounded to two decimals), or only
`en` with `not_en` for the English names. One text at a time, as Dolma calls it: Lingua's parallel call
(the same function over a thread pool per process) took 13-17% more CPU in `--processes 2` runs on 2 cores,
its threads competing with the other worker; the pipeline's parallelism is its worker processes.
"""

from __future__ import annotations

from typing import Any

from dolma_pipeline.tagger import TAGGERS
from taggers.language_identifiers import LanguageIdentifierTagger, Scores


class LinguaTagger(LanguageIdentifierTagger):
    """Lingua's confidence of every language for each text."""

    LIBRARY = "lingua-language-detector"
    MEMO = True
    NEGATIVE = False

    def load(self) -> Any:
        from lingua import Language, LanguageDetectorBuilder

        detector = LanguageDetectorBuilder.from_languages(*Language.all()).build()
        self.codes = {language: language.iso_code_639_1.name.lower() for language in Language.all()}
        return detector

    def scores(self, texts: list[str]) -> list[Scores]:
        confidences = self.engine.compute_language_confidence_values
        results = [confidences(t.encode("utf-8", "replace").decode("utf-8")) for t in texts]
        # Lingua lists equal confidences (most often the zeros) in an order that can change from one process
        # to the next; ordered by confidence, then code, the attribute keys come out in the same order on
        # every run.
        return [sorted(((self.codes[c.language], float(c.value)) for c in result or []), key=_by_confidence)
                for result in results]


def _by_confidence(pair: tuple[str, float]) -> tuple[float, str]:
    return -pair[1], pair[0]


@TAGGERS.register("lingua_doc_v1")
class LinguaDocument(LinguaTagger):
    """Lingua's confidence of each of its 75 languages for the document."""


@TAGGERS.register("lingua_1e2")
class LinguaMinScore(LinguaTagger):
    """Lingua's languages with confidence above 0.01 for the document, rounded to two decimals."""

    def adjust(self, scores: list[Scores]) -> list[Scores]:
        return [[(lang, round(s, 2)) for lang, s in pairs if s > 0.01] for pairs in scores]


@TAGGERS.register("lingua_par_v1")
class LinguaParagraph(LinguaTagger):
    """Lingua's confidence of each of its 75 languages, for each non-empty paragraph."""

    PARAGRAPHS = True


@TAGGERS.register("lingua_doc_en_v1")
class LinguaEnglishDocument(LinguaTagger):
    """Lingua's English confidence of the document (`en`) and `not_en`."""

    NEGATIVE = True
    ENGLISH_ONLY = True


@TAGGERS.register("lingua_en_only_v1")
class LinguaEnglishOnly(LinguaEnglishDocument):
    """Lingua's English confidence of the document (`en` only)."""

    NEGATIVE = False


@TAGGERS.register("lingua_en_par_v1")
class LinguaEnglishParagraph(LinguaEnglishDocument):
    """Lingua's English confidence (`en` / `not_en`) of each non-empty paragraph."""

    PARAGRAPHS = True
