"""Benchmark `dolma decontaminate` (paragraph mode) against dolma 1.2.1's Bloom-filter decontamination.

    python bench/decon_bench.py [--documents DIR] [--eval-every 100] [--processes 2] [--repeat 2]
                                [--dolma PATH] [--quality-documents DIR] [--json OUT]

Same evaluation set, same training corpus, same machine, runs interleaved:
- the evaluation set: every `--eval-every`-th document of the training corpus (under new ids), so its
  paragraphs really occur in the training data;
- ours: one `dolma decontaminate` command in a fresh process, `--processes P`, the default executor
  (and `--executor local`), exact index (every hit verified against the evaluation text);
- dolma 1.2.1, the recipe of its `configs/dolma-v1_5/decontamination`: (1) `dolma tag` the evaluation
  set with `uniseg_length_paragraphs_with_empty_v1` and `not_alphanum_paragraph_v1`, (2) `dolma mix` it
  to drop paragraphs under 13 uniseg words and all-punctuation ones, (3) `dolma dedupe` the result into a
  new Bloom filter, (4) `dolma dedupe` the training corpus read-only against it; P processes each.
Documents/s = training documents / wall seconds of the whole decontamination (each tool's every step).
Hit counts: paragraphs flagged by each; dolma's false positives counted exactly (a flagged paragraph
whose text is none of the paragraphs its filter was built from); our run with normalisation off must
flag exactly dolma's true hits.

`--quality-documents DIR` (default: the `multilingual` corpus) adds the planted-contamination check:
paragraphs of >= 13 words from those documents are the evaluation set; copies of some of them, verbatim
or edited (upper case, spacing, punctuation at the ends, NFD), are inserted into training documents;
recall of the planted paragraphs and false positives on the untouched text are reported.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata

import orjson

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
DEFAULT_DOCS = "/tmp/dolma-corpus/dolma/en/documents"
DEFAULT_QUALITY_DOCS = "/tmp/dolma-corpus/dolma/multilingual/documents"
PEERS = os.environ.get("PEERS", "/tmp/peers")
ATTRIBUTE = "bff_duplicate_paragraph_spans_decontamination"


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_jsonl(pattern: str) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(pattern)):
        with gzip.open(path) as fh:
            rows += [orjson.loads(line) for line in fh if line.strip()]
    return rows


def write_jsonl(path: str, rows: list[dict]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with gzip.open(path, "wb") as fh:
        fh.write(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def setup(documents: str, work: str, every: int) -> tuple[str, str, int]:
    """work/train/documents (links to the corpus) and work/eval/documents/eval.jsonl.gz."""
    train, evaluation = os.path.join(work, "train", "documents"), os.path.join(work, "eval", "documents")
    os.makedirs(train)
    docs, picked = 0, []
    for path in sorted(glob.glob(os.path.join(documents, "*.jsonl*"))):
        os.symlink(os.path.abspath(path), os.path.join(train, os.path.basename(path)))
        with gzip.open(path) as fh:
            for line in fh:
                if docs % every == 7:
                    doc = orjson.loads(line)
                    picked.append({"id": f"eval-{doc['id']}", "text": doc["text"], "source": "eval"})
                docs += 1
    write_jsonl(os.path.join(evaluation, "eval.jsonl.gz"), picked)
    return train, evaluation, docs


def run(cmd: list[str], cwd: str | None = None) -> tuple[float, float, str]:
    env = {**os.environ, "DOLMA_NO_PROGRESS": "1", "RAY_AUTH_MODE": "disabled", "PYTHONPATH": REPO,
           "HF_HUB_OFFLINE": "1"}
    start, cpu = time.perf_counter(), children_cpu()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - start, children_cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return wall, cpu, proc.stdout


# ---------------------------------------------------------------------------------------------- ours
def run_ours(train: str, evaluation: str, out: str, processes: int, extra: list[str]) -> tuple[float, float, dict]:
    shutil.rmtree(out, ignore_errors=True)
    config = {"documents": [f"{train}/*.jsonl.gz"], "evaluation": [{"name": "eval", "documents": [f"{evaluation}/*.gz"]}],
              "destination": out, "work_dir": out + "_work",
              "dedupe": {"name": "decon", "paragraphs": {"attribute_name": ATTRIBUTE}, "skip_empty": True},
              "processes": processes}
    path = out + ".yaml"
    with open(path, "w") as fh:
        json.dump(config, fh)  # JSON is YAML
    wall, cpu, _ = run([sys.executable, "-m", "dolma_pipeline.cli", "-c", path, "decontaminate", *extra], cwd=REPO)
    with open(os.path.join(out, "dolma_decontaminate.summary.json")) as fh:
        summary = json.load(fh)["summary"]
    return wall, cpu, summary


# --------------------------------------------------------------------------------------------- dolma
def run_dolma(dolma: str, work: str, train: str, evaluation: str, processes: int, fpr: float) -> dict:
    """Dolma's four steps; returns per-step wall seconds, CPU, and where the outputs are."""
    root = os.path.join(work, "dolma")
    shutil.rmtree(root, ignore_errors=True)
    eval_root = os.path.join(root, "eval")
    os.makedirs(os.path.join(eval_root, "documents"))
    shutil.copy(os.path.join(evaluation, "eval.jsonl.gz"), os.path.join(eval_root, "documents", "eval.jsonl.gz"))
    train_root = os.path.join(root, "train")
    os.makedirs(os.path.join(train_root, "documents"))
    for path in sorted(glob.glob(os.path.join(train, "*.jsonl*"))):
        os.symlink(os.path.realpath(path), os.path.join(train_root, "documents", os.path.basename(path)))
    steps: dict[str, float] = {}
    cpu = 0.0
    wall, c, _ = run([dolma, "tag", "--documents", f"{eval_root}/documents/*.gz", "--experiment", "decon_len",
                      "--taggers", "uniseg_length_paragraphs_with_empty_v1", "not_alphanum_paragraph_v1",
                      "--processes", str(processes)])
    steps["1_tag_eval"], cpu = wall, cpu + c
    mix = {"streams": [{"name": "eval", "documents": [f"{eval_root}/documents/*.gz"], "attributes": ["decon_len"],
                        "output": {"path": f"{root}/evalset/documents", "max_size_in_bytes": 500_000_000,
                                   "discard_fields": ["attributes"]},
                        "span_replacement": [
                            {"span": "$.attributes.decon_len__uniseg_length_paragraphs_with_empty_v1__negative_paragraph",
                             "min_score": -12, "replacement": ""},
                            {"span": "$.attributes.decon_len__not_alphanum_paragraph_v1__all_punct",
                             "min_score": 0.5, "replacement": ""}]}],
           "processes": processes}
    with open(os.path.join(root, "mix.json"), "w") as fh:
        json.dump(mix, fh)
    wall, c, _ = run([dolma, "-c", os.path.join(root, "mix.json"), "mix"])
    steps["2_mix_eval"], cpu = wall, cpu + c
    inserted = sorted({p for d in read_jsonl(f"{root}/evalset/documents/*.gz") for p in d["text"].split("\n") if p.strip()})
    bloom = os.path.join(root, "bloom.bin")
    common = ["--dedupe.name", "decon", "--dedupe.paragraphs.attribute_name", ATTRIBUTE, "--dedupe.skip_empty",
              "--bloom_filter.file", bloom, "--bloom_filter.estimated_doc_count", str(max(1, len(inserted))),
              "--bloom_filter.desired_false_positive_rate", str(fpr), "--processes", str(processes)]
    wall, c, _ = run([dolma, "dedupe", "--documents", f"{root}/evalset/documents/*.gz", "--no-bloom_filter.read_only",
                      *common])
    steps["3_build_bloom"], cpu = wall, cpu + c
    wall, c, _ = run([dolma, "dedupe", "--documents", f"{train_root}/documents/*.jsonl.gz", "--bloom_filter.read_only",
                      *common])
    steps["4_dedupe_read_only"], cpu = wall, cpu + c
    return {"steps": steps, "wall": sum(steps.values()), "cpu": cpu, "inserted": set(inserted),
            "attributes": f"{train_root}/attributes/decon"}


