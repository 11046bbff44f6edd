"""CLD3 English scores with Dolma's `cld3_*` names and values, through `cld3-py` (a maintained CLD3 binding
with wheels for current Pythons; import name `gcld3`, model inside the wheel).

Dolma calls the unmaintained `pycld3` (`cld3.get_language`, an identifier reading 0 to 1,000 bytes); the
same identifier is built here from `gcld3`. The score is CLD3's probability when its answer is English,
else 0, with `not_en` = 1 - `en`.
"""

from __future__ import annotations

from typing import Any

from dolma_pipeline.tagger import TAGGERS
from taggers.language_identifiers import LanguageIdentifierTagger, Scores

MIN_BYTES, MAX_BYTES = 0, 1000


class Cld3English(LanguageIdentifierTagger):
    """CLD3's probability that the text is English (`en`) and `not_en`."""

    LIBRARY = "cld3-py"

    def load(self) -> Any:
        import gcld3

        return gcld3.NNetLanguageIdentifier(min_num_bytes=MIN_BYTES, max_num_bytes=MAX_BYTES)

    def scores(self, texts: list[str]) -> list[Scores]:
        out = []
        for text in texts:
            result = self.engine.FindLanguage(text=text.encode("utf-8", "replace").decode("utf-8"))
            out.append([("en", float(result.probability) if result.language == "en" else 0.0)])
        return out


@TAGGERS.register("cld3_en_doc_v2")
class Cld3EnglishDocument(Cld3English):
    """CLD3 English probability of the document (`en`) and `not_en`."""


@TAGGERS.register("cld3_en_paragraph_v2")
class Cld3EnglishParagraph(Cld3English):
    """CLD3 English probability (`en` / `not_en`) of each non-empty paragraph."""

    PARAGRAPHS = True


@TAGGERS.register("cld3_en_paragraph_with_doc_score_v2")
class Cld3EnglishParagraphWithDocScore(Cld3EnglishParagraph):
    """CLD3 per-paragraph `en` / `not_en` plus the character-weighted `doc_en` / `doc_not_en`."""

    DOC_SCORE = True
