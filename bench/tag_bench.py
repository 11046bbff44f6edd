"""`dolma tag` throughput: this project against dolma 1.2.1, same documents, same process count.

Each tool runs as a subprocess on its own copy of the documents (in a temporary directory) and the wall
time of the whole command is measured, start-up included. Prints docs/s for both and the ratio.

    python bench/tag_bench.py --taggers gopher_v1 c4_v2 pii_regex_with_counts_fast_v2 [--files 2] [--processes 2]
    python bench/tag_bench.py --taggers char_length_v1
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OURS = os.path.join(REPO, ".venv", "bin", "dolma")
DEFAULT_PEER = "/tmp/peers/dolma-venv/bin/dolma"
DEFAULT_DOCUMENTS = "/tmp/dolma-corpus/dolma/en/documents"


def select_files(documents: str, files: int | None) -> list[str]:
    paths = sorted(glob.glob(os.path.join(documents, "*.jsonl.gz")))
    if not paths:
        raise SystemExit(f"no *.jsonl.gz under {documents}")
    return paths[:files] if files else paths


def count_documents(paths: list[str]) -> int:
    total = 0
    for path in paths:
        with gzip.open(path, "rb") as f:
            total += sum(1 for _ in f)
    return total


def make_copy(paths: list[str], root: str) -> str:
    """`root/documents/<file>` for each path; returns the documents glob."""
    os.makedirs(os.path.join(root, "documents"), exist_ok=True)
    for path in paths:
        shutil.copy(path, os.path.join(root, "documents", os.path.basename(path)))
    return os.path.join(root, "documents", "*.jsonl.gz")


def run_tag(executable: str, documents_glob: str, taggers: list[str], processes: int,
            experiment: str) -> tuple[float, int, str]:
    """(wall seconds, exit status, output tail) of one `dolma tag` command."""
    command = [executable, "tag", "--documents", documents_glob, "--experiment", experiment,
               "--taggers", *taggers, "--processes", str(processes)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", DOLMA_NO_PROGRESS="1", RAY_AUTH_MODE="disabled",
               TOKENIZERS_PARALLELISM="false")
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    return seconds, result.returncode, (result.stdout + result.stderr)[-2000:]


def run_both(args: argparse.Namespace, workdir: str) -> dict[str, tuple[float, int, str]]:
    paths = select_files(args.documents, args.files)
    results = {}
    tools = [("ours", args.ours)]
    if os.path.exists(args.peer):
        tools.append(("dolma 1.2.1", args.peer))
    else:
        print(f"peer {args.peer} not found: skipping dolma 1.2.1 (install with ../shared/bench/setup_peers.sh)")
    for label, executable in tools:
        root = os.path.join(workdir, label.split()[0])
        documents_glob = make_copy(paths, root)
        results[label] = run_tag(executable, documents_glob, args.taggers, args.processes, args.experiment)
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--taggers", nargs="+", default=["gopher_v1", "c4_v2", "pii_regex_with_counts_fast_v2"])
    p.add_argument("--documents", default=DEFAULT_DOCUMENTS, help="directory of *.jsonl.gz document files")
    p.add_argument("--files", type=int, default=2, help="use the first N files (0: all)")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--ours", default=DEFAULT_OURS)
    p.add_argument("--peer", default=DEFAULT_PEER)
    p.add_argument("--experiment", default="bench")
    p.add_argument("--keep", help="keep the copies and attributes in this directory")
    return p


def main() -> int:
    args = parser().parse_args()
    paths = select_files(args.documents, args.files)
    n_docs = count_documents(paths)
    workdir = args.keep or tempfile.mkdtemp(prefix="tag_bench_")
    try:
        results = run_both(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"dolma tag --taggers {' '.join(args.taggers)} --processes {args.processes}: "
          f"{n_docs} docs in {len(paths)} file(s) of {args.documents}")
    rates = {}
    for label, (seconds, status, tail) in results.items():
        if status != 0:
            print(f"  {label}: FAILED (exit {status})\n{tail}")
            continue
        rates[label] = n_docs / seconds
        print(f"  {label:<12} {seconds:8.1f} s  {rates[label]:10,.0f} docs/s")
    if len(rates) == 2:
        print(f"  ratio ours / dolma 1.2.1: {rates['ours'] / rates['dolma 1.2.1']:.2f}x")
    return 0 if "ours" in rates else 1


if __name__ == "__main__":
    sys.exit(main())
