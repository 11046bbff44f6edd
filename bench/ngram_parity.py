"""`dedupe.paragraphs.by_ngram` against dolma 1.2.1's own `dolma dedupe` on the same documents.

    flock /tmp/bench.lock python bench/ngram_parity.py [--documents GLOB] [--limit 2000] [--ngram-length 6]
        [--stride 3] [--threshold 0.5] [--skip-short] [--processes 1] [--files 1] [--cases]

The first `--limit` documents of the sorted files matching `--documents` are copied into one file
(`documents/000.jsonl.gz`; or `--files` files of consecutive documents) of two temporary trees; dolma
(PEERS/dolma-venv, one process: with more, its shared Bloom filter makes the answer depend on thread
timing) and ours (`dolma dedupe`, `--processes`) each dedupe one tree with the same Dolma config. Printed: documents and spans whose (start, end, score)
agree, every difference (first 10), each tool's wall time and CPU time (the machine is shared: CPU time
is the steadier figure), ours / dolma, and the load average.
Spans are compared after Dolma's known span bug is put right (the last paragraph of a text without a final
separator ends one past the text when the text is not ASCII). `--cases` uses the hand-made cases of
tests/dedupe/test_dedupe_ngram.py instead of corpus documents.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.environ.get("PEERS", "/tmp/peers")


def load_documents(pattern: str, limit: int) -> list[dict]:
    docs: list[dict] = []
    for path in sorted(glob.glob(pattern)):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                docs.append({"id": row["id"], "text": row["text"]})
                if len(docs) >= limit:
                    return docs
    return docs


def write_tree(root: str, docs: list[dict], files: int = 1) -> None:
    """The documents in order, over `files` files of consecutive documents (000.jsonl.gz, 001.jsonl.gz, ...)."""
    os.makedirs(os.path.join(root, "documents"))
    per_file = -(-len(docs) // files)
    for f in range(files):
        with gzip.open(os.path.join(root, "documents", f"{f:03d}.jsonl.gz"), "wt", encoding="utf-8") as fh:
            for doc in docs[f * per_file: (f + 1) * per_file]:
                fh.write(json.dumps(doc) + "\n")


def dolma_config(root: str, args: argparse.Namespace) -> dict:
    return {
        "documents": [os.path.join(root, "documents", "*.jsonl.gz")],
        "work_dir": {"input": os.path.join(root, "work", "in"), "output": os.path.join(root, "work", "out")},
        "dedupe": {"name": "ngram", "paragraphs": {"attribute_name": "dup", "by_ngram": {
            "ngram_length": args.ngram_length, "stride": args.stride, "overlap_threshold": args.threshold,
            "skip_short_paragraphs": args.skip_short}}},
        "bloom_filter": {"file": os.path.join(root, "work", "filter.bin"), "size_in_bytes": 0, "read_only": False,
                         "estimated_doc_count": 10_000_000, "desired_false_positive_rate": 1e-9},
        "processes": 1,
    }


def run_tool(root: str, args: argparse.Namespace, ours: bool) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child processes) of one run."""
    config = os.path.join(root, "config.json")
    with open(config, "w") as fh:
        json.dump(dolma_config(root, args), fh)
    if ours:
        env = {**os.environ, "PYTHONPATH": REPO, "RAY_AUTH_MODE": "disabled"}
        command = [sys.executable, "-m", "dolma_pipeline.cli", "-c", config, "dedupe", "--processes",
                   str(args.processes)]
    else:
        env = dict(os.environ)
        command = [os.path.join(PEERS, "dolma-venv", "bin", "dolma"), "-c", config, "dedupe"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{'ours' if ours else 'dolma'} failed:\n{result.stderr[-3000:]}")
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def spans(root: str, docs: list[dict]) -> list[list]:
    rows = []
    for path in sorted(glob.glob(os.path.join(root, "attributes", "ngram", "*.jsonl.gz"))):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            rows.extend(json.loads(line) for line in fh)
    out = []
    for doc, row in zip(docs, rows, strict=True):
        assert doc["id"] == row["id"]
        text = doc["text"]
        fixed = []
        for start, end, score in row["attributes"].get("dup", []):
            if end == len(text) + 1 and not text.isascii():  # Dolma's last-span bug (non-ASCII texts)
                end = len(text)
            if end > start:  # Dolma's empty span for the empty piece after a final newline
                fixed.append([start, end, float(score)])
        out.append(fixed)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", default="/tmp/dolma-corpus/dolma/en/documents/*.jsonl.gz")
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--ngram-length", type=int, default=6)
    parser.add_argument("--stride", type=int, default=3)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--skip-short", action="store_true")
    parser.add_argument("--processes", type=int, default=1, help="ours (dolma: always 1)")
    parser.add_argument("--files", type=int, default=1, help="split the documents over this many files")
    parser.add_argument("--cases", action="store_true", help="the hand-made cases of the tests")
    args = parser.parse_args()
    if args.cases:
        sys.path.insert(0, REPO)
        from tests.dedupe.test_dedupe_ngram import CASES

        docs = [{"id": f"case{i}", "text": text} for i, text in enumerate(CASES)]
    else:
        docs = load_documents(args.documents, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        ours_root, dolma_root = os.path.join(tmp, "ours"), os.path.join(tmp, "dolma")
        write_tree(ours_root, docs, args.files)
        write_tree(dolma_root, docs, args.files)
        dolma_s, dolma_cpu = run_tool(dolma_root, args, ours=False)
        ours_s, ours_cpu = run_tool(ours_root, args, ours=True)
        ours, theirs = spans(ours_root, docs), spans(dolma_root, docs)
    same_docs = sum(a == b for a, b in zip(ours, theirs))
    ours_set = {(i, *s) for i, doc in enumerate(ours) for s in doc}
    theirs_set = {(i, *s) for i, doc in enumerate(theirs) for s in doc}
    print(f"documents: {len(docs)} ({sum(len(d['text']) for d in docs) / 1e6:.1f} M characters); "
          f"settings: n={args.ngram_length} stride={args.stride} threshold={args.threshold} "
          f"skip_short={args.skip_short}")
    print(f"documents with identical spans: {same_docs}/{len(docs)} ({100 * same_docs / max(len(docs), 1):.2f}%)")
    print(f"spans: ours {len(ours_set)}, dolma {len(theirs_set)}, common {len(ours_set & theirs_set)}")
    differing = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    for i in differing[:10]:
        a, b = ours[i], theirs[i]
        print(f"  differs: {docs[i]['id']}: ours-only {[s for s in a if s not in b][:3]}, "
              f"dolma-only {[s for s in b if s not in a][:3]}")
    print(f"wall seconds: ours {ours_s:.2f} ({args.processes} process(es)), dolma 1.2.1 {dolma_s:.2f} (1 process); "
          f"ours/dolma {ours_s / dolma_s:.2f}; load average {os.getloadavg()[0]:.1f}")
    print(f"CPU seconds (start-up included): ours {ours_cpu:.2f}, dolma 1.2.1 {dolma_cpu:.2f}; "
          f"ours/dolma {ours_cpu / dolma_cpu:.2f}")


if __name__ == "__main__":
    main()
