"""The CLI explains itself: a description for every option, --help and --version, and no traceback for a
user's mistake (a generated set of bad invocations over every subcommand)."""

from __future__ import annotations

import dataclasses
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dolma_pipeline import cli
from dolma_pipeline.options import describe, reference_markdown
from dolma_pipeline.pipeline import PipelineConfig
from tests.conftest import REPO
from training import cli as train_cli
from training.config import TrainConfig

CONFIG_COMMANDS = {name: importlib.import_module(mod).Config for name, (mod, _) in cli.COMMANDS.items()
                   if hasattr(importlib.import_module(mod), "Config")}


@pytest.mark.parametrize("name,cls", [*CONFIG_COMMANDS.items(), ("pipeline", PipelineConfig),
                                      ("olmo-train", TrainConfig)])
def test_every_option_has_a_description(name, cls) -> None:
    options = describe(cls)
    assert options and [o.key for o in options if not o.help] == []


def test_option_reference_is_generated_from_the_configs() -> None:
    assert (Path(REPO) / "docs" / "options.md").read_text().strip() == reference_markdown().strip(), (
        "docs/options.md is stale: python -m dolma_pipeline.options > docs/options.md")


def test_readme_command_table_lists_every_command() -> None:
    readme = (Path(REPO) / "README.md").read_text()
    for name in cli.COMMANDS:
        if name != "tokens":
            assert re.search(rf"`dolma {re.escape(name)}[ `]", readme), name


def test_help_shows_flag_type_default_and_description(capsys) -> None:
    assert cli.main(["tag", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--processes  integer, default 1" in out and "worker processes" in out
    assert "--executor  one of: auto, ray, local, serial" in out
    assert cli.main(["dedupe", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--dedupe.paragraphs.attribute_name  string" in out


def test_version(capsys) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("dolma-pipeline ")
    assert train_cli.main(["--version"]) == 0
    assert "olmo-train (dolma-pipeline" in capsys.readouterr().out


def _first(cls, pred):
    return next((o for o in describe(cls) if pred(o)), None)


def _bad_invocations(name: str, tmp_path: Path) -> list[tuple[list[str], str]]:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("documents: [a\nprocesses: 2\n")
    cls = CONFIG_COMMANDS.get(name)
    if hasattr(importlib.import_module(cli.COMMANDS[name][0]), "main"):  # positional arguments
        if name == "lineage":
            return [([name, "--no_such_flag"], "no_such_flag"), ([name, str(tmp_path / "nothing")], "nothing")]
        head = [name, "run"]
        return [([*head, "--no_such_flag"], "no_such_flag"), ([*head, str(tmp_path / "missing.yaml")], "missing.yaml"),
                ([*head, str(bad_yaml)], "line 2"), ([*head, str(tmp_path)], str(tmp_path))]
    cases = [([name, "--no_such_flag", "1"], "no_such_flag"),
             (["-c", str(tmp_path / "missing.yaml"), name], "missing.yaml"),
             (["-c", str(bad_yaml), name], "line 2"),
             (["-c", str(tmp_path), name], str(tmp_path))]
    if cls is not None:
        integer = _first(cls, lambda o: o.type == "integer")
        if integer:
            cases.append(([name, f"--{integer.key}", "abc"], integer.key))
        block = _first(cls, lambda o: o.type == "block")
        if block:
            cases.append(([name, f"--{block.key}.no_such_key", "1"], "no_such_key"))
        valued = _first(cls, lambda o: o.type.startswith(("list", "string")))
        if valued:
            cases.append(([name, f"--{valued.key}"], valued.key))
        if _first(cls, lambda o: o.key == "processes"):
            cases.append(([name, "--processes", "0"], "processes"))
    return cases


@pytest.mark.parametrize("name", [n for n in cli.COMMANDS if n != "tokens"])
def test_bad_invocations_fail_clearly_without_a_traceback(name, tmp_path, capsys) -> None:
    for argv, named in _bad_invocations(name, tmp_path):
        code = cli.main(argv)  # an exception escaping here is the traceback a user would see
        captured = capsys.readouterr()
        assert code != 0, (argv, captured)
        assert named in captured.err, (argv, captured.err)
        assert "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize("argv,named", [
    (["missing.yaml"], "missing.yaml"),
    (["/"], "Is a directory"),
    (["configs/train/tiny.yaml", "--trainer.max_stepz=3"], "max_stepz"),
    (["configs/train/tiny.yaml", "--trainer.max_steps=abc"], "max_steps"),
    (["export", "/", "out"], "checkpoint"),
])
def test_olmo_train_user_mistakes(argv, named, tmp_path) -> None:
    r = subprocess.run([sys.executable, "-m", "training.cli", *argv], capture_output=True, text=True, cwd=REPO,
                       env={"PYTHONPATH": REPO, "PATH": "/usr/bin:/bin"}, timeout=300)
    assert r.returncode != 0 and named in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_defaults_shown_are_the_real_defaults() -> None:
    for cls in CONFIG_COMMANDS.values():
        obj_defaults = {f.name: f for f in dataclasses.fields(cls)}
        for opt in describe(cls):
            if "." in opt.key or opt.type == "block" or opt.default == "required":
                continue
            f = obj_defaults[opt.key]
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            assert opt.default == repr(default)
