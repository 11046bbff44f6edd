"""Dolma-side `--tagger_modules` subclasses for the parity tests: Dolma's own taggers, reading from local
files the assets Dolma would download at run time (tokenizers, block lists, fastText models).

Imported by the peer venv's Python only. Paths come from the environment:
DOLMA_PEER_TOKENIZERS (JSON: hub name -> tokenizer.json), DOLMA_PEER_LISTS (JSON: list kind -> file),
DOLMA_PEER_MODEL (a fastText model). Each subclass is registered as `peer__<dolma name>`.
"""

from __future__ import annotations

import json
import os

from dolma.core.registry import TaggerRegistry
from dolma.taggers import code_composition, length, repetitions, tokenizers, url
from tokenizers import Tokenizer

TOKENIZERS = json.loads(os.environ.get("DOLMA_PEER_TOKENIZERS", "{}"))
LISTS = json.loads(os.environ.get("DOLMA_PEER_LISTS", "{}"))  # kind -> path
MODEL_PATH = os.environ.get("DOLMA_PEER_MODEL", "")


def _tokenizer(hub_name: str) -> Tokenizer:
    return Tokenizer.from_file(TOKENIZERS[hub_name])


def _register(name: str, base: type, **attrs) -> None:
    TaggerRegistry.add(f"peer__{name}")(type(f"Peer_{name}", (base,), attrs))


def _init_tokenizer(attr: str, hub_attr: str):
    def __init__(self) -> None:
        setattr(self, attr, _tokenizer(getattr(self, hub_attr)))

    return __init__


for _name, _cls in [("dolma_v1_tokenizer", length.DolmaV1Tokenizer), ("dolma_v2_tokenizer", length.DolmaV2Tokenizer)]:
    _register(_name, _cls, __init__=_init_tokenizer("tokenizer", "TOKENIZER_NAME_OR_PATH"))
_register("tokenizers_AI2_OLMo_v1", tokenizers.OLMoV1Tokenizer, __init__=_init_tokenizer("tokenizer", "TOKENIZER_PATH"))
_register("tokenizers_EleutherAI_GPT_NeoX_20B", tokenizers.GPTNeoX20BTokenizer,
          __init__=_init_tokenizer("tokenizer", "TOKENIZER_PATH"))
for _name, _cls in [
    ("tokenizer_repetitions_v1", repetitions.TokenizerRepetitionsTagger),
    ("tokenizer_repetitions_v2r2", repetitions.TokenizerRepetitionsSkipEmptyTagger),
    ("paragraph_tokenizer_repetitions_v1", repetitions.repetitions_taggers.ParagraphTokenizerRepetitionsTagger),
]:
    _register(_name, _cls, __init__=_init_tokenizer("tokenizer", "TOKENIZER_IDENTIFIER"))



def _list_kind(cls: type) -> str:
    for base, kind in ((url.AdbUrlTagger, "adblock"), (url.LinkBlocklistPhishingTagger, "link"),
                       (url.AllowlistWikidataTagger, "wikidata")):
        if issubclass(cls, base):
            return kind
    return "domain"


if LISTS:
    for _name, _cls in list(TaggerRegistry.items()):
        if isinstance(_cls, type) and issubclass(_cls, url.BaseUrlTagger) and not _name.startswith("peer__"):
            _register(_name, _cls, BLOCKLIST_PATHS=[LISTS[_list_kind(_cls)]])

if MODEL_PATH:
    _register("code_composition", code_composition.CodeProseCompositionClassifier, MODEL_PATH=MODEL_PATH)
