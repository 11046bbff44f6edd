"""`dolma mix` against dolma 1.2.1's Rust mixer: docs/s side by side, then a diff of the two outputs.

Both mixers read the same documents and the same attribute files, made once (and cached under --work) by
dolma 1.2.1's own `tag` (gopher_v1, pii_regex_with_counts_fast_v2) and `dedupe` (duplicate paragraph
spans); without the peer, by this project's `dolma tag`/`dolma dedupe`, which write the same keys. The
rules: Gopher limits, the OLMo PII rule (mask e-mail/phone/IP, drop doc_count > 5) and removal of
duplicate paragraphs, written once in jq and once in JSONPath. Each input file is its own shard for both
tools so that both can use every process.

    python bench/mix_bench.py [--corpus DIR] [--files 4] [--processes 2] [--dolma PATH] [--work DIR]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from dolma_pipeline.io import iter_raw_lines  # noqa: E402

EXP = "peer"
PII = f"{EXP}__pii_regex_with_counts_fast_v2__"
GOPHER = f"{EXP}__gopher_v1__"
PARA = "bff_duplicate_paragraph_spans"
GOPHER_LIMITS = [  # (attribute, op, value): documents are dropped when the comparison holds
    ("word_count", "<", 50), ("word_count", ">", 100000), ("median_word_length", "<", 3),
    ("median_word_length", ">", 10), ("symbol_to_word_ratio", ">", 0.1),
]
OP_NAMES = {"<": "lt", ">": "gt"}


def jq_excludes() -> list[str]:
    rules = [f"(.attributes.{GOPHER}{key} // [[0,0,{1e9 if op == '<' else -1e9}]])[0][2] {op} {value}"
             for key, op, value in GOPHER_LIMITS]
    return rules + [f"(.attributes.{PII}doc_count // [[0,0,0]])[0][2] > 5"]


def jsonpath_excludes() -> list[str]:
    def one(key: str, op: str, value: float) -> str:
        return f"$.attributes[?(@.{key} && @.{key}[0] && @.{key}[0][2] {op} {value})]"
    return [one(f"{GOPHER}{k}", op, v) for k, op, v in GOPHER_LIMITS] + [one(f"{PII}doc_count", ">", 5)]


def span_replacements() -> list[dict]:
    return [{"span": f"$.attributes.{PII}{kind}", "min_score": 0.5, "replacement": f" |||{kind}||| "}
            for kind in ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS")] + [
        {"span": f"$.attributes.{PARA}", "min_score": 0.5, "replacement": ""}]


def mix_config(root: str, out: str, syntax: str, processes: int, shard_bytes: int, typed: bool = False) -> dict:
    stream = {
        "name": "bench",
        "documents": [f"{root}/documents/*.jsonl.gz"],
        "attributes": [EXP, "dedupe_para"],
        "output": {"path": out, "max_size_in_bytes": shard_bytes, "discard_fields": ["attributes"]},
        "span_replacement": span_replacements(),
    }
    if typed:
        stream["rules"] = [{"attribute": f"{GOPHER}{k}", "op": OP_NAMES[op], "value": v} for k, op, v in GOPHER_LIMITS]
        stream["rules"].append({"attribute": f"{PII}doc_count", "op": "gt", "value": 5})
    else:
        stream["filter"] = {"syntax": syntax, "exclude": jq_excludes() if syntax == "jq" else jsonpath_excludes()}
    return {"streams": [stream], "processes": processes}


def run(cmd: list[str], env: dict | None = None, quiet: bool = True) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=quiet, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{(proc.stderr or '')[-3000:]}")
    return time.perf_counter() - start


def prepare(args) -> tuple[str, int, int]:
    """Copy the documents under --work and make the attribute files once; returns (root, docs, file size)."""
    root = os.path.join(args.work, "root")
    files = sorted(glob.glob(os.path.join(args.corpus, "*.jsonl.gz")))[: args.files]
    if not files:
        raise SystemExit(f"no *.jsonl.gz under {args.corpus}; build the corpus first (see shared/bench/README.md)")
    os.makedirs(f"{root}/documents", exist_ok=True)
    for f in files:
        target = f"{root}/documents/{os.path.basename(f)}"
        if not os.path.exists(target):
            shutil.copyfile(f, target)
    docs = sum(1 for f in files for _ in iter_raw_lines(f))
    pattern = f"{root}/documents/*.jsonl.gz"
    env = {"HF_HUB_OFFLINE": "1", "DOLMA_NO_PROGRESS": "1"}
    peer = os.path.exists(args.dolma)
    if not glob.glob(f"{root}/attributes/{EXP}/*.jsonl.gz"):
        print(f"tagging {docs:,} documents with {'dolma 1.2.1' if peer else 'our dolma tag'} (once) ...", flush=True)
        tag = [args.dolma] if peer else [sys.executable, "-m", "dolma_pipeline.cli"]
        run(tag + ["tag", "--documents", pattern, "--experiment", EXP, "--taggers", "gopher_v1",
                   "pii_regex_with_counts_fast_v2", "--processes", str(args.processes)], env)
    if not glob.glob(f"{root}/attributes/dedupe_para/*.jsonl.gz"):
        print("paragraph dedupe (once) ...", flush=True)
        if peer:
            bloom = os.path.join(args.work, "bloom.bin")
            if os.path.exists(bloom):
                os.remove(bloom)  # dolma reloads its own filter and would flag everything
            run([args.dolma, "dedupe", "--documents", pattern, "--dedupe.name", "dedupe_para",
                 "--dedupe.paragraphs.attribute_name", PARA, "--dedupe.skip_empty", "--bloom_filter.file", bloom,
                 "--no-bloom_filter.read_only", "--bloom_filter.estimated_doc_count", "1000000",
                 "--bloom_filter.desired_false_positive_rate", "0.0001", "--processes", str(args.processes)], env)
        else:
            run([sys.executable, "-m", "dolma_pipeline.cli", "-c", f"{REPO}/configs/dedupe/paragraphs.yaml", "dedupe",
                 "--documents", pattern, "--processes", str(args.processes)], env)
    return root, docs, max(os.path.getsize(f) for f in files)


def read_texts(out: str) -> dict[str, str]:
    texts = {}
    for path in sorted(glob.glob(f"{out}/*.json*.gz")) + sorted(glob.glob(f"{out}/*.jsonl.zst")):
        for line in iter_raw_lines(path):
            row = json.loads(line)
            texts[row["id"]] = row["text"]
    return texts


def explain(root: str, ids: set[str]) -> dict[str, str]:
    """Which of Dolma's documented bugs explains each differing document (by its attributes)."""
    from mixers.validate import attribute_file

    reasons = {}
    for doc_path in sorted(glob.glob(f"{root}/documents/*.jsonl.gz")):
        readers = [iter_raw_lines(attribute_file(doc_path, s)) for s in (EXP, "dedupe_para")]
        for line in iter_raw_lines(doc_path):
            doc = json.loads(line)
            attrs = {}
            for reader in readers:
                attrs.update(json.loads(next(reader))["attributes"])
            if doc["id"] not in ids:
                continue
            spans = [s for key in attrs if key.startswith(PII) or key == PARA for s in attrs[key]
                     if key != f"{PII}doc_count" and key != f"{PII}doc_frac"]
            if any(s[0] == s[1] and s[2] >= 0.5 for s in spans):
                reasons[doc["id"]] = "Dolma inserts the replacement for an empty span"
            elif any(isinstance(v[0][2], int) for v in attrs.values() if v and isinstance(v[0], list)):
                reasons[doc["id"]] = "Dolma's JSONPath never equates an int and a float"
            elif any(v == [] for k, v in attrs.items() if k.startswith(GOPHER) or k == f"{PII}doc_count"):
                reasons[doc["id"]] = "empty attribute: Dolma's jq errors or JSONPath guard differ"
            else:
                reasons[doc["id"]] = "unexplained"
    return reasons