# ------------------------------------------------------------------------------------------- checking
def flagged(attributes: str, train: str) -> list[str]:
    """The text of every paragraph flagged in `attributes` (separator dropped)."""
    out = []
    for path in sorted(glob.glob(os.path.join(train, "*.jsonl.gz"))):
        name = os.path.basename(path)
        docs = read_jsonl(path)
        rows = read_jsonl(os.path.join(attributes, name))
        assert [d["id"] for d in docs] == [r["id"] for r in rows], name
        for doc, row in zip(docs, rows):
            for start, end, _ in row["attributes"].get(ATTRIBUTE, []):
                out.append(doc["text"][start:end].removesuffix("\n"))
    return out


def bench_speed(args, work: str) -> dict:
    train, evaluation, total = setup(args.documents, work, args.eval_every)
    eval_docs = len(read_jsonl(f"{evaluation}/*.gz"))
    print(f"training: {args.documents} ({total:,} documents); evaluation: {eval_docs} of them (every "
          f"{args.eval_every}th); {args.processes} processes; {args.repeat} round(s)")
    dolma = args.dolma
    have_dolma = os.path.exists(dolma)
    if not have_dolma:
        print(f"dolma 1.2.1: skipped ({dolma} not found; run ../shared/bench/setup_peers.sh)")
    runs: dict[str, list[float]] = {"ours_default": [], "ours_local": [], "dolma": [], "dolma_step4": []}
    peer: dict = {}
    for _ in range(args.repeat):
        for label, extra in (("ours_default", []), ("ours_local", ["--executor", "local"])):
            wall, cpu, summary = run_ours(train, evaluation, os.path.join(work, label), args.processes, extra)
            runs[label].append(wall)
            stages = {k: v for k, v in summary["extra"].items() if k.endswith("_seconds") and k != "cpu_seconds"}
            print(f"  ours ({label[5:]}): {wall:6.1f} s wall, {total / wall:8,.0f} docs/s (process tree {cpu:.1f} "
                  f"CPU-s; workers {summary['extra']['cpu_seconds']:.1f} CPU-s; stages {stages})")
        if have_dolma:
            peer = run_dolma(dolma, work, train, evaluation, args.processes, args.fpr)
            runs["dolma"].append(peer["wall"])
            runs["dolma_step4"].append(peer["steps"]["4_dedupe_read_only"])
            steps = ", ".join(f"{k} {v:.1f}" for k, v in peer["steps"].items())
            print(f"  dolma 1.2.1: {peer['wall']:6.1f} s wall, {total / peer['wall']:8,.0f} docs/s (process tree "
                  f"{peer['cpu']:.1f} CPU-s; steps: {steps})")
    median = {k: statistics.median(v) for k, v in runs.items() if v}
    out: dict = {"training_documents": total, "eval_documents": eval_docs, "processes": args.processes,
                 "runs": runs, "median_wall_s": median,
                 "docs_per_s": {k: total / v for k, v in median.items()}}
    ours_hits = flagged(os.path.join(work, "ours_local"), train)
    out["ours_flagged_paragraphs"] = len(ours_hits)
    print("  median docs/s: " + ", ".join(f"{k} {total / v:,.0f}" for k, v in median.items()))
    if have_dolma:
        for label in ("ours_default", "ours_local"):
            out[f"ratio_{label}"] = median["dolma"] / median[label]
            print(f"  ratio {label} / dolma (whole recipe): {out[f'ratio_{label}']:.2f}x")
        out["ratio_ours_local_vs_dolma_step4_only"] = median["dolma_step4"] / median["ours_local"]
        print(f"  ratio ours (local, whole command) / dolma step 4 alone (read-only dedupe of the training "
              f"corpus): {out['ratio_ours_local_vs_dolma_step4_only']:.2f}x")
        dolma_hits = flagged(peer["attributes"], train)
        false_positives = sum(1 for p in dolma_hits if p not in peer["inserted"])
        raw, _, _ = run_ours(train, evaluation, os.path.join(work, "ours_raw"), args.processes,
                             ["--executor", "local", "--dedupe.normalize.nfc", "false", "--dedupe.normalize.case", "false",
                              "--dedupe.normalize.whitespace", "false", "--dedupe.normalize.punctuation", "false"])
        raw_hits = flagged(os.path.join(work, "ours_raw"), train)
        out.update(dolma_flagged_paragraphs=len(dolma_hits), dolma_false_positives=false_positives,
                   ours_raw_flagged_paragraphs=len(raw_hits),
                   ours_raw_equals_dolma_true_hits=sorted(raw_hits) == sorted(p for p in dolma_hits if p in peer["inserted"]),
                   dolma_steps_last_round=peer["steps"])
        print(f"  paragraphs flagged: ours {len(ours_hits):,} (normalised, every hit verified), dolma "
              f"{len(dolma_hits):,} of which {false_positives:,} false positives (exact count); ours with "
              f"normalisation off: {len(raw_hits):,} = dolma's true hits: {out['ours_raw_equals_dolma_true_hits']}")
    return out


