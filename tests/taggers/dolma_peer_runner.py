"""Runs dolma 1.2.1's own taggers on a JSONL of documents; executed by the peer venv's Python, never by ours.

Usage: PEER_PYTHON dolma_peer_runner.py DOCS.jsonl OUT.jsonl NAME[=PEER_NAME] ...

Each output line is {"tagger": NAME, "id": ..., "attributes": {type: [[start, end, score], ...]}} with Dolma's
own grouping and rounding (`BaseTagger.tag`), or {"tagger", "id", "error"} where Dolma raised. `PEER_NAME` is a subclass registered by the modules listed in
env DOLMA_PEER_MODULES (paths, ':'-separated): Dolma's taggers that download assets at run time get them
from local files that way (the same files our taggers are given).
"""

from __future__ import annotations

import json
import os
import sys
import time


def _tag(tagger, spec) -> dict:
    """Dolma's output for one document, or the error it raised (Dolma crashes on some documents)."""
    try:
        return {"attributes": tagger.tag(spec)}
    except Exception as e:  # noqa: BLE001 - recorded and compared, never hidden
        return {"error": f"{type(e).__name__}: {e}"}


def main() -> None:
    docs_path, out_path, *specs = sys.argv[1:]
    import dolma.taggers  # noqa: F401  (registers the built-in taggers)
    from dolma.core.data_types import InputSpecWithMetadata
    from dolma.core.registry import TaggerRegistry
    from dolma.core.utils import import_modules

    modules = [m for m in os.environ.get("DOLMA_PEER_MODULES", "").split(":") if m]
    if modules:
        import_modules(modules)
    with open(docs_path) as f:
        rows = [json.loads(line) for line in f]
    specs_in = [InputSpecWithMetadata(id=r["id"], text=r["text"], source=r.get("source", ""),
                                      metadata=r.get("metadata")) for r in rows]
    timings = {}
    with open(out_path, "w") as out:
        for spec in specs:
            name, _, peer_name = spec.partition("=")
            tagger = TaggerRegistry.get(peer_name or name)()
            start = time.perf_counter()
            results = [_tag(tagger, s) for s in specs_in]
            timings[name] = time.perf_counter() - start
            for row, result in zip(rows, results):
                out.write(json.dumps({"tagger": name, "id": row["id"], **result}) + "\n")
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
