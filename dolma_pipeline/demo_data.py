"""Build a Dolma-format demo corpus from human-written text that every machine of ours already has.

Sources (no dataset hub, nothing synthetic):
- `python-docs`: module, class and function docstrings of the Python standard library (read with `ast`,
  never imported), one document per module;
- `manpages`: the system's manual pages, English and translated (German, French, Spanish, ... wherever
  the distribution ships them), with roff markup stripped;
- `copyright`: the Debian packages' copyright files: real licence texts (many near-duplicates) and real
  e-mail addresses, which exercise the dedupe and PII stages.

`python -m dolma_pipeline.demo_data --output DIR` writes `DIR/documents/<source>/part-NNNN.jsonl.gz`.
Output is deterministic for a given machine image.
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import os
import re
import sysconfig
from collections.abc import Iterator

from dolma_pipeline.io import write_jsonl

STAMP = "2026-01-01T00:00:00.000Z"
DOCS_PER_FILE = 500
MIN_CHARS = 200


def _doc(source: str, origin: str, text: str, **metadata: str) -> dict:
    doc_id = hashlib.sha1(f"{source}\x00{origin}".encode()).hexdigest()[:20]
    return {"id": doc_id, "text": text, "source": source, "added": STAMP, "created": STAMP,
            "metadata": {"path": origin, **metadata}}


def python_docstrings(limit: int) -> Iterator[dict]:
    """Docstrings of the standard library, then of the installed packages (numpy, torch, ...)."""
    count = 0
    for base in (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]):
        for doc in _docstrings_under(base, limit - count):
            count += 1
            yield doc


def _docstrings_under(base: str, limit: int) -> Iterator[dict]:
    count = 0
    for root, dirs, files in os.walk(base):
        dirs[:] = sorted(d for d in dirs if d not in ("site-packages", "test", "tests", "idlelib", "__pycache__")
                         and not d.endswith((".dist-info", ".egg-info")))
        for name in sorted(files):
            if not name.endswith(".py") or count >= limit:
                continue
            path = os.path.join(root, name)
            try:
                with open(path, encoding="utf-8") as fh:
                    tree = ast.parse(fh.read())
            except (SyntaxError, UnicodeDecodeError, OSError):
                continue
            parts = []
            module_doc = ast.get_docstring(tree)
            if module_doc:
                parts.append(module_doc)
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    doc = ast.get_docstring(node)
                    if doc and not node.name.startswith("_"):
                        parts.append(f"{node.name}\n{doc}")
            text = "\n\n".join(parts)
            if len(text) >= MIN_CHARS:
                count += 1
                yield _doc("python-docs", os.path.relpath(path, base), text, lang="en")


_ROFF_ESCAPES = [
    (re.compile(r"\\f(?:\[[^\]]*\]|\(..|.)"), ""),
    (re.compile(r"\\\((?:em|en)"), "\u2014"),
    (re.compile(r"\\\(aq"), "'"),
    (re.compile(r"\\\((?:lq|rq|dq)"), '"'),
    (re.compile(r"\\\(bu"), "\u2022"),
    (re.compile(r"\\\*\(..|\\\*\[[^\]]*\]|\\\*."), ""),
    (re.compile(r"\\\(..|\\\[[^\]]*\]"), ""),
    (re.compile(r"\\[-]"), "-"),
    (re.compile(r"\\[&|^%,/ ]"), ""),
    (re.compile(r"\\e"), lambda m: "\\"),
    (re.compile(r"\\s[-+]?\d"), ""),
]
_TEXT_MACROS = {"SH", "SS", "B", "I", "BR", "BI", "IB", "IR", "RB", "RI", "TP", "IP", "SM", "SB", "UR", "MT", "Nm", "Nd", "Sh"}


def roff_to_text(source: str) -> str:
    """Strip man-page roff markup, keeping the prose, headings and paragraph breaks."""
    out: list[str] = []
    for line in source.splitlines():
        if line.startswith(('.\\"', "'\\\"", '\\"')):
            continue
        if line.startswith((".", "'")):
            macro, _, args = line[1:].strip().partition(" ")
            if macro in ("PP", "P", "LP", "sp", "br", "TP", "IP"):
                out.append("")
            if macro in _TEXT_MACROS and args:
                out.append(args.replace('"', "").strip())
            continue
        out.append(line)
    text = "\n".join(out)
    for pattern, repl in _ROFF_ESCAPES:
        text = pattern.sub(repl, text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def manpages(limit_per_language: int, man_root: str = "/usr/share/man") -> Iterator[dict]:
    if not os.path.isdir(man_root):
        return
    languages = ["en"] + sorted(d for d in os.listdir(man_root) if not d.startswith("man") and
                                os.path.isdir(os.path.join(man_root, d)))
    for lang in languages:
        base = man_root if lang == "en" else os.path.join(man_root, lang)
        count = 0
        for section in sorted(d for d in os.listdir(base) if d.startswith("man")):
            section_dir = os.path.join(base, section)
            for name in sorted(os.listdir(section_dir)):
                if count >= limit_per_language:
                    break
                path = os.path.join(section_dir, name)
                if not os.path.isfile(path) or os.path.islink(path):
                    continue
                try:
                    opener = gzip.open if name.endswith(".gz") else open
                    with opener(path, "rt", encoding="utf-8") as fh:
                        raw = fh.read()
                except (OSError, UnicodeDecodeError, EOFError):
                    continue
                if raw.startswith(".so "):
                    continue  # a redirect to another page
                text = roff_to_text(raw)
                if len(text) >= MIN_CHARS:
                    count += 1
                    yield _doc("manpages", os.path.relpath(path, man_root), text, lang=lang)


def copyright_files(limit: int, doc_root: str = "/usr/share/doc") -> Iterator[dict]:
    if not os.path.isdir(doc_root):
        return
    count = 0
    for package in sorted(os.listdir(doc_root)):
        path = os.path.join(doc_root, package, "copyright")
        if count >= limit or not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if len(text) >= MIN_CHARS:
            count += 1
            yield _doc("copyright", f"{package}/copyright", text, lang="en")


def build(output: str, python_limit: int = 1500, man_limit_per_language: int = 150,
          copyright_limit: int = 800) -> dict[str, int]:
    """Write the demo corpus under `output/documents/`; returns documents per source."""
    counts = {}
    sources = {
        "python-docs": python_docstrings(python_limit),
        "manpages": manpages(man_limit_per_language),
        "copyright": copyright_files(copyright_limit),
    }
    for source, docs in sources.items():
        batch, part, total = [], 0, 0
        for doc in docs:
            batch.append(doc)
            if len(batch) == DOCS_PER_FILE:
                write_jsonl(os.path.join(output, "documents", source, f"part-{part:04d}.jsonl.gz"), batch)
                total, part, batch = total + len(batch), part + 1, []
        if batch:
            write_jsonl(os.path.join(output, "documents", source, f"part-{part:04d}.jsonl.gz"), batch)
            total += len(batch)
        counts[source] = total
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="root directory; documents go to OUTPUT/documents/")
    parser.add_argument("--python-limit", type=int, default=1500)
    parser.add_argument("--man-limit-per-language", type=int, default=150)
    parser.add_argument("--copyright-limit", type=int, default=800)
    parser.add_argument("--skip-existing", action="store_true", help="do nothing if OUTPUT/documents exists")
    args = parser.parse_args(argv)
    if args.skip_existing and os.path.isdir(os.path.join(args.output, "documents")):
        print(f"demo corpus already in {args.output}/documents")
        return 0
    counts = build(args.output, args.python_limit, args.man_limit_per_language, args.copyright_limit)
    print(f"demo corpus in {args.output}/documents: " + ", ".join(f"{k} {v}" for k, v in counts.items())
          + f" ({sum(counts.values())} documents)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
