"""Dolma's tagger catalogue: every name dolma 1.2.1 registers, and hand-checked values of the new families."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from dolma_pipeline.documents import Document
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.tag import list_taggers
from dolma_pipeline.tagger import TAGGERS
from taggers.code import copyright_spans
from taggers.repetitions import periodic_runs

HERE = os.path.dirname(os.path.abspath(__file__))


def dolma_names() -> list[str]:
    with open(os.path.join(HERE, "data", "dolma_1_2_1_taggers.txt")) as f:
        return f.read().split()


def spans(name: str, text: str, **options) -> list[tuple]:
    tagger = TAGGERS.get(name)(**options)
    tagger.setup()
    return [tuple(s) for s in tagger.predict(Document.from_fields("d", text))]


def test_every_dolma_name_is_listed_with_a_description():
    names = dolma_names()
    assert len(names) == 99  # `TaggerRegistry` of dolma 1.2.1, taken from the peer venv
    missing = set(names) - set(TAGGERS.names())
    assert not missing, sorted(missing)
    listing = {line.split()[0]: line for line in list_taggers().splitlines()}
    for name in names:
        assert len(listing[name].split(None, 1)) == 2, f"{name} has no description in `dolma list`"


def test_lengths_hand_checked():
    text = "Hello, world!\n\n  \n!!! ???\nnaïve café 42\n"
    assert spans("bytes_length_v1", text) == [(0, len(text), "bytes", float(len(text.encode())))]
    assert spans("char_length_strip_ws_v1", "  ab \n") == [(0, 6, "length_no_ws", 2.0)]
    assert spans("doc_count_v1", "") == [(0, 0, "docs", 1.0)]
    # paragraphs: [0,14) "Hello, world!\n", [18,26) "!!! ???\n", [26,40) "naïve café 42\n"; blank lines dropped
    assert spans("char_length_with_paragraphs_v1", text) == [
        (0, 14, "paragraph", 14.0), (18, 26, "paragraph", 8.0), (26, 40, "paragraph", 14.0),
        (0, 40, "document", 40.0)]
    assert spans("not_alphanum_paragraph_v1", text) == [(18, 26, "all_punct", 1.0)]
    assert spans("not_alphanum_paragraph_v1", "only words\n") == [(0, 11, "all_punct", 0.0)]
    # UAX #29 words without spaces: Hello , world ! | ! ! ! ? ? ? | naïve café 42
    assert spans("uniseg_length_paragraphs_with_doc_length_v1", text)[-2:] == [
        (0, 40, "document", 13.0), (0, 40, "negative_document", -13.0)]
    with_empty = spans("uniseg_length_paragraphs_with_empty_v1", text)
    assert (14, 15, "paragraph", 0.0) in with_empty and len(with_empty) == 10


def test_repetitions_hand_checked():
    text = "ab ab ab ab ab end\nno repeat here"
    got = spans("repetitions_v1", text)
    assert got[0] == (0, 14, "repetition", 5.0)
    assert got[1:] == [(0, 33, "doc_max_score_repetition", 5.0), (0, 33, "doc_max_length_repetition", 14.0),
                       (0, 33, "doc_frac_repetition", 14 / 33)]
    assert spans("repetitions_v1", "") == [(0, 0, "doc_max_score_repetition", 0.0),
                                           (0, 0, "doc_max_length_repetition", 0.0),
                                           (0, 0, "doc_frac_repetition", 0.0)]
    assert spans("tokenizer_repetitions_v2r2", "nothing repeats in this sentence") == []


def _brute_force_periodic(ids: list[int], max_period: int = 13) -> set[tuple[int, int, int]]:
    """Dolma's alignment-based search, written the slow obvious way (rows of `period` ids)."""
    out = set()
    n = len(ids)
    for period in range(1, min(max_period, n // 3) + 1):
        rows = [ids[i : i + period] for i in range(0, n, period)]
        rows[-1] = rows[-1] + [-1] * (period - len(rows[-1])) if len(rows[-1]) < period else rows[-1]
        if n % period == 0:
            rows.append([-1] * period)
        same = [[rows[r][c] == rows[r - 1][c] for c in range(period)] for r in range(len(rows))]
        full = [r for r in range(len(rows)) if all(same[r])]
        groups: list[list[int]] = []
        for r in full:
            if groups and groups[-1][-1] == r - 1:
                groups[-1].append(r)
            else:
                groups.append([r])
        for g in groups:
            prev = same[g[0] - 1]
            tail = 0
            while tail < period and prev[period - 1 - tail]:
                tail += 1
            back = tail if 0 < tail < period else 0
            nxt = same[g[-1] + 1]
            head = 0
            while head < period and nxt[head]:
                head += 1
            start, end = (g[0] - 1) * period - back, (g[-1] + 1) * period + head
            if (end - start) // period > 2:
                out.add((start, end, (end - start) // period))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_periodic_runs_match_the_slow_definition(seed):
    rng = random.Random(seed)
    for _ in range(150):
        unit = [rng.randint(0, 4) for _ in range(rng.randint(1, 5))]
        ids = [rng.randint(0, 4) for _ in range(rng.randint(0, 20))] + unit * rng.randint(1, 6)
        ids += [rng.randint(0, 4) for _ in range(rng.randint(0, 20))]
        got = set(periodic_runs(np.array(ids, dtype=np.int64)))
        assert got == _brute_force_periodic(ids), ids


def test_code_copyright():
    c = "/* Copyright 2020 ACME */\nint x;\n"
    assert copyright_spans(c) == [(0, 25, "copyright_notice", 1.0)]
    assert copyright_spans("/* just a comment */\nint x;") == []
    # leading comment lines: Dolma's end adds each comment line's length and 1 per empty line
    assert copyright_spans("# licence\n\n# more\ncode\n") == [(0, 9 + 1 + 6, "comment_block", 1.0)]


def test_pii_v1_context_rules():
    text = "Mail bob@example.com now.\nisbn 0 (555) 123-4567\nhost 10.1.2.3 up\n"
    got = {s[2] for s in spans("pii_regex_v1", text)}
    assert got == {"EMAIL_ADDRESS", "doc"}  # "isbn" within 100 characters drops the phone and the IP
    assert {s[2] for s in spans("pii_regex_v1", text.replace("isbn", "ISBN"))} == {  # case-sensitive, as Dolma
        "EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "doc"}
    assert spans("pii_regex_v1", "   ")[-1] == (0, 3, "doc", -1.0)  # Dolma divides by zero here


@pytest.mark.parametrize("name, option", [("tokenizers_EleutherAI_GPT_NeoX_20B", "tokenizer_path"),
                                          ("code_composition", "model_path")])
def test_missing_asset_names_the_option(name, option):
    with pytest.raises(ConfigError, match=f"--tagger_options.{name}.{option}=PATH"):
        TAGGERS.get(name)().setup()


def test_cc_re_needs_html():
    from dolma_pipeline.errors import DataFormatError

    with pytest.raises(DataFormatError, match="metadata.html"):
        spans("cc_re", "text")
    html = '<a rel="license" href="http://creativecommons.org/licenses/by-nc-sa/3.0/us/">x</a>'
    doc = Document.from_fields("d", "text", metadata={"html": html})
    assert [tuple(s) for s in TAGGERS.get("cc_re")().predict(doc)] == [(0, 4, "cc_by-nc-sa_3.0_us", 1.0)]


def test_url_list_needed_and_named():
    with pytest.raises(ConfigError, match="blocklist_utp-20240205/adult/domains") as info:
        TAGGERS.get("domain_blocklist_utp_v1")().setup()
    assert "--tagger_options.domain_blocklist_utp_v1.list_path=PATH" in str(info.value)


def test_url_lists_read_as_dolma(tmp_path):
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("# c\n0.0.0.0 ads.example.com\nwww.shop.example.org\n||tracker.example^\nbad line !\n")
    tagger = TAGGERS.get("blocklist_hosts_porn_v1")(list_path=str(hosts))
    tagger.setup()

    def tagged(url: str) -> bool:
        return bool(tagger.predict(Document.from_fields("d", "text", metadata={"url": url})))

    assert tagged("https://ads.example.com/page?x=1") and tagged("http://www.ads.example.com")
    assert tagged("shop.example.org/") and tagged("http://tracker.example")
    assert tagged("http://0.0.0.0/x")  # Dolma means to skip local addresses but keeps them
    assert not tagged("https://sub.ads.example.com/") and not tagged("") and not tagged("https://example.com")


def test_adblock_rules():
    from taggers.url_lists import AdblockMatcher

    matcher = AdblockMatcher(["||ads.example.com^", "@@||good.ads.example.com^", "/banner/*/ad^", "||img.example^$image",
                              "||tp.example^$third-party", "example.net/path", "##.cosmetic", "evil"])
    blocked = {u: matcher.blocked(u) for u in [
        "ads.example.com", "x.ads.example.com/p", "good.ads.example.com", "ads.example.com.au",
        "site.com/banner/12/ad", "img.example/a.png", "tp.example/a", "www.example.net/path/x", "devilish.org",
        "adsxexample.com"]}
    assert blocked == {"ads.example.com": True, "x.ads.example.com/p": True, "good.ads.example.com": False,
                       "ads.example.com.au": False, "site.com/banner/12/ad": True, "img.example/a.png": False,
                       "tp.example/a": True, "www.example.net/path/x": True, "devilish.org": True,
                       "adsxexample.com": False}


@pytest.mark.parametrize("hub", ["allenai/gpt-neox-olmo-dolma-v1_5", "allenai/dolma2-tokenizer",
                                 "allenai/eleuther-ai-gpt-neox-20b-pii-special"])
def test_token_counts_are_the_encodings_lengths(hub):
    """The count-only paths (chunk-cached byte-level BPE, chunked cl100k) give `len(encode(text).ids)`."""
    import taggers.tokenizer_lengths as lengths
    from tests.taggers.dolma_parity_harness import read_docs

    tokenizer = lengths.load_tokenizer("t", hub, None)
    counter = lengths.TokenCounter(tokenizer)
    # dolma2 is not byte-level BPE but cl100k's pattern
    assert (counter.cache is not None, counter.chunked is not None) == (
        (False, True) if hub == "allenai/dolma2-tokenizer" else (True, False))
    if counter.chunked is not None:
        counter.chunked.chunks.counts.update({f"x{i}": 1 for i in range(counter.chunked.chunks.limit)})  # full: cleared
    rnd = random.Random(1)
    alphabet = ["a", "Z", "é", "1", "٣", " ", "  ", "\n", "\r\n", "\t", "\xa0", "\x1c", "\x85", "\u2028", "\u3000", "'s",
                "'T", ".", ",", "-", "_", "日", "ـ", "\u200b",
                "<|endoftext|>", "|||EMAIL_ADDRESS|||", "\u0301", "$"]
    texts = [row["text"] for row in read_docs(limit=40)] + [
        "", " ", "a\ud800b", "<|endoftext|> x <|padding|>", "|||EMAIL_ADDRESS||| and   spaces\n\n\tdef f():",
        "\u00a0\u3000 x\u2028y \u0130stanbul \ufb01 caf\u0065\u0301", "x" * 5000, "Ça va? 日本語のテキスト。"] + [
        "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 25))) for _ in range(2000)]
    safe = [t.encode("utf-8", "replace").decode("utf-8") for t in texts]
    for special in (False, True):
        expected = [len(e.ids) for e in tokenizer.encode_batch(safe, add_special_tokens=special)]
        assert counter.counts(texts, special) == expected


def test_olmo_pretoken_counts_by_chunk_are_the_whole_texts(monkeypatch):
    """Counting cached chunks gives the pre-tokeniser's count of the whole text, cache full or cleared."""
    import taggers.lengths as lengths
    from tests.taggers.dolma_parity_harness import read_docs

    pre = lengths.olmo_pre_tokenizer()
    tagger = TAGGERS.get("olmo_pretokenizer_v1")()
    tagger.setup()
    rnd = random.Random(0)
    alphabet = " \t\n\r\x0b\x1c\x85\xa0\u2028\u3000a1\u0661\u00b2.,'s-?!\"é\u0301\ud800_$+日"
    texts = [row["text"] for row in read_docs(limit=60)] + [
        "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30))) for _ in range(3000)]
    monkeypatch.setattr(tagger._chunks, "limit", 500)  # the cache is also cleared on the way
    for text in texts:
        whole = len(pre.pre_tokenize_str(text.encode("utf-8", "replace").decode("utf-8")))
        assert tagger.count(text) == whole, repr(text)


@pytest.mark.parametrize("name", ["tokenizer_repetitions_v1", "tokenizer_repetitions_v2r2",
                                  "paragraph_tokenizer_repetitions_v1"])
def test_token_repetitions_from_cached_ids_are_those_of_encode_batch(name):
    """Ids from the chunk-cached encoder, offsets only for texts that repeat: the spans of `encode_batch`."""
    from tests.taggers.dolma_parity_harness import read_docs

    docs = [Document(row) for row in read_docs(limit=60)] + [
        Document.from_fields("r", "la la la la la.\n\nno repeat here\n\n" + "ab, " * 20 + "\ud800 x x x x")]
    fast = TAGGERS.get(name)()
    fast.setup()
    assert fast.token_ids(["x"]) is not None  # OLMo's tokenizer is byte-level BPE: the cached path
    plain = TAGGERS.get(name)()
    plain.setup()
    plain.token_ids = lambda texts: None  # every text through encode_batch, offsets and all
    got = fast.predict_batch(docs)
    assert got == plain.predict_batch(docs)
    assert any(s.type == "repetition" for s in got[-1])


def test_names_of_one_identifier_share_its_last_scores(monkeypatch):
    """cld2_en_doc_v2 after cld2_doc_v2 on the same documents: no second CLD2 call, the same values."""
    pycld2 = pytest.importorskip("pycld2")
    import taggers.language_identifiers as identifiers

    docs = [Document.from_fields(str(i), t) for i, t in enumerate([
        "The quick brown fox jumps over the lazy dog near the river bank.",
        "Le renard brun rapide saute par-dessus le chien paresseux.", ""])]
    calls = []
    detect = pycld2.detect
    monkeypatch.setattr(pycld2, "detect", lambda *a, **k: calls.append(1) or detect(*a, **k))
    identifiers._LAST_SCORED.clear()
    TAGGERS.get("cld2_doc_v2")().predict_batch(docs)
    english = TAGGERS.get("cld2_en_doc_v2")()
    made = len(calls)
    shared = english.predict_batch(docs)
    assert len(calls) == made  # scores of the same texts reused
    identifiers._LAST_SCORED.clear()
    assert shared == english.predict_batch(docs) and len(calls) > made
    assert TAGGERS.get("cld2_en_doc_v2")().predict_batch(docs[:1]) == shared[:1]  # other texts: scored again
