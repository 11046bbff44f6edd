"""The whole data chain at the largest corpus scale, run as a user runs it, with per-stage speed and memory.

    python bench/scale_bench.py [--corpus /tmp/dolma-corpus/dolma] [--sets en,code,...] [--processes 2]
                                [--files-per-set N] [--work DIR] [--big-gb 1.0]
                                [--big-taggers char_length_v1] [--skip-chain] [--skip-big] [--json OUT]

1. The chain over every set of the corpus `../shared/corpus/build_corpus.py` builds (all of
   /tmp/dolma-corpus/dolma/*/documents): `dolma tag` (ft_lang_id_en_doc_v2, gopher_v1, c4_v2,
   pii_regex_with_counts_fast_v2) → `dolma dedupe` exact paragraphs (configs/dedupe/paragraphs.yaml) →
   `dolma dedupe` MinHash (configs/dedupe/minhash.yaml) → `dolma mix` (English, PII and Gopher rules, one
   copy per near-duplicate cluster, PII masked, duplicate paragraphs cut) → `dolma tokenize`
   (configs/tokenize/olmo.yaml). Each is the `dolma` command a user types, in a fresh process, with the
   default executor (`auto`: the local process pool on one machine) and `--processes P`.
2. One `dolma tag` over a single file of >= 1 GB of uncompressed JSON lines (corpus documents repeated
   with new ids until the size is reached; built once and kept under --work), to show that a worker's
   memory is bounded by the batch, not by the file.

Per stage it prints the input documents and MB of text, wall seconds, docs/s, MB/s, the peak RSS of the
largest worker process and of the driver (the command's own process), sampled every 0.2 s over the
process tree with psutil, and the load average (the machine may be shared: the figures are wall-clock).
No peer runs here: the per-stage comparisons with dolma and datatrove are bench/{tag,dedupe,mix,tokenize}_bench.py.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import orjson
import psutil
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CORPUS = "/tmp/dolma-corpus/dolma"
EXP = "scale"
TAGGERS = ["ft_lang_id_en_doc_v2", "gopher_v1", "c4_v2", "pii_regex_with_counts_fast_v2"]
RSS_LIMIT_BYTES = 1.5 * 2**30  # the big-file check: a worker must stay under this


def load_average() -> str:
    """The 1, 5 and 15 minute load averages and the CPU count: the context of every figure."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} CPUs"


def dolma_command() -> list[str]:
    """The `dolma` entry point of this interpreter's environment (running this checkout: PYTHONPATH)."""
    script = os.path.join(os.path.dirname(sys.executable), "dolma")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "dolma_pipeline.cli"]


