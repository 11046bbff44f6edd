"""Benchmark `dolma dedupe`: MinHash against datatrove's four stages, exact paragraphs against dolma 1.2.1.

    python bench/dedupe_bench.py [--minhash-documents DIR] [--paragraph-documents DIR] [--processes 2] [--repeat 3]
                                 [--dt-python PATH] [--dolma PATH] [--json OUT]

Same input files, same machine, same run:
- MinHash, CPU-seconds per MB of UTF-8 text. Ours: the whole `dolma dedupe` MinHash run (sign, shuffle,
  verify, components, attribute files) in this process (`--debug`, serial), timed with
  `time.process_time()`; datatrove 0.10.1: its four stages (`MinhashDedupSignature`, `MinhashDedupBuckets`,
  `MinhashDedupCluster`, `MinhashDedupFilter`, default `MinhashConfig()`: word 5-grams, 14 x 8) with
  `LocalPipelineExecutor(workers=1)`, so every task runs in the calling process, timed the same way.
  Our run on Ray with P processes is also timed (wall seconds, and the CPU-seconds its workers report).
- Exact paragraph dedupe, docs/s (wall, fresh process, P processes): `dolma dedupe` with
  configs/dedupe/paragraphs.yaml as a user types it (`executor: auto`, the default: the local process
  pool on one machine), and with `--executors default,ray,local` also on an embedded Ray cluster
  (includes Ray's start-up) or a forced local pool, vs dolma 1.2.1's Rust `dolma dedupe` with a fresh
  Bloom filter (it uses P threads). Rounds alternate ours and dolma's; the load average is printed.

This file also runs under datatrove's own venv (`--datatrove-worker`), so it imports only the standard
library at the top.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MINHASH_DOCS = "/tmp/dolma-corpus/dolma/dedup/documents"
DEFAULT_PARAGRAPH_DOCS = "/tmp/dolma-corpus/dolma/en/documents"
PEERS = os.environ.get("PEERS", "/tmp/peers")  # the peers' venvs (../shared/bench/setup_peers.sh)
DEFAULT_DT_PYTHON = os.path.join(PEERS, "dt-venv", "bin", "python")
DEFAULT_DOLMA = os.path.join(PEERS, "dolma-venv", "bin", "dolma")


# ------------------------------------------------------------------------------------- datatrove (its venv)
def datatrove_worker(documents: str, work: str, result: str) -> None:
    """Run datatrove's four MinHash stages in this process; write {cpu_seconds, clusters: {id: cluster}}."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    files = sorted(glob.glob(os.path.join(documents, "*.jsonl*")))
    config = MinhashConfig()
    tasks = len(files)

    def reader():
        return JsonlReader(documents, glob_pattern="*.jsonl*")

    stages = [
        dict(pipeline=[reader(), MinhashDedupSignature(f"{work}/signatures", config=config)], tasks=tasks),
        dict(pipeline=[MinhashDedupBuckets(f"{work}/signatures", f"{work}/buckets", config=config)],
             tasks=config.num_buckets),
        dict(pipeline=[MinhashDedupCluster(f"{work}/buckets", f"{work}/remove_ids", config=config,
                                           save_cluster_id=True)], tasks=1),
        dict(pipeline=[reader(), MinhashDedupFilter(f"{work}/remove_ids", load_cluster_ids=True,
                                                    exclusion_writer=JsonlWriter(f"{work}/removed")),
                       JsonlWriter(f"{work}/kept")], tasks=tasks),
    ]
    seconds = []
    for i, stage in enumerate(stages):
        start = time.process_time()
        LocalPipelineExecutor(**stage, workers=1, logging_dir=f"{work}/logs/{i}").run()
        seconds.append(time.process_time() - start)
    clusters = {}
    import gzip

    for path in glob.glob(f"{work}/kept/*") + glob.glob(f"{work}/removed/*"):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt") as fh:
            for line in fh:
                doc = json.loads(line)
                clusters[doc["id"]] = doc["metadata"].get("minhash_cluster_id", -1)
    with open(result, "w") as fh:
        json.dump({"cpu_seconds": sum(seconds), "stage_cpu_seconds": seconds, "clusters": clusters}, fh)


def run_datatrove(dt_python: str, documents: str, work: str) -> dict | None:
    """datatrove's MinHash on `documents` through its venv, or None (with a message) if it is absent."""
    if not os.path.exists(dt_python):
        print(f"datatrove: skipped ({dt_python} not found; run ../shared/bench/setup_peers.sh)")
        return None
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    result = os.path.join(work, "result.json")
    proc = subprocess.run([dt_python, os.path.abspath(__file__), "--datatrove-worker", documents, work, result],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"datatrove: failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        return None
    with open(result) as fh:
        return json.load(fh)


# ---------------------------------------------------------------------------------------------- ours
def stage_corpus(documents: str, root: str) -> str:
    """Link the input files into `root/documents` (our attributes then go to `root/attributes`)."""
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "documents"))
    for path in sorted(glob.glob(os.path.join(documents, "*.jsonl*"))):
        os.symlink(os.path.abspath(path), os.path.join(root, "documents", os.path.basename(path)))
    return os.path.join(root, "documents")