def diff(root: str, ours: dict[str, str], theirs: dict[str, str]) -> dict:
    only_ours = set(ours) - set(theirs)
    only_theirs = set(theirs) - set(ours)
    changed = {i for i in set(ours) & set(theirs) if ours[i] != theirs[i]}
    reasons = explain(root, only_ours | only_theirs | changed) if (only_ours or only_theirs or changed) else {}
    by_reason: dict[str, int] = {}
    for reason in reasons.values():
        by_reason[reason] = by_reason.get(reason, 0) + 1
    return {"kept_both": len(set(ours) & set(theirs)), "only_ours": len(only_ours), "only_dolma": len(only_theirs),
            "text_differs": len(changed), "explained_by": by_reason,
            "examples": sorted(only_ours | only_theirs | changed)[:5]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="/tmp/dolma-corpus/dolma/en/documents")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--dolma", default="/tmp/peers/dolma-venv/bin/dolma")
    parser.add_argument("--work", default="/tmp/mix_bench")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per configuration (best is kept)")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--skip-jsonpath", action="store_true", help="skip the (slow) JSONPath runs")
    args = parser.parse_args(argv)

    root, docs, shard_bytes = prepare(args)
    peer = os.path.exists(args.dolma)
    if not peer:
        print(f"dolma 1.2.1 not found at {args.dolma}: peer runs skipped (bash ../shared/bench/setup_peers.sh)")
    env = {"HF_HUB_OFFLINE": "1", "DOLMA_NO_PROGRESS": "1", "RAY_AUTH_MODE": "disabled"}
    results: dict[str, dict] = {}
    runs = [("dolma jq", "peer", "jq", False), ("dolma jsonpath", "peer", "jsonpath", False),
            ("ours jq", "ours", "jq", False), ("ours jsonpath", "ours", "jsonpath", False),
            ("ours typed rules", "ours", "jq", True)]
    for label, who, syntax, typed in runs:
        if who == "peer" and not peer or args.skip_jsonpath and syntax == "jsonpath":
            continue
        out = os.path.join(args.work, "out", label.replace(" ", "_"))
        config_path = os.path.join(args.work, f"{label.replace(' ', '_')}.yaml")
        with open(config_path, "w") as fh:
            yaml.safe_dump(mix_config(root, out, syntax, args.processes, shard_bytes, typed), fh, sort_keys=False)
        best = None
        for _ in range(args.repeat):
            shutil.rmtree(out, ignore_errors=True)
            cmd = [args.dolma, "-c", config_path, "mix"] if who == "peer" else [
                sys.executable, "-m", "dolma_pipeline.cli", "-c", config_path, "mix"]
            seconds = run(cmd, env)
            best = seconds if best is None else min(best, seconds)
        results[label] = {"seconds": round(best, 2), "docs_per_s": round(docs / best, 1), "out": out}
        print(f"{label:<18} {docs:>8,} docs in {best:6.2f}s = {docs / best:9,.0f} docs/s", flush=True)

    if peer:
        for ours, theirs in (("ours jq", "dolma jq"), ("ours jsonpath", "dolma jsonpath"), ("ours jq", "dolma jsonpath"),
                             ("ours typed rules", "dolma jq")):
            if ours not in results or theirs not in results:
                continue
            ratio = results[ours]["docs_per_s"] / results[theirs]["docs_per_s"]
            results[f"{ours} / {theirs}"] = round(ratio, 2)
            print(f"ratio {ours} / {theirs}: {ratio:.2f}x")
        print("\noutput diff (same documents, same attributes):")
        theirs_texts = read_texts(results["dolma jq"]["out"])
        for label in [x for x in ("ours jq", "ours jsonpath", "ours typed rules") if x in results]:
            d = diff(root, read_texts(results[label]["out"]), theirs_texts)
            results[f"diff {label} vs dolma jq"] = d
            print(f"  {label} vs dolma jq: kept by both {d['kept_both']:,}, only ours {d['only_ours']}, "
                  f"only dolma {d['only_dolma']}, same id other text {d['text_differs']}; {d['explained_by'] or ''}")
        if "dolma jsonpath" in results:
            d = diff(root, read_texts(results["dolma jsonpath"]["out"]), theirs_texts)
            print(f"  dolma jsonpath vs dolma jq: only jsonpath {d['only_ours']}, only jq {d['only_dolma']}, "
                  f"text differs {d['text_differs']}; {d['explained_by'] or ''}")
            results["diff dolma jsonpath vs dolma jq"] = d
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"documents": docs, **results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
