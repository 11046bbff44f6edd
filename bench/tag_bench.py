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
DEFAULT_PEER = os.path.join(os.environ.get("PEERS", "/tmp/peers"), "dolma-venv", "bin", "dolma")
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
    seconds, _, status, tail = run_tag_timed(executable, documents_glob, taggers,
                                             ["--processes", str(processes)], experiment)
    return seconds, status, tail


def run_tag_timed(executable: str, documents_glob: str, taggers: list[str], mode_args: list[str],
                  experiment: str, env: dict[str, str] | None = None) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds of the command and its waited-for children, exit status, output tail).

    `env`: the command's whole environment (default: this one, offline, quiet, `tokenizers` single-threaded)."""
    command = [executable, "tag", "--documents", documents_glob, "--experiment", experiment, "--taggers", *taggers,
               *mode_args]
    if env is None:
        env = dict(os.environ, HF_HUB_OFFLINE="1", DOLMA_NO_PROGRESS="1", RAY_AUTH_MODE="disabled",
                   TOKENIZERS_PARALLELISM="false")
    with tempfile.TemporaryFile("w+") as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        tail = output.read()[-2000:]
    return seconds, usage.ru_utime + usage.ru_stime, process.returncode, tail


def run_both(args: argparse.Namespace, workdir: str) -> dict[str, list[tuple[float, float, int, str]]]:
    """Each tool `--repeat` times, alternating, on fresh copies; results per tool."""
    paths = select_files(args.documents, args.files)
    results: dict[str, list[tuple[float, float, int, str]]] = {}
    tools = [("ours", args.ours)]
    if os.path.exists(args.peer):
        tools.append(("dolma 1.2.1", args.peer))
    else:
        print(f"peer {args.peer} not found: skipping dolma 1.2.1 (install with ../shared/bench/setup_peers.sh)")
    for attempt in range(args.repeat):
        for label, executable in tools:
            root = os.path.join(workdir, f"{label.split()[0]}-{attempt}")
            documents_glob = make_copy(paths, root)
            # Serial: one process without a worker pool (`--debug` here, `--processes 1` for Dolma).
            mode_args = (["--debug"] if label == "ours" else ["--processes", "1"]) if args.serial else \
                ["--processes", str(args.processes)] + (["--executor", args.executor] if label == "ours" else [])
            results.setdefault(label, []).append(run_tag_timed(
                executable, documents_glob, args.taggers, mode_args, args.experiment))
            shutil.rmtree(root, ignore_errors=True)
    return results


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--taggers", nargs="+", default=["gopher_v1", "c4_v2", "pii_regex_with_counts_fast_v2"])
    p.add_argument("--documents", default=DEFAULT_DOCUMENTS, help="directory of *.jsonl.gz document files")
    p.add_argument("--files", type=int, default=2, help="use the first N files (0: all)")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--executor", choices=["auto", "ray", "local", "serial"], default="auto",
                   help="our executor (auto, the default command: forked processes on one machine; ray: an "
                        "embedded cluster, start-up included)")
    p.add_argument("--ours", default=DEFAULT_OURS)
    p.add_argument("--peer", default=DEFAULT_PEER)
    p.add_argument("--experiment", default="bench")
    p.add_argument("--repeat", type=int, default=1, help="alternate the tools this many times; report the best")
    p.add_argument("--serial", action="store_true",
                   help="one process without a pool (ours --debug, dolma --processes 1): compares CPU cost")
    p.add_argument("--keep", help="work in this directory instead of a temporary one")
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
    mode = "serial (ours --debug, dolma --processes 1)" if args.serial else \
        f"--processes {args.processes} (ours: --executor {args.executor})"
    print(f"dolma tag --taggers {' '.join(args.taggers)} {mode}: "
          f"{n_docs} docs in {len(paths)} file(s) of {args.documents}; best of {args.repeat}")
    rates, cpu_rates = {}, {}
    for label, runs in results.items():
        failed = [r for r in runs if r[2] != 0]
        if failed:
            print(f"  {label}: FAILED (exit {failed[0][2]})\n{failed[0][3]}")
            continue
        seconds = min(r[0] for r in runs)
        cpu = min(r[1] for r in runs)
        rates[label], cpu_rates[label] = n_docs / seconds, n_docs / cpu
        print(f"  {label:<12} {seconds:8.1f} s wall {rates[label]:9,.0f} docs/s | {cpu:8.1f} CPU-s "
              f"{cpu_rates[label]:9,.0f} docs per CPU-second (waited-for processes only)")
    if len(rates) == 2:
        print(f"  ratio ours / dolma 1.2.1: {rates['ours'] / rates['dolma 1.2.1']:.2f}x docs/s (wall)"
              + (f", {cpu_rates['ours'] / cpu_rates['dolma 1.2.1']:.2f}x docs per CPU-second" if args.serial else ""))
    return 0 if "ours" in rates else 1


if __name__ == "__main__":
    sys.exit(main())
