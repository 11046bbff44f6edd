"""CLD2 language identification (`pycld2`, model inside its wheel) with Dolma's `cld2_*` names and values.

As Dolma: the text goes to CLD2 as is, then, if CLD2 rejects it, transliterated to ASCII (`anyascii`),
then with control and surrogate characters removed. Each of CLD2's three guesses becomes a span keyed by
the first two letters of its language *name*, lower-cased, scored by its percentage / 100, when CLD2 calls
the text reliable: "en" for ENGLISH and "fr" for FRENCH, but "ge" for GERMAN and "un" for the two
"Unknown" slots CLD2 pads with (Dolma's filter compares with "UNKNOWN_LANGUAGE", which CLD2 never
returns). The keys are kept as Dolma writes them, since mixer rules name them. A text that none of the
three forms makes acceptable to CLD2 gets no language spans, as in Dolma; one with lone surrogates (which
Dolma crashes on) is read in its cleaned form.
"""

from __future__ import annotations

from typing import Any

import regex

from dolma_pipeline.tagger import TAGGERS
from taggers.language_identifiers import LanguageIdentifierTagger, Scores

_BAD_CHARACTERS = regex.compile(r"[\p{Cc}\p{Cs}]+")


def _forms(text: str) -> list[Any]:
    from anyascii import anyascii

    return [lambda: text, lambda: anyascii(text), lambda: _BAD_CHARACTERS.sub("", text)]


class Cld2Tagger(LanguageIdentifierTagger):
    """CLD2 guesses of each text, Dolma's keys."""

    LIBRARY = "pycld2"
    NEGATIVE = False

    def load(self) -> Any:
        import pycld2

        return pycld2

    def score_one(self, text: str) -> Scores:
        cld2 = self.engine
        for form in _forms(text):
            try:
                reliable, _, details = cld2.detect(form())
            except (cld2.error, UnicodeEncodeError):
                continue
            if not reliable:
                return []
            return [(d[0][:2].lower(), d[2] / 100.0) for d in details if d[0] != "UNKNOWN_LANGUAGE"]
        return []

    def scores(self, texts: list[str]) -> list[Scores]:
        return [self.score_one(t) for t in texts]


@TAGGERS.register("cld2_doc_v2")
class Cld2Document(Cld2Tagger):
    """CLD2's three language guesses for the document (Dolma's two-letter keys, see module notes)."""


@TAGGERS.register("cld2_paragraph_v2")
class Cld2Paragraph(Cld2Tagger):
    """CLD2's three language guesses for each non-empty paragraph."""

    PARAGRAPHS = True


@TAGGERS.register("cld2_en_doc_v2")
class Cld2EnglishDocument(Cld2Tagger):
    """CLD2 English score of the document (`en`, 0 if not guessed) and `not_en`."""

    NEGATIVE = True
    ENGLISH_ONLY = True


@TAGGERS.register("cld2_en_paragraph_v2")
class Cld2EnglishParagraph(Cld2EnglishDocument):
    """CLD2 English score (`en` / `not_en`) of each non-empty paragraph."""

    PARAGRAPHS = True


@TAGGERS.register("cld2_en_paragraph_with_doc_score_v2")
class Cld2EnglishParagraphWithDocScore(Cld2EnglishParagraph):
    """CLD2 per-paragraph `en` / `not_en` plus the character-weighted `doc_en` / `doc_not_en`."""

    DOC_SCORE = True
