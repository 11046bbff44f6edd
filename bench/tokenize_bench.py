"""Benchmark `dolma tokenize` against dolma 1.2.1's `dolma tokens` and raw `Tokenizer.encode_batch`.

    python bench/tokenize_bench.py [--documents DIR] [--files 4] [--processes 2 [1 ...]] [--executor auto [ray ...]]
        [--encoder cached|tokenizers] [--dolma PATH] [--json OUT]

All figures are for the same input files on the same machine in the same run:
- ours: wall time of `dolma tokenize --processes P --executor E --encoder C` (a fresh process: imports,
  Ray start-up with `ray`, both stages, summary) over the tokens it wrote;
- dolma 1.2.1: wall time of `dolma tokens --processes P` (skipped with a message if its venv is absent);
- raw: `Tokenizer.encode_batch` (and `encode_batch_fast`) over the same stripped texts held in memory, in
  one process, batches of 1024, with the library's default thread pool (all cores) and with one thread.
Token rates all use the same token count (ours: every document's ids plus its EOS), so each ratio is a
ratio of times. "Per process" divides our rate by P, to set against raw with one thread. On a shared,
loaded machine wall times swing; tokens per CPU-second (ours: the driver and the CPU each worker task
measured; Dolma: its process tree; raw: the encoding process) are the steadier comparison.
It then checks, for every document, that our tokens equal Dolma's (keyed by id, src and line).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DOCUMENTS = "/tmp/dolma-corpus/dolma/en/documents"
DEFAULT_DOLMA = os.path.join(os.environ.get("PEERS", "/tmp/peers"), "dolma-venv", "bin", "dolma")
EOS = 50279


def tokenizer_path() -> str:
    sys.path.insert(0, REPO)
    from dolma_pipeline.assets import asset_path

    return asset_path("allenai_gpt-neox-olmo-dolma-v1_5.json")


def load_texts(files: list[str]) -> list[str]:
    import gzip

    import orjson

    texts = []
    for path in files:
        with gzip.open(path, "rb") as fh:
            for line in fh:
                text = orjson.loads(line)["text"].strip()
                if text:
                    texts.append(text)
    return texts


def raw_encode_seconds(files: list[str], tokenizer: str, batch: int = 1024) -> dict[str, float]:
    """Time encode_batch and encode_batch_fast on in-memory texts in this process (its thread pool as set)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer)
    texts = load_texts(files)
    out: dict[str, float] = {}
    for name in ("encode_batch", "encode_batch_fast"):
        encode = getattr(tok, name, None)
        if encode is None:
            continue
        start, cpu = time.perf_counter(), time.process_time()
        tokens = 0
        for i in range(0, len(texts), batch):
            tokens += sum(len(e.ids) for e in encode(texts[i : i + batch], add_special_tokens=False))
        out[name] = time.perf_counter() - start
        out[f"{name}_cpu"] = time.process_time() - cpu
        out["tokens"] = tokens + len(texts)
    return out


