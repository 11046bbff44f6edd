"""The chunk-cached byte-level BPE encoder gives exactly `tokenizers`' ids, on any text."""

from __future__ import annotations

import random
import sys

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from dolma_pipeline.tokenize.bpe_cache import CachedEncoder, supports
from dolma_pipeline.tokenize.tokenizer_io import (
    DocumentEncoder,
    add_special_tokens,
    document_tokens,
    with_special_tokens,
)

# Whitespace of every kind, including what Python calls whitespace and Oniguruma does not (U+001C..1F).
SPACES = [" ", "  ", "   ", " " * 23, " " * 24, " " * 25, " " * 49, "\t", "\n", "\n\n", "\r\n", "\x0b", "\x0c",
          "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680", "\u2000", "\u2009", "\u200a", "\u200b",
          "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff", " \n ", "\n  \n"]
WORDS = ["a", "The", "word", "words,", "it's", "IT'S", "they're", "'ll", "'", "''", "x'd", "123", "4.5", "½", "Ⅻ",
         "naïve", "cafe\u0301", "e\u0301\u0327", "\u0301", "東京", "한국어", "ภาษาไทย", "عربى", "🎉", "👩‍👩‍👧",
         "|||EMAIL_ADDRESS|||", "|||PHONE_NUMBER|||", "|||IP_ADDRESS|||", "||||EMAIL_ADDRESS||||", "|||",
         "<|endoftext|>", "<|padding|>", "<|endoftext|>\u0338", "x<|endoftext|>y", "def", "f(x):", "**", "->", "==",
         "\x00", "\x7f", "\ue000", "\U0010fffd", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ﬁ", "Å", "\u212b", "ǅ", "٣", "₂", "A" * 300]


def reference(tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tokenizer.encode_batch_fast(texts, add_special_tokens=False)]


def cached_ids(encoder: CachedEncoder, texts: list[str]) -> list[list[int]]:
    flat, lengths = encoder.encode(texts)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    return [flat[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:])]


def assert_same(tokenizer, encoder: CachedEncoder, texts: list[str]) -> None:
    expected = reference(tokenizer, texts)
    got = cached_ids(encoder, texts)
    for text, want, have in zip(texts, expected, got, strict=True):
        if have != want:
            at = next((i for i, (a, b) in enumerate(zip(have, want)) if a != b), min(len(have), len(want)))
            where = tokenizer.decode(want[max(0, at - 3):at + 3])
            pytest.fail(f"text {text[:80]!r}: ids differ at {at}, around {where!r}: "
                        f"{have[max(0, at - 3):at + 3]} != {want[max(0, at - 3):at + 3]}")


def test_the_olmo_tokenizer_is_supported_and_others_are_refused(olmo_tokenizer):
    assert supports(olmo_tokenizer)
    other = Tokenizer(models.BPE())
    other.pre_tokenizer = pre_tokenizers.Whitespace()
    assert not supports(other)
    prefixed = Tokenizer.from_str(olmo_tokenizer.to_str())
    prefixed.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    assert not supports(prefixed)
    lowercase = Tokenizer.from_str(olmo_tokenizer.to_str())
    lowercase.normalizer = normalizers.Lowercase()
    assert not supports(lowercase)
    mixed = Tokenizer.from_str(olmo_tokenizer.to_str())
    mixed.add_tokens(["new line\n"])  # whitespace and text in one added token
    assert not supports(mixed)
    with pytest.raises(ValueError, match="byte-level BPE"):
        CachedEncoder(other)


def test_every_pair_of_tricky_words_and_spaces(olmo_tokenizer):
    texts = [w + s + v for w in WORDS for s in SPACES for v in ("", "x", "'s", "1", ".", *SPACES[:3])]
    texts += [s + w + s for w in WORDS for s in SPACES]
    texts += ["", " ", "\n", "  ", "x"]
    assert_same(olmo_tokenizer, CachedEncoder(olmo_tokenizer), texts)


def test_every_code_point_in_several_contexts(olmo_tokenizer):
    """Each code point after a letter, a digit, punctuation, a space, itself and two spaces, and before them.

    Every code point of planes 0-3 (all that Unicode assigns outside plane 14's tags and selectors,
    also included) and every 61st of the unassigned and private-use planes.
    """
    points = [chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF
              and (c < 0x40000 or 0xE0000 <= c < 0xE1000 or c % 61 == 0)]
    texts = ["".join(f"a{c}1{c}.{c}{c} {c}  {c}'s{c}\n{c}x" for c in points[i:i + 512])
             for i in range(0, len(points), 512)]
    assert_same(olmo_tokenizer, CachedEncoder(olmo_tokenizer), texts)


