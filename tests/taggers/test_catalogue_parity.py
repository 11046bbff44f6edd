"""Dolma parity of the tagger catalogue: dolma 1.2.1's own taggers and ours on the same real documents.

`data/catalogue_docs.jsonl.gz` holds English prose and text in other languages from the shared corpus,
source files, HTML pages and edge cases (`data/make_catalogue_docs.py`). Dolma runs in the peer venv
($PEERS/dolma-venv); without it these tests skip and say so. Dolma's optional libraries (pycld2, gcld3 from
cld3-py, langdetect, lingua, detect-secrets, bs4) must be installed there for their families. Every
document must give Dolma's keys, offsets and values (within 1e-4), except where Dolma crashes or where
a Dolma bug is fixed on purpose (`dolma_parity_harness.EXPLAINED`, named in the README).
"""

from __future__ import annotations

import functools
import json

import pytest

from dolma_pipeline.assets import asset_path
from dolma_pipeline.documents import Document
from dolma_pipeline.tagger import TAGGERS
from taggers.repetitions import WHOLE_TEXT_SPANS
from taggers.urls import UrlListTagger
from tests.taggers import dolma_parity_harness as harness
from tests.taggers.catalogue_assets import LISTS, list_path, options_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not harness.peer_available(),
                       reason=f"dolma 1.2.1 peer venv not found at {harness.PEER_PYTHON} (set PEERS; "
                              "../shared/bench/setup_peers.sh installs it): parity not checked"),
]

# family -> (the peer's module it needs, documents used, names)
FAMILIES: dict[str, tuple[str, int | None, list[str]]] = {
    "lengths": ("dolma", None, [
        "bytes_length_v1", "doc_count_v1", "char_length_strip_ws_v1", "char_length_with_paragraphs_v1",
        "whitespace_tokenizer_with_paragraphs_v1", "not_alphanum_paragraph_v1", "olmo_pretokenizer_v1",
        "olmo_pretokenizer_with_paragraphs_v1"]),
    "uniseg": ("dolma", 25, [
        "uniseg_length_v1", "uniseg_length_paragraphs_v1", "uniseg_length_paragraphs_with_empty_v1",
        "uniseg_length_paragraphs_with_doc_length_v1"]),
    "tokenizers": ("dolma", None, [
        "dolma_v1_tokenizer", "dolma_v2_tokenizer", "tokenizers_AI2_OLMo_v1", "tokenizers_EleutherAI_GPT_NeoX_20B"]),
    "repetitions": ("dolma", None, [
        "repetitions_v1", "paragraph_repetitions_v1", "tokenizer_repetitions_v1", "tokenizer_repetitions_v2r2",
        "paragraph_tokenizer_repetitions_v1"]),
    "rules": ("dolma", None, [
        "gopher_v2", "c4_v1", "pii_regex_v1", "pii_regex_v2", "pii_regex_with_counts_v2", "cc_re", "cc_re_fast"]),
    "cld2": ("pycld2", None, [
        "cld2_doc_v2", "cld2_paragraph_v2", "cld2_en_doc_v2", "cld2_en_paragraph_v2",
        "cld2_en_paragraph_with_doc_score_v2"]),
    "cld3": ("gcld3", None, ["cld3_en_doc_v2", "cld3_en_paragraph_v2", "cld3_en_paragraph_with_doc_score_v2"]),
    "langdetect": ("langdetect", 20, [
        "langdetect_doc_v1", "langdetect_paragraph_v1", "langdetect_doc_en_v1", "langdetect_en_paragraph_v1"]),
    "lingua": ("lingua", 12, [
        "lingua_doc_v1", "lingua_1e2", "lingua_par_v1", "lingua_doc_en_v1", "lingua_en_only_v1", "lingua_en_par_v1"]),
    "code": ("detect_secrets", None, [
        "code_copyright_comments_v1", "code_redpajama_taggers_v1", "code_secrets_v1", "code_starcoder_taggers_v1",
        "code_starcoder_taggers_v2", "code_composition"]),
    "urls": ("dolma", None, [n for n, cls in TAGGERS.items() if issubclass(cls, UrlListTagger)]),
}
# Dolma's taggers that download assets at run time: the `peer__` subclasses read the files ours are given.
LOCAL_ASSETS = {
    "dolma_v1_tokenizer", "dolma_v2_tokenizer", "tokenizers_AI2_OLMo_v1", "tokenizers_EleutherAI_GPT_NeoX_20B",
    "tokenizer_repetitions_v1", "tokenizer_repetitions_v2r2", "paragraph_tokenizer_repetitions_v1",
    "code_composition", *FAMILIES["urls"][2],
}


