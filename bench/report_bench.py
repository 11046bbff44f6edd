"""`dolma report` memory as the input grows: the demo corpus against 10x the demo corpus.

    python bench/report_bench.py [--work DIR] [--factor 10] [--processes 2] [--json OUT]

The demo corpus (`python -m dolma_pipeline.demo_data`, built once under --work) and a copy of it with
every document repeated `--factor` times under new ids (`<id>-r<k>`) each go through the same
`dolma pipeline run` (tag: char_length_v1, whitespace_tokenizer_v1, random_number_v1,
pii_regex_with_counts_fast_v2; mix: three rules, PII masks), then `dolma report --workdir`, which is
timed and watched: the peak RSS of its process tree, sampled every 0.2 s with psutil. The report keeps
fixed-size sketches (dolma_pipeline/sketches.py: log histograms, bottom-k samples; mixers/evidence.py)
instead of every score, so its peak should stay about flat while the input grows `--factor` times.
Printed: documents, attribute rows read, wall seconds and peak RSS of both runs, and the ratios. The
load average is printed too (the machine may be shared: the wall times are not the point here).
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
import tempfile
import time

import orjson
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))

from scale_bench import RssMonitor, dolma_command, load_average  # noqa: E402

TAGGERS = ["char_length_v1", "whitespace_tokenizer_v1", "random_number_v1", "pii_regex_with_counts_fast_v2"]
EXP = "bench"


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": REPO, "DOLMA_NO_PROGRESS": "1", "RAY_AUTH_MODE": "disabled"}


def build_demo(corpus: str) -> None:
    """The demo corpus under corpus/documents (kept when already built)."""
    if glob.glob(os.path.join(corpus, "documents", "*", "*.jsonl.gz")):
        return
    subprocess.run([sys.executable, "-m", "dolma_pipeline.demo_data", "--output", corpus], env=env(), check=True,
                   cwd=REPO, capture_output=True)


def replicate(source: str, target: str, factor: int) -> int:
    """Every document file of `source` copied `factor` times into `target` (file `<name>-rK`), ids made
    unique (`<id>-rK`); returns the number of documents written."""
    shutil.rmtree(target, ignore_errors=True)
    docs = 0
    for path in sorted(glob.glob(os.path.join(source, "documents", "*", "*.jsonl.gz"))):
        rel = os.path.relpath(path, source)
        with gzip.open(path) as fh:
            rows = [orjson.loads(line) for line in fh if line.strip()]
        os.makedirs(os.path.dirname(os.path.join(target, rel)), exist_ok=True)
        for k in range(factor):
            out_path = os.path.join(target, rel).replace(".jsonl.gz", f"-r{k}.jsonl.gz")
            with gzip.open(out_path, "wb", compresslevel=1) as out:
                for row in rows:
                    out.write(orjson.dumps({**row, "id": f"{row['id']}-r{k}"}) + b"\n")
            docs += len(rows)
    return docs


def pipeline_config(workdir: str, corpus: str, processes: int) -> dict:
    pii = f"{EXP}__pii_regex_with_counts_fast_v2__"
    return {"workdir": workdir, "processes": processes, "stages": [
        {"name": "tag", "command": "tag", "inputs": [f"{corpus}/documents"], "output": f"{corpus}/attributes/{EXP}",
         "config": {"documents": [f"{corpus}/documents/**/*.jsonl.gz"], "experiment": EXP, "taggers": TAGGERS}},
        {"name": "mix", "command": "mix", "inputs": [f"{corpus}/attributes/{EXP}"], "output": f"{workdir}/mixed",
         "config": {"streams": [{
             "name": "train",
             "documents": [f"{corpus}/documents/**/*.jsonl.gz"],
             "attributes": [EXP],
             "rules": [
                 {"attribute": f"{EXP}__char_length_v1__length", "op": "lt", "value": 300, "name": "short"},
                 {"attribute": f"{pii}doc_count", "op": "gt", "value": 5, "name": "PII doc_count > 5"},
                 {"attribute": f"{EXP}__random_number_v1__random", "op": "ge", "value": 0.9, "name": "held out"},
             ],
             "span_replacement": [{"span": f"$.attributes.{pii}{kind}", "min_score": 0.5,
                                   "replacement": f" |||{kind}||| "} for kind in ("EMAIL_ADDRESS", "IP_ADDRESS")],
             "output": {"path": f"{workdir}/mixed/train", "max_size_in_bytes": 50_000_000,
                        "discard_fields": ["attributes"]},
         }]}},
    ]}


def attribute_rows(corpus: str) -> int:
    total = 0
    for path in glob.glob(os.path.join(corpus, "attributes", "**", "*.jsonl.gz"), recursive=True):
        with gzip.open(path) as fh:
            total += sum(1 for _ in fh)
    return total


def run_one(label: str, corpus: str, workdir: str, processes: int) -> dict:
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.rmtree(os.path.join(corpus, "attributes"), ignore_errors=True)
    os.makedirs(workdir)
    config = os.path.join(workdir, "pipeline.yaml")
    with open(config, "w") as fh:
        yaml.safe_dump(pipeline_config(workdir, corpus, processes), fh)
    start = time.perf_counter()
    proc = subprocess.run([*dolma_command(), "pipeline", "run", config], env=env(), cwd=REPO, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{label}: dolma pipeline run failed:\n{proc.stderr[-3000:]}")
    pipeline_s = time.perf_counter() - start
    report_dir = os.path.join(workdir, "report")
    start = time.perf_counter()
    with open(os.path.join(workdir, "report.log"), "w") as log:
        report = subprocess.Popen([*dolma_command(), "report", "--workdir", workdir, "--output", report_dir],
                                  env=env(), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        monitor = RssMonitor(report.pid)
        code = report.wait()
        monitor.stop()
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"{label}: dolma report failed (exit {code}); see {workdir}/report.log")
    docs = sum(1 for p in glob.glob(os.path.join(corpus, "documents", "**", "*.jsonl.gz"), recursive=True)
               for _ in gzip.open(p))
    peak = max(monitor.driver_peak, monitor.worker_peak)
    row = {"label": label, "documents": docs, "attribute_rows": attribute_rows(corpus),
           "pipeline_s": round(pipeline_s, 1), "report_wall_s": round(wall, 1),
           "report_peak_rss_mb": round(peak / 2**20, 1), "load": load_average(),
           "report_html_bytes": sum(os.path.getsize(p) for p in glob.glob(os.path.join(report_dir, "*.html")))}
    print(f"  {label:<4} {docs:>8,} docs {row['attribute_rows']:>8,} attribute rows: pipeline {pipeline_s:6.1f} s; "
          f"report {wall:6.1f} s, peak RSS {row['report_peak_rss_mb']:7.1f} MB (load {row['load']})", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=None, help="scratch directory (default: a temporary one, removed)")
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="report_bench_")
    try:
        base = os.path.join(work, "demo")
        build_demo(base)
        big = os.path.join(work, f"demo_x{args.factor}")
        replicate(base, big, args.factor)
        print(f"dolma report on the demo corpus and on {args.factor}x it; load {load_average()}", flush=True)
        small_row = run_one("1x", base, os.path.join(work, "run_1x"), args.processes)
        big_row = run_one(f"{args.factor}x", big, os.path.join(work, f"run_{args.factor}x"), args.processes)
        growth = big_row["documents"] / small_row["documents"]
        ratio = big_row["report_peak_rss_mb"] / small_row["report_peak_rss_mb"]
        print(f"  input grew {growth:.1f}x; report peak RSS {small_row['report_peak_rss_mb']:.0f} MB -> "
              f"{big_row['report_peak_rss_mb']:.0f} MB: {ratio:.2f}x; report time "
              f"{big_row['report_wall_s'] / small_row['report_wall_s']:.1f}x", flush=True)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": [small_row, big_row],
                           "input_growth": growth, "peak_rss_ratio": ratio}, fh, indent=2)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