def raw_in_subprocess(files: list[str], tokenizer: str, threads: int | None) -> dict[str, float]:
    env = dict(os.environ)
    if threads:
        env["RAYON_NUM_THREADS"] = str(threads)
        env["TOKENIZERS_PARALLELISM"] = "false" if threads == 1 else "true"
    cmd = [sys.executable, __file__, "--raw-only", "--tokenizer", tokenizer, *files]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(cmd: list[str], env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and the descendants it waited for)."""
    cpu = _children_cpu()
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr[-3000:]}")
    return seconds, _children_cpu() - cpu


def read_parts(directory: str) -> dict[tuple[str, str, int], list[int]]:
    """(id, src, loc) -> tokens for every document of a directory of Dolma/OLMo token files (uint16)."""
    import csv
    import gzip

    import numpy as np

    docs = {}
    for npy in sorted(glob.glob(os.path.join(directory, "**", "*.npy"), recursive=True)):
        tokens = np.memmap(npy, dtype=np.uint16, mode="r") if os.path.getsize(npy) else np.zeros(0, np.uint16)
        with gzip.open(npy[: -len(".npy")] + ".csv.gz", "rt", newline="") as fh:
            for start, end, doc_id, src, loc in csv.reader(fh):
                docs[(doc_id, src, int(loc))] = tokens[int(start) : int(end)].tolist()
    return docs


def compare(ours: dict, theirs: dict) -> dict[str, int]:
    common = ours.keys() & theirs.keys()
    mismatched = [k for k in common if ours[k] != theirs[k]]
    for key in mismatched[:5]:
        print(f"  MISMATCH {key}: ours {len(ours[key])} tokens, dolma {len(theirs[key])}", file=sys.stderr)
    return {"documents_compared": len(common), "mismatched": len(mismatched),
            "only_ours": len(ours.keys() - theirs.keys()), "only_dolma": len(theirs.keys() - ours.keys())}


def run_ours(files: list[str], tokenizer: str, processes: int, out: str, executor: str, encoder: str) -> dict:
    wall, driver_cpu = run_timed([sys.executable, "-m", "dolma_pipeline.cli", "tokenize", "--documents", *files,
                                  "--destination", out, "--tokenizer.name_or_path", tokenizer,
                                  "--processes", str(processes), "--executor", executor, "--encoder", encoder],
                                 env=dict(os.environ, DOLMA_NO_PROGRESS="1", PYTHONPATH=REPO))
    with open(os.path.join(out, "dolma_tokenize.summary.json")) as fh:
        summary = json.load(fh)
    # Ray workers are not our children: their CPU is what each task measured (stats in the summary).
    # Run in the driver (--processes 1) or on its forked pool, the driver's reaped CPU already counts them.
    kind = summary["executor"]["kind"] if isinstance(summary.get("executor"), dict) else summary.get("executor")
    cpu = driver_cpu if kind in ("serial", "local") else driver_cpu + sum(summary["worker_cpu_seconds"].values())
    return {"tokens": summary["tokens"], "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
            "driver_cpu_seconds": round(driver_cpu, 2)}


def run_dolma(dolma: str, files: list[str], tokenizer: str, processes: int, work: str) -> tuple[dict, dict]:
    out = os.path.join(work, "dolma")
    wall, cpu = run_timed([dolma, "tokens", "--documents", *files, "--destination", out,
                           "--tokenizer.name_or_path", tokenizer, "--tokenizer.eos_token_id", str(EOS),
                           "--tokenizer.pad_token_id", "1", "--dtype", "uint16", "--processes", str(processes),
                           "--work_dir.input", os.path.join(work, "dolma-wi"),
                           "--work_dir.output", os.path.join(work, "dolma-wo")],
                          env=dict(os.environ, HF_HUB_OFFLINE="1"))
    docs = read_parts(out)
    return {"tokens": sum(map(len, docs.values())), "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2)}, docs


def report_raw(files: list[str], tokenizer: str, tokens: int, figures: dict) -> None:
    for label, threads in (("all threads", None), ("1 thread", 1)):
        raw = raw_in_subprocess(files, tokenizer, threads)
        if raw["tokens"] != tokens:
            print(f"  note: raw token count {raw['tokens']:,} differs from ours {tokens:,}")
        for name in ("encode_batch", "encode_batch_fast"):
            if name in raw:
                key = f"raw_{name}_{'1thread' if threads else 'allthreads'}"
                figures[key] = {"tokens_per_s": round(tokens / raw[name]),
                                "tokens_per_cpu_s": round(tokens / raw[name + "_cpu"])}
                print(f"raw {name:<17} ({label:<11}): {tokens / raw[name]:>10,.0f} tokens/s, "
                      f"{tokens / raw[name + '_cpu']:>10,.0f} tokens per CPU-second")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", default=DEFAULT_DOCUMENTS, help="directory of *.jsonl.gz documents")
    parser.add_argument("--files", type=int, default=4, help="how many of its files to use (sorted)")
    parser.add_argument("--processes", type=int, nargs="+", default=[2], help="one or more process counts")
    parser.add_argument("--executor", nargs="+", default=["auto"], choices=["auto", "ray", "local", "serial"],
                        help="our executor(s) at each process count (auto: the default command; ray: an embedded "
                             "cluster, start-up included)")
    parser.add_argument("--encoder", default="cached", choices=["cached", "tokenizers"],
                        help="our encoder: the exact chunk cache (default) or tokenizers' encode_batch_fast")
    parser.add_argument("--dolma", default=DEFAULT_DOLMA, help="dolma 1.2.1's `dolma` executable")
    parser.add_argument("--tokenizer", default=None, help="tokenizer.json (default: the cached OLMo tokenizer)")
    parser.add_argument("--json", default=None, help="write the figures here")
    parser.add_argument("--no-raw", action="store_true", help="skip the raw encode_batch figures (slow)")
    parser.add_argument("--raw-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("raw_files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    tokenizer = args.tokenizer or tokenizer_path()
    if args.raw_only:
        print(json.dumps(raw_encode_seconds(args.raw_files, tokenizer)))
        return

    files = sorted(glob.glob(os.path.join(args.documents, "*.jsonl.gz")))[: args.files]
    if not files:
        raise SystemExit(f"no *.jsonl.gz under {args.documents} (build the corpus: shared/corpus/build_corpus.py)")
    work = tempfile.mkdtemp(prefix="tokenize-bench-")
    print(f"input: {len(files)} file(s) from {args.documents}, {sum(map(os.path.getsize, files)) / 1e6:.1f} MB gz; "
          f"cpus {os.cpu_count()}; load average {os.getloadavg()[0]:.1f}")
    figures: dict = {"files": len(files), "encoder": args.encoder, "runs": {}}
    checked = False
    try:
        for processes, executor in [(p, e) for p in args.processes for e in args.executor
                                    if p > 1 or e == args.executor[0]]:  # one process runs in the driver
            ours_dir = os.path.join(work, f"ours-{processes}-{executor}")
            ours = run_ours(files, tokenizer, processes, ours_dir, executor, args.encoder)
            tokens = ours["tokens"]
            if not figures.get("tokens"):
                figures["tokens"] = tokens
                if not args.no_raw:
                    report_raw(files, tokenizer, tokens, figures)
            run: dict = {"ours": ours}
            print(f"--processes {processes}" + (f" --executor {executor}" if processes > 1 else " (in the driver)"))
            print(f"  ours       : {tokens / ours['seconds']:>10,.0f} tokens/s ({ours['seconds']:.1f}s; "
                  f"{tokens / ours['seconds'] / processes:,.0f} per process), "
                  f"{tokens / ours['cpu_seconds']:>10,.0f} tokens per CPU-second (driver {ours['driver_cpu_seconds']}s)")
            for name in ("encode_batch", "encode_batch_fast"):
                raw = figures.get(f"raw_{name}_allthreads")
                one = figures.get(f"raw_{name}_1thread")
                if raw and one:
                    run[f"vs_raw_{name}"] = {
                        "wall": round(tokens / ours["seconds"] / raw["tokens_per_s"], 2),
                        "per_process_wall_vs_1thread": round(tokens / ours["seconds"] / processes
                                                             / one["tokens_per_s"], 2),
                        "cpu": round(tokens / ours["cpu_seconds"] / one["tokens_per_cpu_s"], 2)}
                    print(f"  vs raw {name:<17}: {run[f'vs_raw_{name}']}")
            if not os.path.exists(args.dolma):
                print(f"  dolma 1.2.1: skipped ({args.dolma} not found; install with shared/bench/setup_peers.sh)")
            else:
                dolma, theirs = run_dolma(args.dolma, files, tokenizer, processes,
                                          os.path.join(work, f"d{processes}-{executor}"))
                run["dolma"] = dolma
                run["vs_dolma"] = {"wall": round(dolma["seconds"] / ours["seconds"] * tokens / dolma["tokens"], 2),
                                   "cpu": round(dolma["cpu_seconds"] / ours["cpu_seconds"] * tokens / dolma["tokens"], 2)}
                print(f"  dolma 1.2.1: {dolma['tokens'] / dolma['seconds']:>10,.0f} tokens/s ({dolma['seconds']:.1f}s), "
                      f"{dolma['tokens'] / dolma['cpu_seconds']:>10,.0f} tokens per CPU-second"
                      f"  -> ours / dolma: {run['vs_dolma']['wall']:.2f}x wall, {run['vs_dolma']['cpu']:.2f}x CPU")
                if not checked:
                    check = compare(read_parts(ours_dir), theirs)
                    figures["equality_vs_dolma"] = check
                    same = not (check["mismatched"] or check["only_ours"] or check["only_dolma"])
                    print(f"  per-document tokens vs dolma: {'IDENTICAL' if same else 'DIFFERENT'} ({check})")
                    checked = True
            figures["runs"][f"{processes}-{executor}" if processes > 1 else "1"] = run
    finally:
        subprocess.run(["rm", "-rf", work])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
