"""`dolma mix` against dolma 1.2.1's Rust mixer: docs/s side by side, then a diff of the two outputs.

Both mixers read the same documents and the same attribute files, made once (and cached under --work) by
dolma 1.2.1's own `tag` (gopher_v1, pii_regex_with_counts_fast_v2) and `dedupe` (duplicate paragraph
spans); without the peer, by this project's `dolma tag`/`dolma dedupe`, which write the same keys. The
rules: Gopher limits, the OLMo PII rule (mask e-mail/phone/IP, drop doc_count > 5) and removal of
duplicate paragraphs, written once in jq and once in JSONPath. Each input file is its own shard for both
tools so that both can use every process.

    python bench/mix_bench.py [--corpus DIR] [--files 4] [--processes 2] [--dolma PATH] [--work DIR] [--local]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
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
    def tagged(attribute_set: str) -> bool:
        return all(os.path.exists(f"{root}/attributes/{attribute_set}/{os.path.basename(f)}") for f in files)

    for attribute_set in (EXP, "dedupe_para"):
        if not tagged(attribute_set):  # (re)make a set whole: dedupe is across all files
            shutil.rmtree(f"{root}/attributes/{attribute_set}", ignore_errors=True)
    if not tagged(EXP):
        print(f"tagging {docs:,} documents with {'dolma 1.2.1' if peer else 'our dolma tag'} (once) ...", flush=True)
        tag = [args.dolma] if peer else [sys.executable, "-m", "dolma_pipeline.cli"]
        run(tag + ["tag", "--documents", pattern, "--experiment", EXP, "--taggers", "gopher_v1",
                   "pii_regex_with_counts_fast_v2", "--processes", str(args.processes)], env)
    if not tagged("dedupe_para"):
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


class WarmRay:
    """A `ray start --head` of our own (never `ray stop`: that would kill every Ray on the host)."""

    def __init__(self, processes: int):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.temp = f"/tmp/mixbench-ray-{self.port}"
        self.env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
        ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
        self.proc = subprocess.Popen([ray_cli, "start", "--head", "--port", str(self.port), "--num-cpus",
                                      str(processes), "--block", "--include-dashboard=false",
                                      f"--temp-dir={self.temp}", "--node-ip-address=127.0.0.1"],
                                     env=self.env, start_new_session=True, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        probe = f"import ray; ray.init(address='{self.address}', logging_level='ERROR'); print('up')"
        deadline = time.time() + 180
        while time.time() < deadline:
            out = subprocess.run([sys.executable, "-c", probe], env=self.env, capture_output=True, text=True)
            if out.returncode == 0 and "up" in out.stdout:
                return
            time.sleep(2)
        self.close()
        raise SystemExit("could not start a Ray head for --warm-ray")

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.temp, ignore_errors=True)


# ------------------------------------------------------------------------------------------ Dolma's traps
TRAP_DOCS = [  # (id, text, attributes); one attribute file, set "t"
    ("int_vs_float", "a document whose flag is the float 1.0", {"t__x__flag": [[0, 10, 1.0]]}),
    ("empty_list", "a document whose count attribute is an empty list", {"t__x__count": []}),
    ("zero_length_span", "mask nothing here", {"t__x__pii": [[5, 5, 1.0]]}),
    ("plain", "an ordinary document", {"t__x__flag": [[0, 5, 0.0]], "t__x__count": [[0, 5, 1.0]]}),
]
TRAPS = [  # (what Dolma does wrong, filter syntax, exclude expressions, span replacements)
    ("JSONPath compares 1 and 1.0 as different (flag == 1 never fires)", "jsonpath",
     ["$.attributes[?(@.t__x__flag && @.t__x__flag[0][2] == 1)]"], []),
    ("jq filter on an empty attribute list fails the shard", "jq",
     ["(.attributes.t__x__count // [[0,0,0]])[0][2] > 5"], []),
    ("a misspelled attribute key silently never fires", "jq",
     ["(.attributes.t__x__flgg // [[0,0,0]])[0][2] >= 1"], []),
    ("a zero-length span still gets the replacement inserted", "jq", [],
     [{"span": "$.attributes.t__x__pii", "min_score": 0.5, "replacement": " |||EMAIL_ADDRESS||| "}]),
]


def run_traps(args) -> list[dict]:
    """Tiny inputs that trip Dolma 1.2.1; what each tool does with them."""
    from dolma_pipeline.io import write_jsonl

    root = os.path.join(args.work, "traps")
    shutil.rmtree(root, ignore_errors=True)
    write_jsonl(f"{root}/documents/t.jsonl.gz", [{"id": i, "text": t, "source": "trap"} for i, t, _ in TRAP_DOCS])
    write_jsonl(f"{root}/attributes/t/t.jsonl.gz", [{"id": i, "attributes": a} for i, _, a in TRAP_DOCS])
    rows = []
    for n, (problem, syntax, exclude, spans) in enumerate(TRAPS):
        outcome = {}
        for who in ("dolma", "ours"):
            out = f"{root}/out-{n}-{who}"
            stream = {"name": "trap", "documents": [f"{root}/documents/*.jsonl.gz"], "attributes": ["t"],
                      "output": {"path": out, "max_size_in_bytes": 10**8, "discard_fields": ["attributes"]}}
            if exclude:
                stream["filter"] = {"syntax": syntax, "exclude": exclude}
            if spans:
                stream["span_replacement"] = spans
            path = f"{root}/trap-{n}-{who}.yaml"
            with open(path, "w") as fh:
                yaml.safe_dump({"streams": [stream], "processes": 1}, fh)
            cmd = [args.dolma, "-c", path, "mix"] if who == "dolma" else [
                sys.executable, "-m", "dolma_pipeline.cli", "-c", path, "mix", "--debug"]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            texts = read_texts(out) if proc.returncode == 0 else {}
            error = [line for line in proc.stderr.splitlines() if "error" in line.lower()][-1:] if proc.returncode else []
            outcome[who] = {"exit": proc.returncode, "kept": sorted(texts),
                            "texts": {k: v for k, v in texts.items() if k == "zero_length_span"},
                            "error": error[0][:200] if error else ""}
        rows.append({"problem": problem, **outcome})
    return rows


def print_traps(rows: list[dict]) -> None:
    print("\nDolma's documented bugs, on tiny inputs (kept ids, or the error):")
    for row in rows:
        print(f"- {row['problem']}")
        for who in ("dolma", "ours"):
            r = row[who]
            what = f"exit {r['exit']}: {r['error']}" if r["exit"] else f"kept {r['kept']} {r['texts'] or ''}"
            print(f"    {who:<6} {what}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="/tmp/dolma-corpus/dolma/en/documents")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--dolma", default=os.path.join(os.environ.get("PEERS", "/tmp/peers"), "dolma-venv", "bin", "dolma"))
    parser.add_argument("--work", default="/tmp/mix_bench")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs per configuration (best is kept)")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--skip-jsonpath", action="store_true", help="skip the (slow) JSONPath runs")
    parser.add_argument("--traps-only", action="store_true", help="only run the Dolma-bug cases")
    parser.add_argument("--warm-ray", action="store_true",
                        help="also time ours on a Ray cluster started once beforehand (as with --ray_address)")
    parser.add_argument("--local", action="store_true", help="also time ours with `executor: local` (forked pool)")
    parser.add_argument("--single", action="store_true", help="also time both tools on one process")
    parser.add_argument("--gzip-level", type=int, default=None,
                        help="also time ours with this gzip level (both tools default to 6)")
    args = parser.parse_args(argv)
    peer = os.path.exists(args.dolma)
    if args.traps_only:
        if peer:
            print_traps(run_traps(args))
        return 0

    root, docs, shard_bytes = prepare(args)
    if not peer:
        print(f"dolma 1.2.1 not found at {args.dolma}: peer runs skipped (bash ../shared/bench/setup_peers.sh)")
    env = {"HF_HUB_OFFLINE": "1", "DOLMA_NO_PROGRESS": "1", "RAY_AUTH_MODE": "disabled"}
    results: dict[str, dict] = {}
    n = args.processes
    runs = [("dolma jq", "peer", "jq", False, n), ("dolma jsonpath", "peer", "jsonpath", False, n),
            ("ours jq", "ours", "jq", False, n), ("ours jsonpath", "ours", "jsonpath", False, n),
            ("ours typed rules", "ours", "jq", True, n)]
    if args.gzip_level:
        runs.append((f"ours jq gzip {args.gzip_level}", "ours", "jq", False, n))
    if args.single:  # one process each: per-core speed without Ray's start-up (ours runs with --debug)
        runs += [("dolma jq 1 proc", "peer", "jq", False, 1), ("ours jq 1 proc", "ours", "jq", False, 1),
                 ("dolma jsonpath 1 proc", "peer", "jsonpath", False, 1),
                 ("ours jsonpath 1 proc", "ours", "jsonpath", False, 1)]
    if args.local:  # ours on forked local processes (`executor: local`): no Ray start-up in the timing
        runs += [("ours jq local", "ours", "jq", False, n), ("ours jsonpath local", "ours", "jsonpath", False, n)]
    if args.warm_ray:  # ours on an already running Ray cluster (`ray_address`): no start-up in the timing
        runs += [("ours jq warm ray", "ours", "jq", False, n), ("ours jsonpath warm ray", "ours", "jsonpath", False, n)]
    runs = [r for r in runs if (r[1] == "ours" or peer) and not (args.skip_jsonpath and r[2] == "jsonpath")]
    warm = WarmRay(n) if args.warm_ray else None
    best: dict[str, float] = {}
    for _ in range(args.repeat):  # interleaved, so that load on a shared machine hits every tool alike
        for label, who, syntax, typed, procs in runs:
            out = os.path.join(args.work, "out", label.replace(" ", "_"))
            config = mix_config(root, out, syntax, procs, shard_bytes, typed)
            if "gzip" in label:
                config["streams"][0]["output"]["compression_level"] = args.gzip_level
            if label.endswith(" local"):
                config["executor"] = "local"
            config_path = os.path.join(args.work, f"{label.replace(' ', '_')}.yaml")
            with open(config_path, "w") as fh:
                yaml.safe_dump(config, fh, sort_keys=False)
            shutil.rmtree(out, ignore_errors=True)
            cmd = [args.dolma, "-c", config_path, "mix"] if who == "peer" else [
                sys.executable, "-m", "dolma_pipeline.cli", "-c", config_path, "mix"] + (["--debug"] if procs == 1 else [])
            seconds = run(cmd, {**env, "RAY_ADDRESS": warm.address} if "warm ray" in label else env)
            best[label] = min(best.get(label, seconds), seconds)
            results[label] = {"seconds": round(best[label], 2), "docs_per_s": round(docs / best[label], 1),
                              "out": out, "output_bytes": sum(os.path.getsize(p) for p in glob.glob(f"{out}/*.gz"))}
            print(f"{label:<22} {docs:>8,} docs in {seconds:6.2f}s = {docs / seconds:9,.0f} docs/s", flush=True)
    if warm is not None:
        warm.close()
    print("best of each:")
    for label, r in results.items():
        print(f"  {label:<22} {r['docs_per_s']:9,.0f} docs/s  ({r['output_bytes'] / 1e6:.1f} MB written)")

    if peer:
        for ours, theirs in (("ours jq", "dolma jq"), ("ours jsonpath", "dolma jsonpath"), ("ours jq", "dolma jsonpath"),
                             ("ours typed rules", "dolma jq"), ("ours jq 1 proc", "dolma jq 1 proc"),
                             ("ours jsonpath 1 proc", "dolma jsonpath 1 proc"), ("ours jq local", "dolma jq"),
                             ("ours jsonpath local", "dolma jsonpath"), ("ours jq warm ray", "dolma jq"),
                             ("ours jsonpath warm ray", "dolma jsonpath")):
            if ours not in results or theirs not in results:
                continue
            ratio = results[ours]["docs_per_s"] / results[theirs]["docs_per_s"]
            results[f"{ours} / {theirs}"] = round(ratio, 2)
            print(f"ratio {ours} / {theirs}: {ratio:.2f}x")
        if args.gzip_level:
            ratio = results[f"ours jq gzip {args.gzip_level}"]["docs_per_s"] / results["dolma jq"]["docs_per_s"]
            print(f"ratio ours jq gzip {args.gzip_level} / dolma jq (gzip 6): {ratio:.2f}x")
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
    if peer:
        results["traps"] = run_traps(args)
        print_traps(results["traps"])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"documents": docs, **results}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
