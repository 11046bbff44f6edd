"""Creative Commons licences linked from a page's HTML (`metadata.html`), Dolma's `cc_re` and `cc_re_fast`.

One engine: a regex over the HTML (after a cheap "creativecommons.org/..." check) whose named groups give
the licence type and, where the regex has them, version and language; the key is
`cc_<type>[_<version>][_<lang>]` and the n-th match scores 0.5 + 0.5 / n (Dolma's decreasing confidence).
A document without `metadata.html` is an error naming its file and line, as it is one in Dolma.
"""

from __future__ import annotations

from typing import ClassVar

import regex

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.errors import DataFormatError
from dolma_pipeline.tagger import TAGGERS, Tagger

LICENSE_TYPE = "by(-nc)?(-nd)?(-sa)?"
VERSION = r"\d+\.\d+"
LANG = r"\w{2}"
# From the DKPro C4Corpus licence detector, as Dolma adapted it.
ATTRIBUTE_PATTERN = regex.compile(
    "<(a|A|meta)\\s[\\w\\p{Punct}\\s=]*\n*(href|HREF|content)"
    "=('|\"|&quot;)?http(s*)://creativecommons\\.org/"
    f"((licenses/(?P<type>{LICENSE_TYPE}))|(?P<type>publicdomain/(zero|certification|mark)))"
    f"(?P<version>/{VERSION})?"
    f"((/{LANG})?/((deed|legalcode)\\.)?(?P<lang>{LANG}))?.*?('|\"|&quot;).*?>"
)
FAST_PATTERN = regex.compile(
    "http[s]?://creativecommons\\.org/licenses/"
    '(?P<type>by|by-sa|by-nd|by-nc|by-nc-sa|by-nc-nd|publicdomain)["/ >]'
)


class CreativeCommons(Tagger):
    """One `cc_<licence>` span per licence link found in `metadata.html`."""

    PATTERN: ClassVar[regex.Pattern] = ATTRIBUTE_PATTERN
    PREFILTER = ("creativecommons.org/licenses", "creativecommons.org/publicdomain")

    def predict(self, doc: Document) -> list[Span]:
        html = doc.metadata.get("html")
        if html is None:
            raise DataFormatError(doc.path, doc.line or None,
                                  f"tagger {self.name} reads `metadata.html`, which document {doc.id!r} lacks")
        if not any(p in html for p in self.PREFILTER):
            return []
        groups = self.PATTERN.groupindex
        spans = []
        for i, match in enumerate(self.PATTERN.finditer(html)):
            key = match.group("type")
            if "version" in groups and match.group("version") is not None:
                key += "_" + match.group("version").strip("/")
            if "lang" in groups and match.group("lang") is not None:
                key += "_" + match.group("lang")
            spans.append(Span(0, len(doc.text), f"cc_{key}", 0.5 + 0.5 / (i + 1.0)))
        return spans


@TAGGERS.register("cc_re")
class CreativeCommonsRegex(CreativeCommons):
    """Creative Commons licence links (type, version, language) in `metadata.html` (DKPro's basic regex)."""


@TAGGERS.register("cc_re_fast")
class CreativeCommonsFastRegex(CreativeCommons):
    """Creative Commons licence types linked from `metadata.html` (DKPro's fast regex)."""

    PATTERN = FAST_PATTERN
