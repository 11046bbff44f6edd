"""Simple document statistics with Dolma's semantics."""

from __future__ import annotations

import hashlib
import re

from dolma_pipeline.documents import Document, Span
from dolma_pipeline.tagger import TAGGERS, Tagger


@TAGGERS.register("char_length_v1")
class CharLength(Tagger):
    """Number of characters (code points) of the whole document."""

    def predict(self, doc: Document) -> list[Span]:
        return [Span(0, len(doc.text), "length", float(len(doc.text)))]


# Dolma's definition: the number of pieces left when splitting on runs of word or punctuation characters.
_TOKEN = re.compile(r"\w+|[^\w\s]+")


@TAGGERS.register("whitespace_tokenizer_v1")
class WhitespaceTokenizer(Tagger):
    """Dolma's word-ish length: pieces of the text split on runs of word or punctuation characters."""

    def predict(self, doc: Document) -> list[Span]:
        return [Span(0, len(doc.text), "length", float(len(_TOKEN.split(doc.text))))]


@TAGGERS.register("random_number_v1")
class RandomNumber(Tagger):
    """A uniform number in [0, 1) from a hash of the seed and the document id (deterministic, unlike Dolma's)."""

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def predict(self, doc: Document) -> list[Span]:
        digest = hashlib.blake2b(f"{self.seed}\x00{doc.id}".encode(), digest_size=8).digest()
        value = int.from_bytes(digest, "big") / 2**64
        return [Span(0, len(doc.text), "random", value)]
