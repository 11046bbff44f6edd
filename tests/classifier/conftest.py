"""Real text for classifier tests: Python standard-library docstrings against Debian licence paragraphs."""

from __future__ import annotations

import ast
import glob
import hashlib
import os
import sysconfig

import pytest

MODULES = ["argparse.py", "json/__init__.py", "json/decoder.py", "json/encoder.py", "collections/__init__.py",
           "pathlib.py", "logging/__init__.py", "logging/handlers.py", "typing.py", "unittest/case.py",
           "email/message.py", "http/client.py", "http/server.py", "subprocess.py", "tarfile.py", "zipfile.py",
           "inspect.py", "functools.py", "shutil.py", "datetime.py", "decimal.py", "fractions.py"]
TINY = {"dim": 16, "bucket": 20000, "epoch": 25, "wordNgrams": 2, "lr": 0.5}


def docstring_docs(limit: int) -> list[dict]:
    """One document per function or class docstring of some standard-library modules (never imported)."""
    out = []
    base = sysconfig.get_paths()["stdlib"]
    for rel in MODULES:
        with open(os.path.join(base, rel), encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                text = ast.get_docstring(node)
                if text and len(text) >= 120:
                    out.append(_doc("python-docs", f"{rel}:{node.name}:{node.lineno}", text))
        if len(out) >= limit:
            break
    return out[:limit]


def licence_docs(limit: int) -> list[dict]:
    """Paragraphs (>= 200 characters) of the machine's Debian copyright files."""
    out = []
    for path in sorted(glob.glob("/usr/share/doc/*/copyright")):
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
        for i, para in enumerate(text.split("\n\n")):
            if len(para) >= 200:
                out.append(_doc("copyright", f"{path}:{i}", para))
        if len(out) >= limit:
            break
    return out[:limit]


def _doc(source: str, origin: str, text: str) -> dict:
    doc_id = hashlib.sha1(f"{source}\x00{origin}".encode()).hexdigest()[:16]
    return {"id": doc_id, "text": text, "source": source, "added": "2026-01-01T00:00:00Z",
            "metadata": {"origin": origin, "kind": "code-docs" if source == "python-docs" else "legal"}}


@pytest.fixture(scope="session")
def texts() -> dict[str, list[dict]]:
    docs, legal = docstring_docs(240), licence_docs(240)
    assert len(docs) >= 150 and len(legal) >= 150, (len(docs), len(legal))
    return {"docs": docs, "legal": legal}


@pytest.fixture
def labelled(tmp_path, texts):
    """documents/docs/part-{0,1}.jsonl.gz and documents/legal/part-0.jsonl.zst under tmp_path."""
    from dolma_pipeline.io import write_jsonl

    docs = texts["docs"]
    write_jsonl(str(tmp_path / "documents" / "docs" / "part-0.jsonl.gz"), docs[: len(docs) // 2])
    write_jsonl(str(tmp_path / "documents" / "docs" / "part-1.jsonl.gz"), docs[len(docs) // 2:])
    write_jsonl(str(tmp_path / "documents" / "legal" / "part-0.jsonl.zst"), texts["legal"])
    return tmp_path
