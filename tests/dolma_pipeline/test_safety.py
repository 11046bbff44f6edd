"""No config destroys data: names are one path component, outputs never land on inputs, and the tool
deletes only directories it created. Each case below destroyed or overwrote data before the fix."""

from __future__ import annotations

import os

import pytest
import yaml

from dolma_pipeline import safety
from dolma_pipeline.cli import main
from dolma_pipeline.config import from_dict
from dolma_pipeline.errors import ConfigError
from tests.mixers.conftest import build_corpus, stream_config


def snapshot(root) -> dict[str, bytes]:
    """Every file below `root`, hidden ones included, with its bytes."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = fh.read()
    return out


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# ------------------------------------------------------------------------------------------------- names
@pytest.mark.parametrize("bad", ["", ".", "..", "../documents", "a/b", "a\\b", "x\x00y"])
def test_one_name_rule(bad):
    with pytest.raises(ConfigError):
        safety.check_name(bad, "name")


@pytest.mark.parametrize("good", ["minhash", "dedupe_para", "v1.2", "my-exp", "Über", "..x"])
def test_ordinary_names_pass(good):
    assert safety.check_name(good, "name") == good


def test_every_command_applies_the_name_rule():
    from dolma_pipeline.dedupe.config import DedupeConfig
    from dolma_pipeline.pipeline import PipelineConfig
    from dolma_pipeline.tag import TagConfig
    from mixers.config import MixConfig

    cases = [
        (DedupeConfig, {"documents": ["x"], "dedupe": {"name": "..", "minhash": {}}}, "dedupe.name"),
        (MixConfig, {"streams": [{"name": "../x", "documents": ["x"], "output": {"path": "o"}}]}, "stream name"),
        (TagConfig, {"experiment": "a/b"}, "experiment"),
        (PipelineConfig, {"stages": [{"name": "..", "command": "tag", "output": "o"}]}, "stage name"),
    ]
    for cls, data, what in cases:
        with pytest.raises(ConfigError, match=what):
            from_dict(cls, data)


# ------------------------------------------------------------------------------------------------ mix
@pytest.fixture
def mix_root(tmp_path):
    root = tmp_path / "corpus"
    build_corpus(root, files=2, per_file=20)
    return root


def _mix_yaml(tmp_path, stream: dict) -> str:
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump({"streams": [stream], "debug": True}))
    return str(path)


def test_mix_stream_named_dotdot_is_refused_and_the_output_dir_survives(mix_root, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier-results.txt").write_text("a user's file")
    corpus = snapshot(mix_root)
    code, text = run_cli(capsys, "-c", _mix_yaml(tmp_path, stream_config(mix_root, out, name="..")), "mix")
    assert code == 1 and "stream name '..'" in text
    assert (out / "earlier-results.txt").read_text() == "a user's file"
    assert snapshot(mix_root) == corpus


def test_mix_output_in_the_documents_dir_is_refused(mix_root, tmp_path, capsys):
    corpus = snapshot(mix_root)
    code, text = run_cli(capsys, "-c", _mix_yaml(tmp_path, stream_config(mix_root, mix_root / "documents")), "mix")
    assert code == 1 and "directory holding the input" in text
    assert snapshot(mix_root) == corpus


def test_mix_parts_dir_is_the_tools_own_and_removed(mix_root, tmp_path, capsys):
    out = tmp_path / "out"
    code, _ = run_cli(capsys, "-c", _mix_yaml(tmp_path, stream_config(mix_root, out)), "mix")
    assert code == 0
    assert not (out / ".parts").exists()
    assert any(name.startswith("mixed-0000") for name in os.listdir(out))


# --------------------------------------------------------------------------------------------- dedupe
DEDUPE = ["dedupe", "--dedupe.paragraphs.attribute_name", "dup", "--debug"]


@pytest.fixture
def corpus_root(corpus):
    return corpus  # tests/conftest.py: four files in three formats below corpus/documents


@pytest.mark.parametrize("name", ["..", "../documents"])
def test_dedupe_name_escaping_the_attributes_dir_is_refused(corpus_root, capsys, name):
    before = snapshot(corpus_root)
    code, text = run_cli(capsys, *DEDUPE, "--documents", str(corpus_root / "documents"), f"--dedupe.name={name}")
    assert code == 1 and "dedupe.name" in text
    assert snapshot(corpus_root) == before


def test_dedupe_work_dir_of_user_data_is_used_but_never_wiped(corpus_root, tmp_path, capsys):
    scratch = tmp_path / "scratch"
    (scratch / "project").mkdir(parents=True)
    (scratch / "project" / "results.csv").write_text("months of work")
    (scratch / "notes.txt").write_text("keep me")
    code, _ = run_cli(capsys, *DEDUPE, "--documents", str(corpus_root / "documents"), "--dedupe.name=para",
                      "--work_dir", str(scratch))
    assert code == 0
    assert snapshot(scratch) == {"project/results.csv": b"months of work", "notes.txt": b"keep me"}
    assert (corpus_root / "attributes" / "para" / "a.jsonl.gz").is_file()


def test_dedupe_fresh_work_dir_is_created_and_removed(corpus_root, tmp_path, capsys):
    work = tmp_path / "fresh" / "work"
    code, _ = run_cli(capsys, *DEDUPE, "--documents", str(corpus_root / "documents"), "--dedupe.name=para",
                      "--work_dir", str(work))
    assert code == 0 and not work.exists()


def test_dedupe_work_dir_on_the_documents_is_refused(corpus_root, capsys):
    before = snapshot(corpus_root)
    code, text = run_cli(capsys, *DEDUPE, "--documents", str(corpus_root / "documents"), "--dedupe.name=para",
                         "--work_dir", str(corpus_root / "documents"))
    assert code == 1 and "directory holding the input" in text
    assert snapshot(corpus_root) == before


@pytest.mark.parametrize("command", ["tag", "dedupe"])
def test_destination_equal_to_the_documents_dir_is_refused(corpus_root, capsys, command):
    before = snapshot(corpus_root)
    docs = str(corpus_root / "documents")
    if command == "tag":
        argv = ["tag", "--documents", docs, "--taggers", "char_length_v1", "--experiment", "e", "--debug"]
    else:
        argv = [*DEDUPE, "--documents", docs, "--dedupe.name=para"]
    code, text = run_cli(capsys, *argv, "--destination", docs + "/")
    assert code == 1 and "refusing to overwrite an input" in text
    assert snapshot(corpus_root) == before


def test_remove_owned_dir_refuses_a_directory_without_the_sentinel(tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "f").write_text("x")
    assert not safety.remove_owned_dir(str(user)) and (user / "f").exists()
    mine = tmp_path / "mine"
    assert safety.claim_dir(str(mine))
    (mine / "g").write_text("y")
    assert safety.remove_owned_dir(str(mine)) and not mine.exists()
    assert not safety.claim_dir(str(user))  # an existing directory is never adopted


# ------------------------------------------------------------------------------------------- tokenize
def test_tokenize_work_dir_of_user_data_survives_and_destination_on_documents_is_refused(corpus_root, tmp_path,
                                                                                        capsys):
    docs = str(corpus_root / "documents")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "notes.txt").write_text("keep me")
    out = tmp_path / "tokens"
    code, _ = run_cli(capsys, "tokenize", "--documents", docs, "--destination", str(out), "--work_dir", str(scratch),
                      "--debug")
    assert code == 0 and any(p.name.endswith(".npy") for p in out.iterdir())
    assert snapshot(scratch) == {"notes.txt": b"keep me"}

    before = snapshot(corpus_root)
    code, text = run_cli(capsys, "tokenize", "--documents", docs, "--destination", docs, "--debug")
    assert code == 1 and "directory holding the input" in text
    assert snapshot(corpus_root) == before


def test_outputs_are_compared_through_symlinks_dotdot_and_file_urls(tmp_path):
    docs = tmp_path / "c" / "documents"
    docs.mkdir(parents=True)
    (docs / "a.jsonl.gz").write_bytes(b"")
    link = tmp_path / "link"
    link.symlink_to(docs)
    inputs = [str(docs / "a.jsonl.gz")]
    for out_dir in (str(link), str(docs / ".." / "documents"), f"file://{docs}", str(docs / "a.jsonl.gz")):
        with pytest.raises(ConfigError):
            safety.check_outputs(inputs, output_dirs=[out_dir])
    with pytest.raises(ConfigError, match="refusing to overwrite an input"):
        safety.check_outputs(inputs, [str(link / "a.jsonl.gz")])
    # beside or above the inputs is allowed: only the inputs and the directories holding them are refused
    safety.check_outputs(inputs, [str(tmp_path / "c" / "attributes" / "x" / "a.jsonl.gz")],
                         [str(tmp_path / "c"), str(tmp_path / "c" / "attributes")])


# -------------------------------------------------------------------------------------- decontaminate
def test_decontaminate_work_dir_name_and_destination(corpus_root, tmp_path, capsys):
    from tests.decontaminate.conftest import base_config, eval_docs, write_corpus
    from tests.decontaminate.conftest import run_decon as decon

    evaluation = write_corpus(tmp_path / "eval", eval_docs(), "eval.jsonl.gz")
    docs = str(corpus_root / "documents")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "notes.txt").write_text("keep me")
    assert decon([], {**base_config(docs, evaluation), "work_dir": str(scratch)}) == 0
    assert snapshot(scratch) == {"notes.txt": b"keep me"}

    before = snapshot(corpus_root)
    with pytest.raises(ConfigError, match="dedupe.name"):
        decon([], base_config(docs, evaluation, name=".."))
    with pytest.raises(ConfigError, match="refusing to overwrite an input"):
        decon([], {**base_config(docs, evaluation), "destination": docs})
    assert snapshot(corpus_root) == before