@pytest.mark.parametrize("seed", range(4))
def test_random_text_with_a_small_cache(olmo_tokenizer, seed):
    """Random mixtures of the tricky pieces; a cache of 50 chunks is dropped and refilled many times."""
    rng = random.Random(seed)
    alphabet = SPACES + WORDS + list("abc XYZ 019 .,;'\"()-\n\t")
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) for _ in range(600)]
    encoder = CachedEncoder(olmo_tokenizer, max_chunks=50)
    for start in range(0, len(texts), 37):
        assert_same(olmo_tokenizer, encoder, texts[start:start + 37])
        assert len(encoder._chunk_index) <= 50 + 37 * 61  # dropped before each batch once over the bound


def test_a_tokenizer_without_normalizer(olmo_tokenizer):
    bare = Tokenizer.from_str(olmo_tokenizer.to_str())
    bare.normalizer = None
    assert supports(bare)
    texts = [w + s + v for w in WORDS for s in SPACES[:8] for v in WORDS[:20]]
    assert_same(bare, CachedEncoder(bare), texts)


def test_a_lone_surrogate_raises_as_tokenizers_does(olmo_tokenizer):
    with pytest.raises(TypeError):
        reference(olmo_tokenizer, ["bad \ud800 text"])
    with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
        CachedEncoder(olmo_tokenizer).encode(["bad \ud800 text"])


@pytest.mark.parametrize("bos,eos", [(None, 50279), (50279, None), (7, 50279), (None, None), (50279, 50279)])
def test_document_encoder_matches_document_tokens(olmo_tokenizer, bos, eos):
    texts = ["", "   ", "<|endoftext|>", "hello<|endoftext|>", "<|endoftext|>hi", "plain text", "a",
             "<|endoftext|><|endoftext|>", " \n x \n ", "\x07", "|||EMAIL_ADDRESS|||"]
    expected = document_tokens(olmo_tokenizer, texts, bos, eos)
    for cached in (True, False):
        flat, lengths = DocumentEncoder(olmo_tokenizer, bos, eos, cached=cached).encode(texts)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        assert [flat[a:b].tolist() for a, b in zip(bounds[:-1], bounds[1:])] == expected


def test_with_special_tokens_matches_the_per_document_rule():
    rng = random.Random(0)
    docs = [[rng.choice([1, 2, 9]) for _ in range(rng.randint(0, 4))] for _ in range(400)]
    lengths = np.array([len(d) for d in docs], dtype=np.int64)
    flat = np.array([t for d in docs for t in d], dtype=np.int64)
    for bos, eos in [(1, 2), (None, 2), (1, None), (2, 2), (None, None)]:
        new_flat, new_lengths = with_special_tokens(flat, lengths, bos, eos)
        expected = [add_special_tokens(list(d), bos, eos) for d in docs]
        assert new_lengths.tolist() == [len(d) for d in expected]
        assert new_flat.tolist() == [t for d in expected for t in d]


def test_code_points_are_probed_against_the_tokenizers_pre_tokenizer():
    from dolma_pipeline.tokenize.bpe_cache import _classed_alike

    for c in "a1. 東\u0301🎉\u3000\x1c":
        assert _classed_alike(ord(c)), repr(c)
    assert not _classed_alike(0xD800)  # a lone surrogate: left to tokenizers, which refuses it


def test_a_chunk_with_a_character_classed_differently_goes_to_tokenizers(olmo_tokenizer, monkeypatch):
    from dolma_pipeline.tokenize import bpe_cache

    table = bpe_cache._CODE_POINTS.copy()
    table[ord("é")] = 2  # as if `regex` and Oniguruma disagreed about é
    monkeypatch.setattr(bpe_cache, "_CODE_POINTS", table)
    encoder = CachedEncoder(olmo_tokenizer)
    calls = []
    real = olmo_tokenizer.encode_batch_fast

    class Spy:
        def __getattr__(self, name):
            return getattr(olmo_tokenizer, name)

        def encode_batch_fast(self, texts, **kwargs):
            calls.append(list(texts))
            return real(texts, **kwargs)

    encoder.tokenizer = Spy()
    texts = ["un café noir", "the café's menu", "no accents here", "  résumé  "]
    assert_same(olmo_tokenizer, encoder, texts)
    assert sorted(c for batch in calls for c in batch) == sorted([" café", " café's", "  résumé"])
