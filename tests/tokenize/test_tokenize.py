"""`dolma tokenize`: exact tokens, Dolma's file format, sizes, dtypes, error policy and verification."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest

from dolma_pipeline.cli import main as cli_main
from dolma_pipeline.config import from_dict
from dolma_pipeline.errors import ConfigError, DataFormatError, DolmaError
from dolma_pipeline.reader import read_documents
from dolma_pipeline.tokenize.command import SUMMARY_NAME, Config, run
from dolma_pipeline.tokenize.tokenfile import iter_documents, list_parts, metadata_path, read_rows

from .conftest import make_docs, truncate, write_docs

EOS = 50279


def tokenize(documents: str, destination: str, **options) -> dict:
    config = from_dict(Config, {"documents": [documents], "destination": destination, "debug": True, **options})
    assert run(config) == 0
    with open(os.path.join(destination, SUMMARY_NAME)) as fh:
        return json.load(fh)


def output_documents(destination: str) -> dict[str, tuple]:
    """id -> (tokens, row, part) for every document in every part."""
    out = {}
    for part in list_parts(destination):
        for row, tokens in iter_documents(part):
            assert row.id not in out, f"document {row.id} written twice"
            out[row.id] = (np.array(tokens), row, part)
    return out


def input_documents(directory: str) -> dict:
    docs = {}
    for root, _, names in os.walk(directory):
        for name in names:
            for doc in read_documents(os.path.join(root, name)):
                docs[doc.id] = doc
    return docs


def test_every_document_is_its_encoding_plus_eos(corpus, tmp_path, olmo_tokenizer):
    out = str(tmp_path / "out")
    summary = tokenize(corpus, out)
    written = output_documents(out)
    originals = input_documents(corpus)
    assert set(written) == set(originals)
    for doc_id, (tokens, row, _) in written.items():
        doc = originals[doc_id]
        assert tokens.tolist() == olmo_tokenizer.encode(doc.text.strip(), add_special_tokens=False).ids + [EOS]
        assert (row.src, row.loc) == (doc.path, doc.line)
    assert summary["documents"] == len(originals) == 60
    assert summary["tokens"] == sum(len(t) for t, _, _ in written.values())
    assert summary["dtype"] == "uint16"
    assert summary["sources"]["alpha"]["documents"] == 40 and summary["sources"]["beta"]["documents"] == 20
    assert summary["tokenizer"]["vocab_size"] == 50280 and len(summary["tokenizer"]["sha256"]) == 64
    assert os.path.exists(os.path.join(out, "dolma_tokenize.config.yaml"))
    assert not os.path.exists(os.path.join(out, ".tokenize-work"))


def test_npy_is_raw_headerless_memmap_and_csv_has_dolma_columns(corpus, tmp_path):
    out = str(tmp_path / "out")
    tokenize(corpus, out)
    (part,) = list_parts(out)
    assert os.path.basename(part) == "part-0-00000.npy"
    with open(part, "rb") as fh:
        assert fh.read(6) != b"\x93NUMPY"
    rows = read_rows(metadata_path(part))
    assert os.path.getsize(part) == rows[-1].end * 2
    with gzip.open(metadata_path(part), "rt") as fh:
        first = fh.readline().rstrip("\r\n").split(",")
    assert len(first) == 5 and first[0] == "0" and int(first[1]) > 0 and first[4].isdigit()


def test_pii_placeholders_are_single_tokens(tmp_path, olmo_tokenizer):
    docs = write_docs(str(tmp_path / "docs" / "pii.jsonl.gz"), [
        {"id": "p", "text": "mail |||EMAIL_ADDRESS||| phone |||PHONE_NUMBER||| ip |||IP_ADDRESS||| end"}])
    out = str(tmp_path / "out")
    tokenize(docs, out)
    tokens = output_documents(out)["p"][0].tolist()
    for placeholder, token in (("EMAIL_ADDRESS", 50277), ("PHONE_NUMBER", 50278), ("IP_ADDRESS", 0)):
        assert tokens.count(token) == 1, placeholder
        assert olmo_tokenizer.encode(f"|||{placeholder}|||").ids == [token]
    assert tokens[-1] == EOS and tokens.count(EOS) == 1


def test_bos_is_added_when_configured(corpus, tmp_path, olmo_tokenizer):
    out = str(tmp_path / "out")
    tokenize(corpus, out, tokenizer={"bos_token_id": 50279, "eos_token_id": 50279})
    originals = input_documents(corpus)
    for doc_id, (tokens, _, _) in output_documents(out).items():
        body = olmo_tokenizer.encode(originals[doc_id].text.strip(), add_special_tokens=False).ids
        assert tokens.tolist() == [EOS, *body, EOS]


def test_big_vocabulary_uses_uint32(tmp_path, big_vocab_tokenizer_path):
    docs = write_docs(str(tmp_path / "docs" / "w.jsonl.gz"),
                      [{"id": "hi", "text": "w69999 w65536 w1 w70000"}, {"id": "lo", "text": "w0 w2"}])
    out = str(tmp_path / "out")
    summary = tokenize(docs, out, tokenizer={"name_or_path": big_vocab_tokenizer_path, "eos_token_id": 70001})
    assert summary["dtype"] == "uint32"
    written = output_documents(out)
    assert written["hi"][0].tolist() == [69999, 65536, 1, 70000, 70001]  # "w70000" is unknown: [UNK]
    assert written["lo"][0].tolist() == [0, 2, 70001]
    (part,) = list_parts(out)
    assert os.path.getsize(part) == 8 * 4
    with pytest.raises(ConfigError, match="uint16 cannot hold token id 70,001"):
        tokenize(docs, str(tmp_path / "out16"), dtype="uint16",
                 tokenizer={"name_or_path": big_vocab_tokenizer_path, "eos_token_id": 70001})


def test_special_ids_outside_the_vocabulary_are_rejected(corpus, tmp_path):
    with pytest.raises(ConfigError, match="eos_token_id 60000 is outside the vocabulary"):
        tokenize(corpus, str(tmp_path / "out"), tokenizer={"eos_token_id": 60000})
    with pytest.raises(ConfigError, match="documents would not be separated"):
        tokenize(corpus, str(tmp_path / "out"), tokenizer={"eos_token_id": None})


def test_max_size_is_bytes_per_file_and_an_overlong_document_gets_its_own_part(tmp_path):
    # WordLevel-free check with the OLMo tokenizer: "a" * n tokens vary, so measure the written lengths.
    docs = make_docs("m", 30) + [{"id": "huge", "text": "word " * 3000}]
    path = write_docs(str(tmp_path / "docs" / "m.jsonl.gz"), docs)
    out = str(tmp_path / "out")
    max_size = 2000  # bytes: 1000 uint16 tokens
    summary = tokenize(path, out, max_size=max_size)
    parts = list_parts(out)
    assert len(parts) == len(summary["parts"]) > 2
    written = output_documents(out)
    assert len(written) == 31
    huge_tokens, _, huge_part = written["huge"]
    assert len(huge_tokens) * 2 > max_size
    assert [row.id for row in read_rows(metadata_path(huge_part))] == ["huge"]
    assert summary["oversized_documents"] == 1
    sizes = {p: os.path.getsize(p) for p in parts}
    for part, size in sizes.items():
        if part != huge_part:
            assert size <= max_size
    # Greedy packing: no part could have taken the next part's first document.
    ordered = [read_rows(metadata_path(p)) for p in parts]
    for rows, following in zip(ordered, ordered[1:]):
        first = following[0]
        assert rows[-1].end + (first.end - first.start) > max_size // 2


def test_a_document_exactly_filling_a_part(tmp_path, olmo_tokenizer):
    texts = ["alpha beta gamma", "delta epsilon", "zeta"]
    lengths = [len(olmo_tokenizer.encode(t).ids) + 1 for t in texts]
    path = write_docs(str(tmp_path / "docs" / "x.jsonl.gz"), [{"id": str(i), "text": t} for i, t in enumerate(texts)])
    out = str(tmp_path / "out")
    tokenize(path, out, max_size=2 * sum(lengths))  # exactly everything
    assert len(list_parts(out)) == 1
    out2 = str(tmp_path / "out2")
    tokenize(path, out2, max_size=2 * sum(lengths) - 2)  # one token short
    assert len(list_parts(out2)) == 2


def test_seed_decides_the_order(corpus, tmp_path):
    def order(seed, name):
        out = str(tmp_path / name)  # a fresh folder per run: a rerun into the same one would only resume
        tokenize(corpus, out, seed=seed)
        return [row.id for part in list_parts(out) for row in read_rows(metadata_path(part))]

    first, again, other = order(1, "first"), order(1, "again"), order(2, "other")
    assert len(first) == 60 and first == again  # the same seed shuffles the same way in two separate runs
    assert first != other
    assert sorted(first) == sorted(other)


def test_bad_input_fails_naming_file_and_line(corpus, tmp_path):
    bad = os.path.join(corpus, "bad.jsonl")
    with open(bad, "w") as fh:
        fh.write(json.dumps({"id": "ok", "text": "fine"}) + "\n{not json\n" + json.dumps({"id": "x"}) + "\n")
    with pytest.raises(DataFormatError, match=r"bad.jsonl:2: malformed JSON"):
        tokenize(corpus, str(tmp_path / "out"))
    summary = tokenize(corpus, str(tmp_path / "skip_line"), on_error="skip_line")
    assert summary["lines_skipped"] == 2 and summary["documents"] == 61
    assert any("bad.jsonl:3" in e for e in summary["errors"])
    summary = tokenize(corpus, str(tmp_path / "skip_file"), on_error="skip_file")
    assert summary["files_skipped"] == 1 and summary["documents"] == 60
    assert "ok" not in output_documents(str(tmp_path / "skip_file"))


def test_truncated_gzip_is_an_error(corpus, tmp_path):
    truncate(os.path.join(corpus, "a.jsonl.gz"))
    with pytest.raises(DataFormatError, match="truncated gzip"):
        tokenize(corpus, str(tmp_path / "out"))


def test_empty_documents_are_skipped_and_counted(tmp_path):
    path = write_docs(str(tmp_path / "docs" / "e.jsonl.gz"),
                      [{"id": "blank", "text": "  \n "}, {"id": "full", "text": "text"}])
    out = str(tmp_path / "out")
    summary = tokenize(path, out)
    assert summary["empty_documents_skipped"] == 1
    assert set(output_documents(out)) == {"full"}


def test_verify_accepts_good_output_and_names_a_tampered_document(corpus, tmp_path):
    out = str(tmp_path / "out")
    tokenize(corpus, out)
    assert run(from_dict(Config, {"verify": out})) == 0
    # Foreign output (Dolma's) has no summary: the flags give the tokenizer and the dtype is inferred.
    os.rename(os.path.join(out, SUMMARY_NAME), str(tmp_path / "summary.json"))
    assert run(from_dict(Config, {"verify": out, "tokenizer": {"eos_token_id": EOS}})) == 0
    with pytest.raises(DolmaError, match="tokens differ"):
        run(from_dict(Config, {"verify": out, "tokenizer": {"bos_token_id": EOS}}))
    os.rename(str(tmp_path / "summary.json"), os.path.join(out, SUMMARY_NAME))
    tokens, row, part = output_documents(out)["b-3"]
    data = np.memmap(part, dtype=np.uint16, mode="r+")
    data[row.start] = (int(data[row.start]) + 1) % 50000
    data.flush()
    del data
    with pytest.raises(DolmaError, match=r"document 'b-3' \(.*b.jsonl.gz:4\).*position 0"):
        run(from_dict(Config, {"verify": out}))
    assert cli_main(["tokenize", "--verify", out]) == 1


def test_dolma_tokens_alias_with_dolma_flags(corpus, tmp_path, olmo_tokenizer_path, capsys):
    out = str(tmp_path / "out")
    rc = cli_main(["tokens", "--documents", f"{corpus}/*.jsonl.gz", "--destination", out,
                   "--tokenizer.name_or_path", olmo_tokenizer_path, "--tokenizer.eos_token_id", "50279",
                   "--tokenizer.pad_token_id", "1", "--dtype", "uint16", "--max_size", "100000",
                   "--processes", "1", "--seed", "7", "--debug"])
    assert rc == 0
    assert len(output_documents(out)) == 45  # the glob does not descend into sub/
    assert "45 documents" in capsys.readouterr().out


def test_text_the_tokenizer_cannot_take_is_a_bad_line(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    with open(docs / "s.jsonl", "w") as fh:
        fh.write('{"id": "good", "text": "fine"}\n{"id": "bad", "text": "lone \\ud800 surrogate"}\n')
    with pytest.raises(DataFormatError, match=r"s.jsonl:2: cannot tokenize document 'bad'"):
        tokenize(str(docs), str(tmp_path / "out"))
    summary = tokenize(str(docs), str(tmp_path / "skip"), on_error="skip_line")
    assert summary["documents"] == 1 and summary["lines_skipped"] == 1
    assert set(output_documents(str(tmp_path / "skip"))) == {"good"}


def test_a_missing_tokenizer_file_is_a_config_error(corpus, tmp_path):
    with pytest.raises(ConfigError, match="tokenizer file .*missing.json does not exist"):
        tokenize(corpus, str(tmp_path / "out"), tokenizer={"name_or_path": str(tmp_path / "missing.json")})


def test_a_hub_name_is_refused_without_allow_hub(tmp_path):
    """No silent download: a name that is not a local file needs --tokenizer.allow_hub."""
    from dolma_pipeline.tokenize.tokenizer_io import resolve_tokenizer

    with pytest.raises(ConfigError, match="--tokenizer.allow_hub true"):
        resolve_tokenizer("EleutherAI/gpt-neox-20b", str(tmp_path / "cache"))
    assert not (tmp_path / "cache").exists()


def test_remote_work_dir_is_a_private_directory_of_the_users_cache(tmp_path, monkeypatch):
    from dolma_pipeline.tokenize.command import default_work_dir

    monkeypatch.setenv("DOLMA_CACHE", str(tmp_path / "cache"))
    work = default_work_dir("s3://bucket/tokens")
    assert work.startswith(str(tmp_path / "cache")) and os.path.isdir(work)
    assert os.stat(work).st_mode & 0o777 == 0o700
    assert default_work_dir("s3://bucket/tokens") == work  # the same on a rerun: it resumes
    other = default_work_dir("s3://bucket/other")
    os.rmdir(other)
    os.symlink(tmp_path, other)  # planted in its place: refused, never followed
    with pytest.raises(ConfigError, match="not a private directory"):
        default_work_dir("s3://bucket/other")