class RssMonitor:
    """Samples the RSS of a process and of all its descendants until stopped; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval = pid, interval
        self.driver_peak = 0
        self.worker_peak = 0
        self.workers_seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                self.driver_peak = max(self.driver_peak, root.memory_info().rss)
                children = root.children(recursive=True)
            except psutil.NoSuchProcess:
                return
            for child in children:
                try:
                    self.worker_peak = max(self.worker_peak, child.memory_info().rss)
                    self.workers_seen.add(child.pid)
                except psutil.NoSuchProcess:
                    pass
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def count_documents(patterns: list[str]) -> tuple[int, float]:
    """(documents, MB of UTF-8 text) of the JSON-lines files matching `patterns`."""
    docs, total = 0, 0
    for pattern in patterns:
        for path in sorted(glob.glob(pattern, recursive=True)):
            with gzip.open(path) if path.endswith(".gz") else open(path, "rb") as fh:
                for line in fh:
                    total += len(orjson.loads(line)["text"].encode("utf-8", "surrogatepass"))
                    docs += 1
    return docs, total / 1e6


def run_stage(name: str, argv: list[str], docs: int, mb: float, log_dir: str) -> dict:
    """Run one `dolma` command in a fresh process, watching its memory; fail loudly if it fails."""
    env = {**os.environ, "PYTHONPATH": REPO, "DOLMA_NO_PROGRESS": "1", "RAY_AUTH_MODE": "disabled"}
    os.makedirs(log_dir, exist_ok=True)
    log_path = os.path.join(log_dir, "".join(c if c.isalnum() else "_" for c in name) + ".log")
    load_before = load_average()
    with open(log_path, "w") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        monitor = RssMonitor(proc.pid)
        code = proc.wait()
        wall = time.perf_counter() - start
        monitor.stop()
    if code != 0:
        with open(log_path) as fh:
            raise SystemExit(f"{name} failed (exit {code}): {' '.join(argv)}\n{fh.read()[-3000:]}")
    row = {"stage": name, "documents": docs, "mb": round(mb, 1), "wall_s": round(wall, 1),
           "docs_per_s": round(docs / wall, 1), "mb_per_s": round(mb / wall, 2),
           "peak_worker_rss_mb": round(monitor.worker_peak / 2**20), "peak_driver_rss_mb": round(monitor.driver_peak / 2**20),
           "worker_processes_seen": len(monitor.workers_seen), "load_before": load_before, "load_after": load_average()}
    print(f"  {name:<16} {docs:>9,} docs {mb:8.1f} MB {wall:7.1f} s {row['docs_per_s']:>9,.0f} docs/s "
          f"{row['mb_per_s']:6.2f} MB/s  worker peak {row['peak_worker_rss_mb']:>5,} MB  driver peak "
          f"{row['peak_driver_rss_mb']:>5,} MB  (load {row['load_after']})", flush=True)
    return row


def stage_corpus(corpus: str, sets: list[str], root: str, files_per_set: int = 0) -> list[str]:
    """Link every set's document files (the first `files_per_set` of each, 0: all) into
    root/documents/<set>/; returns the sets used."""
    shutil.rmtree(root, ignore_errors=True)
    used = []
    for name in sets:
        files = sorted(glob.glob(os.path.join(corpus, name, "documents", "*.jsonl*")))
        files = files[:files_per_set] if files_per_set else files
        if not files:
            continue
        os.makedirs(os.path.join(root, "documents", name))
        for path in files:
            os.symlink(os.path.abspath(path), os.path.join(root, "documents", name, os.path.basename(path)))
        used.append(name)
    if not used:
        raise SystemExit(f"no documents under {corpus}/*/documents: build the corpus first "
                         "(../shared/corpus/build_corpus.py)")
    return used


def mix_config(root: str, processes: int) -> dict:
    pii = f"{EXP}__pii_regex_with_counts_fast_v2__"
    gopher = f"{EXP}__gopher_v1__"
    return {"processes": processes, "streams": [{
        "name": "scale",
        "documents": [f"{root}/documents/**/*.jsonl.gz"],
        "attributes": [EXP, "dedupe_para", "minhash"],
        "dedupe": ["minhash__minhash_v1__duplicate"],
        "rules": [
            {"attribute": f"{EXP}__ft_lang_id_en_doc_v2__en", "op": "lt", "value": 0.5, "name": "not English"},
            {"attribute": f"{pii}doc_count", "op": "gt", "value": 5, "name": "PII doc_count > 5"},
            {"attribute": f"{gopher}word_count", "op": "lt", "value": 50, "name": "gopher: < 50 words"},
            {"attribute": f"{gopher}symbol_to_word_ratio", "op": "gt", "value": 0.1, "name": "gopher: symbols"},
        ],
        "span_replacement": [
            *({"span": f"$.attributes.{pii}{kind}", "min_score": 0.5, "replacement": f" |||{kind}||| "}
              for kind in ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS")),
            {"span": "$.attributes.bff_duplicate_paragraph_spans", "min_score": 0.5, "replacement": ""},
        ],
        "output": {"path": f"{root}/mixed", "max_size_in_bytes": 100_000_000, "discard_fields": ["attributes"]},
    }]}


def bench_chain(args, work: str) -> list[dict]:
    root = os.path.join(work, "chain")
    sets = stage_corpus(args.corpus, args.sets or sorted(os.listdir(args.corpus)), root, args.files_per_set)
    documents = f"{root}/documents/**/*.jsonl.gz"
    docs, mb = count_documents([documents])
    some = f" (first {args.files_per_set} file(s) of each)" if args.files_per_set else ""
    print(f"Chain over {', '.join(sets)}{some}: {docs:,} documents, {mb:.1f} MB of text, {args.processes} processes, "
          f"default executor; load {load_average()}", flush=True)
    dolma, procs = dolma_command(), ["--processes", str(args.processes)]
    logs = os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    rows = [run_stage("tag", [*dolma, "tag", "--documents", documents, "--experiment", EXP, "--taggers", *TAGGERS,
                              *procs], docs, mb, logs)]
    rows.append(run_stage("dedupe paragraphs", [*dolma, "-c", os.path.join(REPO, "configs/dedupe/paragraphs.yaml"),
                                                "dedupe", "--documents", documents, *procs], docs, mb, logs))
    rows.append(run_stage("dedupe minhash", [*dolma, "-c", os.path.join(REPO, "configs/dedupe/minhash.yaml"),
                                             "dedupe", "--documents", documents, *procs], docs, mb, logs))
    config = os.path.join(work, "mix.yaml")
    with open(config, "w") as fh:
        yaml.safe_dump(mix_config(root, args.processes), fh)
    rows.append(run_stage("mix", [*dolma, "-c", config, "mix", *procs], docs, mb, logs))
    mixed = f"{root}/mixed/*.jsonl.gz"
    mixed_docs, mixed_mb = count_documents([mixed])
    rows.append(run_stage("tokenize", [*dolma, "-c", os.path.join(REPO, "configs/tokenize/olmo.yaml"), "tokenize",
                                       "--documents", mixed, "--destination", f"{root}/tokens", *procs],
                          mixed_docs, mixed_mb, logs))
    return rows


def build_big_file(corpus: str, path: str, target_bytes: int) -> tuple[int, int]:
    """Corpus documents repeated (ids made unique: `<id>-r<round>`) into one .jsonl.gz of at least
    `target_bytes` uncompressed; kept and reused when already there. Returns (documents, bytes)."""
    meta = path + ".json"
    if os.path.exists(path) and os.path.exists(meta):
        with open(meta) as fh:
            info = json.load(fh)
        if info.get("target_bytes") == target_bytes:
            return info["documents"], info["bytes"]
    sources = sorted(glob.glob(os.path.join(corpus, "*", "documents", "*.jsonl.gz")))
    written = docs = 0
    tmp = path + ".tmp"
    with gzip.open(tmp, "wb", compresslevel=1) as out:
        round_ = 0
        while written < target_bytes:
            for source in sources:
                with gzip.open(source) as fh:
                    lines = []
                    for line in fh:
                        doc = orjson.loads(line)
                        doc["id"] = f"{doc['id']}-r{round_}"
                        lines.append(orjson.dumps(doc))
                blob = b"\n".join(lines) + b"\n"
                out.write(blob)
                written += len(blob)
                docs += len(lines)
                if written >= target_bytes:
                    break
            round_ += 1
    os.replace(tmp, path)
    with open(meta, "w") as fh:
        json.dump({"target_bytes": target_bytes, "documents": docs, "bytes": written}, fh)
    return docs, written


def bench_big_file(args, work: str) -> dict:
    big_dir = os.path.join(work, "big", "documents")
    os.makedirs(big_dir, exist_ok=True)
    path = os.path.join(big_dir, "big.jsonl.gz")
    start = time.perf_counter()
    docs, size = build_big_file(args.corpus, path, int(args.big_gb * 1e9))
    print(f"One file: {path}: {docs:,} documents, {size / 1e9:.2f} GB uncompressed, "
          f"{os.path.getsize(path) / 1e9:.2f} GB gzipped (ready in {time.perf_counter() - start:.0f} s)", flush=True)
    shutil.rmtree(os.path.join(work, "big", "attributes"), ignore_errors=True)
    row = run_stage(f"tag 1 file ({'+'.join(args.big_taggers)})",
                    [*dolma_command(), "tag", "--documents", path, "--experiment", "big", "--taggers",
                     *args.big_taggers, "--processes", str(args.processes)], docs, size / 1e6,
                    os.path.join(work, "logs"))
    row["file_bytes_uncompressed"] = size
    row["under_limit"] = row["peak_worker_rss_mb"] * 2**20 < RSS_LIMIT_BYTES
    print(f"  peak worker RSS {row['peak_worker_rss_mb']:,} MB: "
          f"{'under' if row['under_limit'] else 'OVER'} the 1.5 GB limit", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=DEFAULT_CORPUS)
    parser.add_argument("--sets", type=lambda s: [x for x in s.split(",") if x], default=None,
                        help="comma-separated sets (default: all under --corpus)")
    parser.add_argument("--files-per-set", type=int, default=0, help="only the first N files of each set (0: all)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--work", default=None, help="scratch directory (default: a temporary one, removed)")
    parser.add_argument("--big-gb", type=float, default=1.0, help="uncompressed size of the one-file test")
    parser.add_argument("--big-taggers", nargs="+", default=["char_length_v1"])
    parser.add_argument("--skip-chain", action="store_true")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import tempfile

    work = args.work or tempfile.mkdtemp(prefix="scale_bench_")
    results: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "processes": args.processes,
                     "cpus": os.cpu_count()}
    try:
        if not args.skip_big:
            results["big_file"] = bench_big_file(args, work)
        if not args.skip_chain:
            results["chain"] = bench_chain(args, work)
    finally:
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(results, fh, indent=2)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    if not args.skip_big and not results["big_file"]["under_limit"]:
        raise SystemExit("a worker went over 1.5 GB on the one-file test")


if __name__ == "__main__":
    main()
