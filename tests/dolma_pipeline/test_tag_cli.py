"""`dolma tag` and `dolma list`: config, overrides, registry, plugins, outputs."""

from __future__ import annotations

import json

import pytest
import yaml

from dolma_pipeline.cli import main
from dolma_pipeline.config import parse_overrides

PLUGIN = '''
from dolma_pipeline.documents import Span
from dolma_pipeline.tagger import TAGGERS, Tagger

@TAGGERS.register("vowel_count_v1")
class VowelCount(Tagger):
    """Counts vowels (a third-party tagger loaded by path)."""
    def predict(self, doc):
        return [Span(0, len(doc.text), "vowels", float(sum(c in "aeiou" for c in doc.text)))]
'''


def _rows(path):
    import gzip

    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh]


def test_tag_writes_mirrored_attributes(corpus, capsys):
    code = main(["tag", "--documents", f"{corpus}/documents/**/*", "--experiment", "exp", "--taggers",
                 "char_length_v1", "whitespace_tokenizer_v1", "random_number_v1", "--debug"])
    assert code == 0
    rows = _rows(corpus / "attributes" / "exp" / "a.jsonl.gz")
    docs = _rows(corpus / "documents" / "a.jsonl.gz")
    assert [r["id"] for r in rows] == [d["id"] for d in docs]
    first = rows[0]["attributes"]
    text = docs[0]["text"]
    assert first["exp__char_length_v1__length"] == [[0, len(text), float(len(text))]]
    assert set(first) == {"exp__char_length_v1__length", "exp__whitespace_tokenizer_v1__length",
                          "exp__random_number_v1__random"}
    assert (corpus / "attributes" / "exp" / "sub" / "deeper" / "d.jsonl.gz").exists()
    config = yaml.safe_load((corpus / "attributes" / "exp" / "dolma_tag.config.yaml").read_text())
    assert config["taggers"] == ["char_length_v1", "whitespace_tokenizer_v1", "random_number_v1"]
    summary = json.loads((corpus / "attributes" / "exp" / "dolma_tag.summary.json").read_text())["summary"]
    assert summary["documents"] == 105 and summary["files"] == 4
    assert "105 documents" in capsys.readouterr().out


def test_random_number_is_deterministic_per_document(corpus):
    for exp in ("r1", "r2"):
        assert main(["tag", "--documents", f"{corpus}/documents/a.jsonl.gz", "--experiment", exp,
                     "--taggers", "random_number_v1", "--debug"]) == 0
    one = [r["attributes"]["r1__random_number_v1__random"] for r in _rows(corpus / "attributes/r1/a.jsonl.gz")]
    two = [r["attributes"]["r2__random_number_v1__random"] for r in _rows(corpus / "attributes/r2/a.jsonl.gz")]
    assert one == two
    assert len({v[0][2] for v in one}) > 30  # not a constant


def test_yaml_config_and_cli_override(corpus, tmp_path):
    config = tmp_path / "tag.yaml"
    config.write_text(yaml.safe_dump({"documents": [f"{corpus}/documents/*.gz"], "experiment": "from_yaml",
                                      "taggers": ["char_length_v1"], "debug": True}))
    assert main(["-c", str(config), "tag", "--experiment", "overridden"]) == 0
    assert (corpus / "attributes" / "overridden" / "a.jsonl.gz").exists()
    assert not (corpus / "attributes" / "from_yaml").exists()


def test_unknown_key_lists_valid_keys(corpus, capsys):
    assert main(["tag", "--documents", f"{corpus}/documents/*", "--taggers", "char_length_v1", "--bogus", "1"]) == 1
    err = capsys.readouterr().err
    assert "unknown key bogus" in err and "experiment" in err and "taggers" in err


def test_unknown_tagger_lists_choices(corpus, capsys):
    assert main(["tag", "--documents", f"{corpus}/documents/*", "--taggers", "nope_v9", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "unknown tagger 'nope_v9'" in err and "char_length_v1" in err


def test_bad_choice_is_an_error(corpus, capsys):
    assert main(["tag", "--documents", f"{corpus}/documents/*", "--taggers", "char_length_v1",
                 "--on_error", "ignore"]) == 1
    assert "fail, skip_line, skip_file" in capsys.readouterr().err


def test_tagger_module_by_path_and_list(corpus, tmp_path, capsys):
    plugin = tmp_path / "my_taggers.py"
    plugin.write_text(PLUGIN)
    assert main(["list", "--tagger_modules", str(plugin)]) == 0
    listing = capsys.readouterr().out
    assert "vowel_count_v1" in listing and "third-party" in listing and "char_length_v1" in listing
    assert main(["tag", "--documents", f"{corpus}/documents/a.jsonl.gz", "--experiment", "p", "--taggers",
                 "vowel_count_v1", "--tagger_modules", str(plugin), "--debug"]) == 0
    row = _rows(corpus / "attributes/p/a.jsonl.gz")[0]
    assert list(row["attributes"]) == ["p__vowel_count_v1__vowels"]


def test_no_experiment_uses_tagger_names(corpus):
    assert main(["tag", "--documents", f"{corpus}/documents/a.jsonl.gz", "--taggers", "char_length_v1",
                 "random_number_v1", "--debug"]) == 0
    assert "char_length_v1__char_length_v1__length" in _rows(corpus / "attributes/char_length_v1/a.jsonl.gz")[0]["attributes"]
    assert (corpus / "attributes/random_number_v1/a.jsonl.gz").exists()


def test_dryrun_writes_nothing(corpus, capsys):
    assert main(["tag", "--documents", f"{corpus}/documents/**/*", "--experiment", "d", "--taggers",
                 "char_length_v1", "--dryrun"]) == 0
    assert "4 file(s)" in capsys.readouterr().out
    assert not (corpus / "attributes").exists()


def test_destination_keeps_relative_layout(corpus, tmp_path):
    dest = tmp_path / "elsewhere"
    assert main(["tag", "--documents", f"{corpus}/documents/**/*", "--experiment", "x", "--taggers",
                 "char_length_v1", "--destination", str(dest), "--debug"]) == 0
    assert (dest / "sub" / "deeper" / "d.jsonl.gz").exists() and (dest / "a.jsonl.gz").exists()


@pytest.mark.parametrize(("argv", "expected"), [
    (["--a.b=3"], {"a": {"b": 3}}),
    (["--taggers", "x", "y"], {"taggers": ["x", "y"]}),
    (["--flag"], {"flag": True}),
    (["--no-flag"], {"flag": False}),
    (["--name", "007"], {"name": 7}),
])
def test_parse_overrides(argv, expected):
    assert parse_overrides(argv) == expected