# -------------------------------------------------------------------------------------------- quality
def _edit(paragraph: str, kind: str) -> str:
    if kind == "upper":
        return paragraph.upper()
    if kind == "spacing":
        return "  " + paragraph.replace(" ", "   \t ") + "  "
    if kind == "punctuation":
        return "— " + paragraph.rstrip(".!?;:") + " !!"
    if kind == "nfd":
        return unicodedata.normalize("NFD", paragraph)
    return paragraph


def bench_quality(args, work: str) -> dict:
    from dolma_pipeline.decontaminate.normalize import has_min_words

    rng = random.Random(5)
    source = read_jsonl(os.path.join(args.quality_documents, "*.jsonl*"))
    rng.shuffle(source)
    chosen: dict[str, None] = {}
    for doc in source:  # paragraphs of >= 13 words (Dolma's count) with a letter or digit, in a seeded random order
        for p in doc["text"].split("\n"):
            if len(p.split()) >= 8 and has_min_words(p, 13) and any(map(str.isalnum, p)):
                chosen[p.strip()] = None
        if len(chosen) >= args.quality_eval:
            break
    evaluation = list(chosen)[: args.quality_eval]
    root = os.path.join(work, "quality")
    write_jsonl(os.path.join(root, "eval", "documents", "eval.jsonl.gz"),
                [{"id": f"q{i}", "text": p} for i, p in enumerate(evaluation)])
    planted: dict[str, list[tuple[str, str]]] = {}  # training doc id -> [(kind, planted text)]
    kinds = ["verbatim", "upper", "spacing", "punctuation", "nfd"]
    for path in sorted(glob.glob(os.path.join(args.documents, "*.jsonl*")))[: args.quality_files]:
        docs = read_jsonl(path)
        for doc in docs:
            if rng.random() < 0.05:
                kind = rng.choice(kinds)
                text = _edit(rng.choice(evaluation), kind)
                lines = doc["text"].split("\n")
                lines.insert(rng.randrange(len(lines) + 1), text)
                doc["text"] = "\n".join(lines)
                planted[doc["id"]] = [(kind, text)]
        write_jsonl(os.path.join(root, "train", "documents", os.path.basename(path)), docs)
    train = os.path.join(root, "train", "documents")
    run_ours(train, os.path.join(root, "eval", "documents"), os.path.join(root, "out"), args.processes,
             ["--executor", "local"])
    found = {kind: 0 for kind in kinds}
    total = {kind: 0 for kind in kinds}
    other_hits, other_false = 0, 0
    import re

    ends = re.compile(r"^(?:\W|_)+|(?:\W|_)+$")

    def bare(text: str) -> str:  # the documented normalisation, written independently
        return ends.sub("", " ".join(unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold()).split()))

    eval_set = {bare(p) for p in evaluation}
    for path in sorted(glob.glob(os.path.join(train, "*.jsonl.gz"))):
        docs = read_jsonl(path)
        rows = read_jsonl(os.path.join(root, "out", os.path.basename(path)))
        for doc, row in zip(docs, rows):
            spans = [doc["text"][s:e].removesuffix("\n") for s, e, _ in row["attributes"][ATTRIBUTE]]
            for kind, text in planted.get(doc["id"], []):
                total[kind] += 1
                found[kind] += text in spans
            for span in spans:
                if any(span == text for _, text in planted.get(doc["id"], [])):
                    continue
                other_hits += 1  # a natural occurrence: check it independently of our normaliser
                other_false += bare(span) not in eval_set
    recall = sum(found.values()) / max(1, sum(total.values()))
    out = {"eval_paragraphs": len(evaluation), "planted": total, "found": found, "recall": recall,
           "other_hits": other_hits, "other_hits_not_confirmed": other_false}
    print(f"quality: {len(evaluation)} evaluation paragraphs from {args.quality_documents}; planted in "
          f"{sum(total.values())} training documents: recall {recall:.4f} (per edit: "
          + ", ".join(f"{k} {found[k]}/{total[k]}" for k in kinds)
          + f"); other hits {other_hits}, of which {other_false} not confirmed by an independent comparison")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", default=DEFAULT_DOCS)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--dolma", default=os.path.join(PEERS, "dolma-venv", "bin", "dolma"))
    parser.add_argument("--fpr", type=float, default=1e-15, help="dolma's bloom_filter.desired_false_positive_rate")
    parser.add_argument("--quality-documents", default=DEFAULT_QUALITY_DOCS)
    parser.add_argument("--quality-eval", type=int, default=2000, help="evaluation paragraphs for the quality check")
    parser.add_argument("--quality-files", type=int, default=3, help="training files planted into")
    parser.add_argument("--only", choices=["speed", "quality"])
    parser.add_argument("--work", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="decon_bench_")
    results: dict = {"machine": f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"}
    if args.only in (None, "speed"):
        results["speed"] = bench_speed(args, work)
    if args.only in (None, "quality") and os.path.isdir(args.quality_documents):
        results["quality"] = bench_quality(args, work)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
