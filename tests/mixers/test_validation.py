"""Errors before any output: missing attribute sets, files and keys; attribute rows that do not line up."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dolma_pipeline.config import from_dict
from dolma_pipeline.errors import ConfigError, DataFormatError
from dolma_pipeline.io import iter_raw_lines, write_jsonl
from mixers import command
from mixers.config import MixConfig
from tests.conftest import REPO
from tests.mixers.conftest import GOPHER, PII, stream_config


def run_mix(stream: dict, **top) -> int:
    return command.run(from_dict(MixConfig, {"streams": [stream], "debug": True, **top}))


def outputs(out) -> list[str]:
    return [n for n in os.listdir(out) if not n.startswith(".")] if os.path.isdir(out) else []


def test_missing_attribute_set_names_the_set_and_keys(mix_corpus, tmp_path):
    root, _ = mix_corpus
    out = tmp_path / "out"
    stream = stream_config(root, out, attributes=["pii", "gopher", "dedupe", "qualty"])
    with pytest.raises(ConfigError, match=r"attribute set 'qualty' does not exist.*gopher__gopher_v1__word_count"):
        run_mix(stream)
    assert outputs(out) == []


def test_typo_in_a_rule_key_is_an_error_with_a_suggestion(mix_corpus, tmp_path):
    root, _ = mix_corpus
    out = tmp_path / "out"
    typo = GOPHER.replace("word_count", "wordcount")
    stream = stream_config(root, out, rules=[{"attribute": typo, "op": "lt", "value": 10}])
    with pytest.raises(ConfigError, match=rf"attribute key '{typo}'.*did you mean '{GOPHER}'"):
        run_mix(stream)
    assert outputs(out) == []


@pytest.mark.parametrize("syntax,expression", [
    ("jq", f"(.attributes.{PII}doc_cnt // [[0,0,0]])[0][2] > 5"),
    ("jsonpath", f"$.attributes[?(@.{PII}doc_cnt && @.{PII}doc_cnt[0][2] > 5)]"),
])
def test_typo_in_a_filter_expression_is_an_error(mix_corpus, tmp_path, syntax, expression):
    root, _ = mix_corpus
    stream = stream_config(root, tmp_path / "out", filter={"syntax": syntax, "exclude": [expression]})
    with pytest.raises(ConfigError, match=f"{PII}doc_cnt"):
        run_mix(stream)


def test_typo_in_a_span_replacement_is_an_error(mix_corpus, tmp_path):
    root, _ = mix_corpus
    typo = "pii__pii_regex_fast_v2__EMAIL_ADDRESS"
    stream = stream_config(root, tmp_path / "out", span_replacement=[
        {"span": f"$.attributes.{typo}", "min_score": 0.5, "replacement": "x"}])
    with pytest.raises(ConfigError, match=f"{typo}'.*did you mean"):
        run_mix(stream)


def test_a_span_type_no_document_has_is_fine(mix_corpus, tmp_path):
    # Taggers write a span type only where they found one: no fixture document holds an IP address.
    root, _ = mix_corpus
    out = tmp_path / "out"
    stream = stream_config(root, out)
    stream["span_replacement"].append({"span": f"$.attributes.{PII}IP_ADDRESS", "min_score": 0.5,
                                       "replacement": " |||IP_ADDRESS||| "})
    assert run_mix(stream) == 0 and len(outputs(out)) == 1


def test_allow_missing_attributes_relaxes_the_checks(mix_corpus, tmp_path):
    root, docs = mix_corpus
    out = tmp_path / "out"
    stream = stream_config(root, out, attributes=["pii", "gopher", "dedupe", "qualty"],
                           rules=[{"attribute": "q__q__score", "op": "lt", "value": 0.5}])
    assert run_mix(stream, allow_missing_attributes=True) == 0
    assert len(outputs(out)) == 1  # a rule on an absent key never fires: nothing extra dropped


def test_missing_attribute_file_is_an_error(mix_corpus, tmp_path):
    root, _ = mix_corpus
    os.remove(root / "attributes" / "gopher" / "part-1.jsonl.gz")
    with pytest.raises(ConfigError, match=r"attributes/gopher/part-1.jsonl.gz"):
        run_mix(stream_config(root, tmp_path / "out"))


def rewrite_attributes(path, edit) -> None:
    import orjson

    rows = [orjson.loads(line) for line in iter_raw_lines(str(path))]
    write_jsonl(str(path), edit(rows))


def test_attribute_file_with_fewer_rows(mix_corpus, tmp_path):
    root, _ = mix_corpus
    path = root / "attributes" / "pii" / "part-2.jsonl.gz"
    rewrite_attributes(path, lambda rows: rows[:-3])
    out = tmp_path / "out"
    with pytest.raises(DataFormatError, match=r"attributes/pii/part-2.jsonl.gz.*no row for document 'f2-37' at line 38"):
        run_mix(stream_config(root, out))
    assert outputs(out) == []


def test_attribute_file_with_more_rows(mix_corpus, tmp_path):
    root, _ = mix_corpus
    path = root / "attributes" / "gopher" / "part-0.jsonl.gz"
    rewrite_attributes(path, lambda rows: rows + [rows[-1]])
    with pytest.raises(DataFormatError, match=r"attributes/gopher/part-0.jsonl.gz:41: attribute file has more rows"):
        run_mix(stream_config(root, tmp_path / "out"))


def test_attribute_rows_out_of_order(mix_corpus, tmp_path):
    root, _ = mix_corpus
    path = root / "attributes" / "dedupe" / "part-1.jsonl.gz"
    rewrite_attributes(path, lambda rows: rows[:5] + [rows[6], rows[5]] + rows[7:])
    with pytest.raises(DataFormatError, match=r"dedupe/part-1.jsonl.gz:6: attribute row id 'f1-6' does not match "
                                              r"document id 'f1-5' at .*part-1.jsonl.gz:6"):
        run_mix(stream_config(root, tmp_path / "out"))


def test_malformed_attribute_value_names_file_and_line(mix_corpus, tmp_path):
    root, _ = mix_corpus
    path = root / "attributes" / "gopher" / "part-0.jsonl.gz"

    def corrupt(rows):
        rows[3]["attributes"][GOPHER] = "many"
        return rows
    rewrite_attributes(path, corrupt)
    with pytest.raises(DataFormatError, match=r"part-0.jsonl.gz:4: document 'f0-3'.*not a list of spans"):
        run_mix(stream_config(root, tmp_path / "out"))


def test_cli_exits_non_zero_with_the_message(mix_corpus, tmp_path):
    import yaml

    root, _ = mix_corpus
    stream = stream_config(root, tmp_path / "out", attributes=["pii", "gopher", "dedupe", "nope"])
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump({"streams": [stream]}))
    proc = subprocess.run([sys.executable, "-m", "dolma_pipeline.cli", "-c", str(path), "mix"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "attribute set 'nope' does not exist" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "dolma_pipeline.cli", "-c", str(path), "mix", "--procesess", "2"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1 and "unknown key procesess" in proc.stderr


@pytest.mark.parametrize("name", ["dolma_example.yaml", "olmo_pii.yaml"])
def test_shipped_configs_load_and_compile(name):
    from dolma_pipeline.config import load_config
    from mixers.worker import StreamMixer

    config = load_config(MixConfig, os.path.join(REPO, "configs", "mix", name))
    for stream in config.streams:
        keys = StreamMixer(stream).attribute_keys()
        assert keys and all("__" in k or k.startswith("bff_") for k in keys)
