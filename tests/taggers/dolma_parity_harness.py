"""Run our taggers and dolma 1.2.1's on the same documents and compare their attributes.

Used by the parity tests (`tests/taggers/test_catalogue_parity.py`) and by `bench/dolma_parity.py`. Dolma runs
in its own venv (env PEERS, default /tmp/peers: `$PEERS/dolma-venv/bin/python`) through
`dolma_peer_runner.py`; taggers that download assets in Dolma are given the same local files on both
sides (`dolma_peer_overrides.py`). Values are compared after Dolma's rounding (5 decimals) within a
tolerance; a difference is either explained (a Dolma crash, or a Dolma bug fixed on purpose and named in
`EXPLAINED`) or a failure.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

from dolma_pipeline.documents import Document
from dolma_pipeline.tagger import TAGGERS

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.environ.get("PEERS", "/tmp/peers")
PEER_PYTHON = os.path.join(PEERS, "dolma-venv", "bin", "python")
DOCS = os.path.join(HERE, "data", "catalogue_docs.jsonl.gz")
TOLERANCE = 1e-4

Attributes = dict[str, list[list[float]]]


def peer_nltk_data() -> str:
    """An NLTK data directory where `tokenizers/punkt` exists: dolma imports NLTK and, not finding punkt,
    tries to download it at every start (~35 s here to be refused); its taggers here never use it."""
    path = os.path.join(tempfile.gettempdir(), "dolma_peer_nltk_data")
    os.makedirs(os.path.join(path, "tokenizers", "punkt"), exist_ok=True)
    return path


def peer_available() -> bool:
    return os.path.exists(PEER_PYTHON)


def peer_has_module(module: str) -> bool:
    """Whether the peer venv can import `module` (Dolma's optional dependencies: pycld2, langdetect, ...)."""
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    env = {**os.environ, "PYTHONPATH": os.path.join(HERE, "peer_shims")}
    return subprocess.run([PEER_PYTHON, "-c", code], env=env).returncode == 0


def read_docs(path: str = DOCS, limit: int | None = None) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            rows.append(json.loads(line))
            if limit and len(rows) >= limit:
                break
    return rows


def run_peer(rows: list[dict], names: dict[str, str], env: dict[str, str] | None = None,
             ) -> tuple[dict[str, dict[str, dict]], dict[str, float]]:
    """Dolma's output {name: {doc id: {"attributes": ...} or {"error": ...}}} and seconds per tagger.

    `names` maps our name to the peer's registered name (itself, or a `peer__` subclass)."""
    with tempfile.TemporaryDirectory() as tmp:
        docs, out = os.path.join(tmp, "docs.jsonl"), os.path.join(tmp, "out.jsonl")
        with open(docs, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        specs = [n if n == p else f"{n}={p}" for n, p in names.items()]
        run_env = {**os.environ, **(env or {}), "PYTHONPATH": os.path.join(HERE, "peer_shims"),
                   "NLTK_DATA": peer_nltk_data(),
                   "DOLMA_PEER_MODULES": os.path.join(HERE, "dolma_peer_overrides.py")}
        result = subprocess.run([PEER_PYTHON, os.path.join(HERE, "dolma_peer_runner.py"), docs, out, *specs],
                                env=run_env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"dolma peer run failed:\n{result.stderr[-3000:]}")
        outputs: dict[str, dict[str, dict]] = {}
        with open(out, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                outputs.setdefault(row.pop("tagger"), {})[row.pop("id")] = row
        return outputs, json.loads(result.stdout.strip().splitlines()[-1])


def run_ours(rows: list[dict], name: str, options: dict[str, Any] | None = None, batch: int = 64,
             docs: list[Document] | None = None) -> tuple[dict[str, Attributes], float]:
    """Our attributes {doc id: {type: [[start, end, score], ...]}}, grouped as Dolma groups them.

    `docs`: the `rows` as documents other taggers already went through (sharing their cached results, as
    the taggers of one `dolma tag` run do); fresh ones by default."""
    tagger = TAGGERS.get(name)(**(options or {}))
    tagger.setup()
    docs = docs if docs is not None else [Document(row) for row in rows]
    start = time.perf_counter()
    results = []
    for i in range(0, len(docs), batch):
        results.extend(tagger.predict_batch(docs[i : i + batch]))
    seconds = time.perf_counter() - start
    out: dict[str, Attributes] = {}
    for doc, spans in zip(docs, results):
        grouped: Attributes = {}
        for span in spans:
            grouped.setdefault(span.type, []).append(span.to_json())
        out[doc.id] = grouped
    return out, seconds


def _clamped_paragraph_starts(text: str, theirs: Attributes) -> bool:
    """Dolma's paragraph_tokenizer_repetitions_v1 starts a span one character before its paragraph."""
    return any(s < 0 or (s + 1 <= len(text) and text[s] == "\n") for s, _, _ in theirs.get("repetition", []))


def _span_past_text(text: str, theirs: Attributes) -> bool:
    return any(e > len(text) for spans in theirs.values() for _, e, _ in spans)


# name -> (why, test): differences that come from a Dolma bug we fix on purpose (README, "Dolma taggers").
EXPLAINED: dict[str, tuple[str, Callable[[str, Attributes], bool]]] = {
    "paragraph_tokenizer_repetitions_v1": (
        "Dolma's span starts one character before its paragraph (at -1 for the first); ours at the paragraph",
        _clamped_paragraph_starts),
    "code_copyright_comments_v1": (
        "Dolma's comment_block counts 1 per empty line and can end past the text; ours ends at the text's end",
        _span_past_text),
}


def same(ours: Attributes, theirs: Attributes, tolerance: float = TOLERANCE) -> bool:
    if ours.keys() != theirs.keys():
        return False
    for key, spans in ours.items():
        other = theirs[key]
        if len(spans) != len(other):
            return False
        for (s, e, v), (s2, e2, v2) in zip(spans, other):
            if s != s2 or e != e2 or abs(v - v2) > tolerance:
                return False
    return True


def compare(name: str, rows: list[dict], ours: dict[str, Attributes], theirs: dict[str, dict]) -> dict[str, Any]:
    """Counts of equal, explained and unexplained documents, with examples of the latter two."""
    equal, explained, unexplained = 0, [], []
    why, test = EXPLAINED.get(name, ("", None))
    for row in rows:
        doc_id = row["id"]
        peer = theirs[doc_id]
        if "error" in peer:
            explained.append((doc_id, f"dolma raises {peer['error'][:120]}"))
        elif same(ours[doc_id], peer["attributes"]):
            equal += 1
        elif test is not None and test(row["text"], peer["attributes"]):
            explained.append((doc_id, why))
        else:
            unexplained.append((doc_id, ours[doc_id], peer["attributes"]))
    return {"documents": len(rows), "equal": equal, "explained": explained, "unexplained": unexplained}