def run_ours_in_process(documents: str, argv: list[str], config_file: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of a serial `dolma dedupe` run in this process."""
    sys.path.insert(0, REPO)
    os.environ.setdefault("DOLMA_NO_PROGRESS", "1")
    import datasketch  # noqa: F401  (imported before the clock starts, as datatrove's modules are)

    from dolma_pipeline.config import load_config
    from dolma_pipeline.dedupe import command

    config = load_config(command.Config, config_file, ["--documents", documents, "--debug", *argv])
    cpu, wall = time.process_time(), time.perf_counter()
    command.run(config)
    return time.process_time() - cpu, time.perf_counter() - wall


def children_cpu() -> float:
    """CPU seconds of the reaped child processes (and theirs) so far."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_ours_cli(documents: str, argv: list[str], config_file: str) -> tuple[float, dict]:
    """Wall seconds of `dolma dedupe` in a fresh process, and its summary (plus `process_cpu_s`: the CPU
    of that process and the children it reaped: all of it with `executor: local`, not Ray's workers)."""
    env = {**os.environ, "DOLMA_NO_PROGRESS": "1", "RAY_AUTH_MODE": "disabled"}
    start, cpu = time.perf_counter(), children_cpu()
    proc = subprocess.run([sys.executable, "-m", "dolma_pipeline.cli", "-c", config_file, "dedupe",
                           "--documents", documents, *argv], cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    cpu = children_cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"dolma dedupe failed:\n{proc.stderr[-3000:]}")
    root = os.path.dirname(documents)
    summaries = glob.glob(os.path.join(root, "attributes", "*", "dolma_dedupe.summary.json"))
    with open(summaries[0]) as fh:
        summary = json.load(fh)["summary"]
    summary["process_cpu_s"] = cpu
    return wall, summary


def text_megabytes(documents: str) -> tuple[float, int]:
    import gzip

    import orjson

    total, docs = 0, 0
    for path in sorted(glob.glob(os.path.join(documents, "*.jsonl*"))):
        with gzip.open(path) if path.endswith(".gz") else open(path, "rb") as fh:
            for line in fh:
                total += len(orjson.loads(line)["text"].encode("utf-8", "surrogatepass"))
                docs += 1
    return total / 1e6, docs


def bench_minhash(args, work: str) -> dict:
    config = os.path.join(REPO, "configs", "dedupe", "minhash.yaml")
    mb, docs = text_megabytes(args.minhash_documents)
    print(f"MinHash input: {args.minhash_documents}: {docs:,} documents, {mb:.1f} MB of text")
    ours_docs = stage_corpus(args.minhash_documents, os.path.join(work, "ours_minhash"))
    cpu, wall = run_ours_in_process(ours_docs, [], config)
    ray_docs = stage_corpus(args.minhash_documents, os.path.join(work, "ours_minhash_ray"))
    ray_wall, summary = run_ours_cli(ray_docs, ["--processes", str(args.processes)], config)
    ray_cpu = summary["extra"].get("cpu_seconds", 0.0)
    out = {"mb": mb, "documents": docs, "ours_cpu_s": cpu, "ours_cpu_s_per_mb": cpu / mb,
           "ours_ray_wall_s": ray_wall, "ours_ray_worker_cpu_s": ray_cpu}
    print(f"  ours (serial, in process):  {cpu:7.1f} CPU-s  = {cpu / mb:.3f} CPU-s/MB ({mb / cpu:.2f} MB per CPU-s)")
    print(f"  ours (Ray, {args.processes} processes):    {ray_wall:7.1f} s wall, workers {ray_cpu:.1f} CPU-s "
          f"({ray_cpu / mb:.3f} CPU-s/MB, Ray start-up and driver not included)")
    peer = run_datatrove(args.dt_python, os.path.abspath(args.minhash_documents), os.path.join(work, "datatrove"))
    if peer:
        dt = peer["cpu_seconds"]
        out.update(datatrove_cpu_s=dt, datatrove_cpu_s_per_mb=dt / mb, speedup=dt / cpu)
        stages = ", ".join(f"{s:.1f}" for s in peer["stage_cpu_seconds"])
        print(f"  datatrove 4 stages:         {dt:7.1f} CPU-s  = {dt / mb:.3f} CPU-s/MB ({mb / dt:.2f} MB per CPU-s;"
              f" stages {stages})")
        print(f"  ratio (datatrove / ours CPU-s): {dt / cpu:.2f}x")
    return out


def bench_paragraphs(args, work: str) -> dict:
    """Rounds of (ours with each executor asked for, dolma), interleaved so that a change in the machine's
    load hits all alike; the ratios use the median wall times."""
    import statistics

    config = os.path.join(REPO, "configs", "dedupe", "paragraphs.yaml")
    print(f"Exact paragraph dedupe: {args.paragraph_documents}, {args.processes} processes, "
          f"{args.repeat} round(s); load average {load_average()}")
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    runs: dict[str, list[tuple[float, float]]] = {**{e: [] for e in executors}, "dolma": []}
    docs = 0
    have_dolma = os.path.exists(args.dolma)
    if not have_dolma:
        print(f"  dolma 1.2.1: skipped ({args.dolma} not found; run ../shared/bench/setup_peers.sh)")
    for _ in range(args.repeat):
        for executor in executors:
            docs_dir = stage_corpus(args.paragraph_documents, os.path.join(work, f"ours_para_{executor}"))
            chosen = [] if executor == "default" else ["--executor", executor]
            wall, summary = run_ours_cli(docs_dir, ["--processes", str(args.processes), *chosen], config)
            docs = summary["documents"]
            runs[executor].append((wall, summary["process_cpu_s"]))
            print(f"  ours ({executor + ')':<8} {wall:6.1f} s wall  {docs / wall:8,.0f} docs/s (fresh process; "
                  f"stages {summary['seconds']:.1f} s; workers {summary['extra'].get('cpu_seconds', 0):.1f} CPU-s, "
                  f"process tree {summary['process_cpu_s']:.1f} CPU-s; ran {summary.get('executor', {}).get('kind', '?')}; "
                  f"load {load_average()})")
        if have_dolma:
            peer_wall, peer_cpu = run_dolma_paragraphs(args, work)
            runs["dolma"].append((peer_wall, peer_cpu))
            print(f"  dolma 1.2.1:  {peer_wall:6.1f} s wall  {docs / peer_wall:8,.0f} docs/s (Rust, fresh Bloom "
                  f"filter; process tree {peer_cpu:.1f} CPU-s; load {load_average()})")
    median = {k: statistics.median(w for w, _ in v) for k, v in runs.items() if v}
    out: dict = {"documents": docs, "runs": runs, "median_wall_s": median, "load_average": load_average()}
    if have_dolma:
        for executor in executors:
            out[f"ratio_{executor}"] = median["dolma"] / median[executor]
            print(f"  median docs/s: ours ({executor}) {docs / median[executor]:,.0f}, dolma "
                  f"{docs / median['dolma']:,.0f}: ratio {out[f'ratio_{executor}']:.2f}x (load {load_average()})")
        ours_spans = count_spans(os.path.join(work, f"ours_para_{executors[0]}"), "dedupe_para", "bff_duplicate_paragraph_spans")
        dolma_spans = count_spans(os.path.join(work, "dolma_para"), "dedupe_para", "bff_duplicate_paragraph_spans")
        out.update(ours_flagged_spans=ours_spans, dolma_flagged_spans=dolma_spans)
        print(f"  duplicate paragraph spans flagged: ours {ours_spans:,}, dolma {dolma_spans:,} "
              "(dolma's Bloom filter adds false positives)")
    return out


def run_dolma_paragraphs(args, work: str) -> tuple[float, float]:
    """(wall, CPU of the process tree) of dolma 1.2.1's paragraph dedupe with a fresh Bloom filter."""
    peer_dir = stage_corpus(args.paragraph_documents, os.path.join(work, "dolma_para"))
    bloom = os.path.join(work, "bloom.bin")
    if os.path.exists(bloom):
        os.remove(bloom)  # a reused filter flags every document as a duplicate
    cmd = [args.dolma, "dedupe", "--documents", f"{peer_dir}/*.jsonl.gz", "--dedupe.name", "dedupe_para",
           "--dedupe.paragraphs.attribute_name", "bff_duplicate_paragraph_spans", "--dedupe.skip_empty",
           "--bloom_filter.file", bloom, "--no-bloom_filter.read_only", "--bloom_filter.estimated_doc_count",
           "1000000", "--bloom_filter.desired_false_positive_rate", "0.0001", "--processes", str(args.processes)]
    start, cpu = time.perf_counter(), children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"dolma 1.2.1 failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
    return wall, cpu


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, and the CPU count: the context of every timing."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} CPUs"


def count_spans(root: str, name: str, attribute: str) -> int:
    import gzip

    import orjson

    total = 0
    for path in glob.glob(os.path.join(root, "attributes", name, "*.jsonl.gz")):
        with gzip.open(path) as fh:
            total += sum(len(orjson.loads(line)["attributes"].get(attribute, [])) for line in fh)
    return total


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--datatrove-worker":
        datatrove_worker(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minhash-documents", default=DEFAULT_MINHASH_DOCS)
    parser.add_argument("--paragraph-documents", default=DEFAULT_PARAGRAPH_DOCS)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of the paragraph benchmark (median)")
    parser.add_argument("--executors", default="default",
                        help="comma-separated: default (no --executor flag), ray, local, serial")
    parser.add_argument("--dt-python", default=DEFAULT_DT_PYTHON)
    parser.add_argument("--dolma", default=DEFAULT_DOLMA)
    parser.add_argument("--only", choices=["minhash", "paragraphs"])
    parser.add_argument("--work", default=None, help="scratch directory (default: a temporary one)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="dedupe_bench_")
    results = {}
    if args.only in (None, "minhash"):
        results["minhash"] = bench_minhash(args, work)
    if args.only in (None, "paragraphs"):
        results["paragraphs"] = bench_paragraphs(args, work)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