def peer_environment() -> dict[str, str]:
    tokenizers = {
        "allenai/gpt-neox-olmo-dolma-v1_5": asset_path("allenai_gpt-neox-olmo-dolma-v1_5.json"),
        "allenai/dolma2-tokenizer": asset_path("allenai_dolma2.json"),
        "allenai/eleuther-ai-gpt-neox-20b-pii-special": asset_path("allenai_eleuther-ai-gpt-neox-20b-pii-special.json"),
    }
    # No wheel ships GPT-NeoX-20B's own tokenizer: both sides are given OLMo's derivative of it.
    tokenizers["EleutherAI/gpt-neox-20B"] = options_for("tokenizers_EleutherAI_GPT_NeoX_20B")["tokenizer_path"]
    return {"DOLMA_PEER_TOKENIZERS": json.dumps(tokenizers),
            "DOLMA_PEER_MODEL": options_for("code_composition")["model_path"],
            "DOLMA_PEER_LISTS": json.dumps({kind: list_path(kind) for kind in LISTS})}


@functools.cache
def family_outputs(family: str) -> tuple[list[dict], dict[str, dict[str, dict]]]:
    module, limit, names = FAMILIES[family]
    if module != "dolma" and not harness.peer_has_module(module):
        pytest.skip(f"the dolma peer venv lacks {module} (pip install it there): {family} parity not checked")
    rows = harness.read_docs(limit=limit)
    theirs, _ = harness.run_peer(rows, {n: f"peer__{n}" if n in LOCAL_ASSETS else n for n in names},
                                 peer_environment())
    return rows, theirs


@pytest.mark.parametrize("name", [(f, n) for f, (_, _, names) in FAMILIES.items() for n in names],
                         ids=lambda fn: fn[1])
def test_same_values_as_dolma(name):
    family, tagger = name
    rows, theirs = family_outputs(family)
    ours, _ = harness.run_ours(rows, tagger, options_for(tagger))
    assert_same_values(tagger, rows, ours, theirs[tagger])


def test_repetitions_in_one_run_same_values_as_dolma():
    """The family's names in turn on the same documents, as one `dolma tag` run calls them:
    `paragraph_repetitions_v1` then searches only inside `repetitions_v1`'s cached matches."""
    rows, theirs = family_outputs("repetitions")
    docs = [Document(row) for row in rows]
    for tagger in FAMILIES["repetitions"][2]:
        ours, _ = harness.run_ours(rows, tagger, options_for(tagger), docs=docs)
        assert_same_values(tagger, rows, ours, theirs[tagger])
    assert all(WHOLE_TEXT_SPANS in doc.__dict__ for doc in docs)


def assert_same_values(tagger: str, rows: list[dict], ours: dict, theirs: dict) -> None:
    result = harness.compare(tagger, rows, ours, theirs)
    details = [f"{doc_id}:\n  ours  {json.dumps(o)[:400]}\n  dolma {json.dumps(t)[:400]}"
               for doc_id, o, t in result["unexplained"][:3]]
    assert not result["unexplained"], f"{len(result['unexplained'])} of {len(rows)} differ:\n" + "\n".join(details)
    assert result["equal"] >= 0.9 * len(rows), result["explained"]
