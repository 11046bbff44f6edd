"""langdetect (a port of Google's language-detection; profiles inside its wheel) with Dolma's
`langdetect_*` names and values.

As Dolma: a detector from the bundled profiles with seed 0, so a text always gets the same probabilities;
every language langdetect reports, or only `en` (0 when absent) with `not_en`. A text langdetect cannot
read (no letters) gets no language spans. The detector is `NumpyDetector` (same probabilities, bit for bit,
computed in bulk: `language_langdetect_numpy.py`), one per worker process for all the names.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from dolma_pipeline.tagger import TAGGERS
from taggers.language_identifiers import LanguageIdentifierTagger, Scores


class LangdetectTagger(LanguageIdentifierTagger):
    """langdetect's language probabilities of each text."""

    LIBRARY = "langdetect"
    MEMO = True
    NEGATIVE = False

    def load(self) -> Any:
        return shared_detector()

    def scores(self, texts: list[str]) -> list[Scores]:
        return [[(str(r.lang.strip().lower()), float(r.prob)) for r in langs or []]
                for langs in self.engine.probabilities(texts)]


@cache
def shared_detector() -> Any:
    """This process's detector (profiles loaded once for every langdetect name)."""
    from langdetect import PROFILES_DIRECTORY, DetectorFactory

    from taggers.language_langdetect_numpy import NumpyDetector

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)
    return NumpyDetector(factory)


@TAGGERS.register("langdetect_doc_v1")
class LangdetectDocument(LangdetectTagger):
    """langdetect's probability of each language it reports for the document."""


@TAGGERS.register("langdetect_paragraph_v1")
class LangdetectParagraph(LangdetectTagger):
    """langdetect's probability of each language it reports, for each non-empty paragraph."""

    PARAGRAPHS = True


@TAGGERS.register("langdetect_doc_en_v1")
class LangdetectEnglishDocument(LangdetectTagger):
    """langdetect's English probability of the document (`en`, 0 if absent) and `not_en`."""

    NEGATIVE = True
    ENGLISH_ONLY = True


@TAGGERS.register("langdetect_en_paragraph_v1")
class LangdetectEnglishParagraph(LangdetectEnglishDocument):
    """langdetect's English probability (`en` / `not_en`) of each non-empty paragraph."""

    PARAGRAPHS = True
