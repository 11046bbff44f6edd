"""One source of truth for what every option means: the config dataclasses themselves.

A field's description is its ``metadata["help"]`` if given, else the comment on its line
(``name: int = 2  # worker processes``), else the comment lines right above it. :func:`describe` walks a
config dataclass (nested blocks included) into :class:`Option` rows: the flag, the YAML key path, a
readable type, the default and the description; ``--help`` prints them, and a test checks that every
field of every command has a description.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import re
import tokenize
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Union, get_args, get_origin

# Options that mean the same in every command, described once.
COMMON = {
    "documents": "document files: paths or globs, local or s3:// (.jsonl, .gz, .zst)",
    "destination": "output directory (default: Dolma's layout beside the documents)",
    "experiment": "experiment name: the attribute directory and the first part of each attribute key",
    "taggers": "tagger names to run (see `dolma list`)",
    "tagger_modules": "Python files or modules that register extra taggers (code you must trust)",
    "tagger_options": "per-tagger options, e.g. {ft_lang_id_doc_v1: {threshold: 0.05}}",
    "processes": "worker processes (1: run in this process)",
    "batch_size": "documents per batch handed to the taggers",
    "ignore_existing": "redo work even where a completion marker says it is done",
    "dryrun": "print what would run and exit without writing",
    "debug": "run serially in this process (no pool, no Ray) and show tracebacks",
    "ray_address": "address of an existing Ray cluster to run on (default: RAY_ADDRESS)",
    "executor": "where shards run: auto (serial for 1 process, Ray with a cluster address, else a local "
                "pool), ray, local or serial",
    "on_error": "bad input: fail (stop, naming file and line), skip_line or skip_file (skipped and counted)",
    "max_line_bytes": "a longer line is a bad line (see --on_error)",
    "keep_work_dir": "keep the intermediate work directory after a successful run",
    "seed": "random seed (results depend only on it, not on the worker count)",
}


@dataclass(frozen=True)
class Option:
    key: str  # YAML key path, e.g. dedupe.paragraphs.attribute_name
    type: str
    default: str
    help: str

    @property
    def flag(self) -> str:
        return f"--{self.key}"


_FIELD = re.compile(r"^    ([A-Za-z_]\w*)\s*:")


@cache
def _comments(cls: type) -> dict[str, str]:
    """Field name -> its comment (same line, else the comment lines just above), from the class source."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    comment_at: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                comment_at[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, SyntaxError):
        return {}
    out: dict[str, str] = {}
    above: list[str] = []
    for n, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#") and line.startswith("    #"):
            above.append(comment_at.get(n, stripped.lstrip("#").strip()))
            continue
        m = _FIELD.match(line)
        if m:
            text = comment_at.get(n) or " ".join(above)
            if text:
                out[m.group(1)] = text
        above = []
    return out


def readable_type(tp: Any) -> str:
    origin = get_origin(tp)
    if tp is Any:
        return "any value"
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        text = " or ".join(readable_type(a) for a in args)
        return f"{text} (or null)" if len(args) < len(get_args(tp)) else text
    if origin is Literal:
        return "one of: " + ", ".join(str(a) for a in get_args(tp))
    if origin is list:
        (item,) = get_args(tp) or (Any,)
        inner = readable_type(item)
        return "list of " + {"string": "strings", "integer": "integers", "number": "numbers"}.get(inner, inner)
    if origin is dict:
        _, val = get_args(tp) or (Any, Any)
        return f"mapping of name to {readable_type(val)}"
    if dataclasses.is_dataclass(tp):
        return "block"
    return {bool: "true/false", int: "integer", float: "number", str: "string"}.get(tp, getattr(tp, "__name__", str(tp)))


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def describe(cls: type, prefix: str = "") -> list[Option]:
    """Every option of config dataclass ``cls``; nested blocks are expanded (``block.field``)."""
    hints = typing.get_type_hints(cls)
    comments = _comments(cls)
    out: list[Option] = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        help_text = f.metadata.get("help") or comments.get(f.name) or COMMON.get(f.name, "")
        inner = [a for a in get_args(tp) if dataclasses.is_dataclass(a)] if get_origin(tp) in (Union, types.UnionType) else []
        block = tp if dataclasses.is_dataclass(tp) else (inner[0] if inner else None)
        default = _default(f)
        if block is not None:
            out.append(Option(prefix + f.name, "block", "", help_text))
            out += describe(block, prefix + f.name + ".")
            continue
        shown = "required" if default is dataclasses.MISSING else repr(default)
        out.append(Option(prefix + f.name, readable_type(tp), shown, help_text))
    return out


def help_text(usage: str, cls: type, summary: str = "") -> str:
    lines = [usage]
    if summary:
        lines += ["", summary]
    lines += ["", "options (flag = YAML key; nested keys as --block.key):"]
    for opt in describe(cls):
        if opt.type == "block":
            lines.append(f"  {opt.flag}.*  (block) {opt.help}".rstrip())
            continue
        lines.append(f"  {opt.flag}  {opt.type}, default {opt.default}")
        if opt.help:
            lines.append(f"      {opt.help}")
    return "\n".join(lines)


def reference_markdown() -> str:
    """docs/options.md: every option of every command, generated from the config dataclasses."""
    import importlib

    from dolma_pipeline.cli import COMMANDS

    out = ["# Options of every command", "",
           "Generated by `python -m dolma_pipeline.options > docs/options.md` from the config dataclasses "
           "(a test checks it is current). Every option is a flag (`--key value`, nested `--block.key value`) "
           "and the same key in the command's YAML file (`dolma -c file.yaml COMMAND`).", ""]
    targets = [(f"dolma {name}", importlib.import_module(mod)) for name, (mod, _) in COMMANDS.items()
               if name != "tokens"]
    from training.config import TrainConfig

    classes = [(title, m.Config) for title, m in targets if hasattr(m, "Config")]
    from dolma_pipeline.pipeline import PipelineConfig

    classes += [("dolma pipeline run (YAML)", PipelineConfig), ("olmo-train", TrainConfig)]
    for title, cls in classes:
        out += [f"## `{title}`", "", "| key | type | default | description |", "|---|---|---|---|"]
        for opt in describe(cls):
            cell = opt.help.replace("|", "\\|")
            out.append(f"| `{opt.key}` | {opt.type} | `{opt.default}` | {cell} |" if opt.type != "block"
                       else f"| `{opt.key}` | block | | {cell} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(reference_markdown())
