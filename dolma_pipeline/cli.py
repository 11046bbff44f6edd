"""The `dolma` command: `dolma [-c CONFIG.yaml] SUBCOMMAND [--key value ...]`.

Each subcommand lives in its own module, imported only when used, which declares `Config` (a
dataclass: the schema of its YAML file and flags) and `run(config) -> int`; a module that needs
positional arguments may instead declare `main(argv, config_file) -> int`.
"""

from __future__ import annotations

import importlib
import logging
import sys

from dolma_pipeline.config import load_config
from dolma_pipeline.errors import DolmaError
from dolma_pipeline.options import help_text
from dolma_pipeline.safety import RedactingFilter, strip_credentials

COMMANDS: dict[str, tuple[str, str]] = {
    "tag": ("dolma_pipeline.commands.tag", "run taggers over documents, writing attribute files"),
    "list": ("dolma_pipeline.commands.list", "list every available tagger"),
    "dedupe": ("dolma_pipeline.dedupe.command", "exact and MinHash near-duplicate detection"),
    "decontaminate": ("dolma_pipeline.decontaminate.command", "flag training text that contains evaluation text"),
    "mix": ("mixers.command", "filter, mask and sample documents by their attributes into shards"),
    "tokenize": ("dolma_pipeline.tokenize.command", "tokenize documents into OLMo token files"),
    "tokens": ("dolma_pipeline.tokenize.command", "alias of tokenize (Dolma's name)"),
    "pipeline": ("dolma_pipeline.pipeline", "run the whole pipeline from one YAML file"),
    "report": ("dolma_pipeline.report", "an HTML data report with plots"),
    "lineage": ("dolma_pipeline.lineage", "which data trained a model, back to the tagged documents"),
    "warc": ("dolma_pipeline.warc.command", "web archives (WARC, WET) to Dolma documents"),
    "train-classifier": ("dolma_pipeline.classifier.command", "train a fastText classifier (quality, toxicity)"),
}

USAGE = "usage: dolma [-c CONFIG.yaml] COMMAND [--key value ...]\n\ncommands:\n" + "\n".join(
    f"  {name:<10} {desc}" for name, (_, desc) in COMMANDS.items()
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())  # no URL credentials in what the tool prints
    config_file = None
    while argv and argv[0] in ("-c", "--config"):
        if len(argv) < 2:
            print("error: -c needs a YAML file", file=sys.stderr)
            return 2
        config_file, argv = argv[1], argv[2:]
    if argv[:1] in (["--version"], ["-V"]):
        print(version_string())
        return 0
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; valid choices: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[name][0])
        if hasattr(module, "main"):
            return int(module.main(rest, config_file) or 0)
        if "-h" in rest or "--help" in rest:
            print(help_text(f"usage: dolma [-c CONFIG.yaml] {name} [--key value ...]", module.Config,
                            COMMANDS[name][1]))
            return 0
        config = load_config(module.Config, config_file, rest)
        return int(module.run(config) or 0)
    except DolmaError as e:
        print(f"error: {strip_credentials(str(e))}", file=sys.stderr)
        return 1
    except OSError as e:  # a path the user gave: missing, unreadable, a directory, read-only
        print(f"error: {strip_credentials(user_os_error(e))}", file=sys.stderr)
        return 1
    except SystemExit as e:  # argparse's own message is already printed
        return e.code if isinstance(e.code, int) else 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def version_string() -> str:
    """Package version and, from a checkout, the git commit (the string lineage records)."""
    from importlib.metadata import PackageNotFoundError, version

    from dolma_pipeline.lineage import code_version

    try:
        package = version("dolma-pipeline")
    except PackageNotFoundError:
        package = "unknown"
    commit = code_version()
    return f"dolma-pipeline {package}" + ("" if commit.startswith("dolma-pipeline") else f" (commit {commit})")


def user_os_error(e: OSError) -> str:
    what = e.strerror or str(e)
    return f"{e.filename}: {what}" if e.filename else what


if __name__ == "__main__":
    sys.exit(main())
