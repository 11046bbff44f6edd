"""Hostile input: each case ends within a stated bound of time and memory, with a clear error or a counted skip,
and the good documents beside it come through.

Cases: a 2 GB line (gzip), 4 GB gzip and zstd bombs without a newline, documents nested 300 and 100,000 deep,
and 200 KB minified or pathological lines through every tagger of the demo (configs/pipeline/demo.yaml). Each
run is a `dolma` subprocess; its peak RSS comes from `wait4`. Peers, like for like: the previous line
assembly (a copy of the pending line per 1 MB chunk) on a 256 MB line, and dolma 1.2.1's
`pii_regex_with_counts_fast_v2` on the 200 KB lines (stopped at --peer-cap seconds).

    python bench/hostile_bench.py [--line-gb 2] [--bomb-gb 4] [--workdir DIR] [--peer-cap 60] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from anywhere

import zstandard  # noqa: E402
from zlib_ng import zlib_ng as zlib  # noqa: E402

from dolma_pipeline.io import iter_raw_lines, write_jsonl  # noqa: E402

PEERS = os.environ.get("PEERS", "/tmp/peers")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUR_ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
PEER_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
DEMO_TAGGERS = ["ft_lang_id_en_doc_v2", "ft_lang_id_doc_v1", "pii_regex_with_counts_fast_v2", "gopher_v1", "c4_v2",
                "random_number_v1"]
GOOD_DOCS = 1000
MB = 1 << 20


def good_docs(prefix: str, n: int = GOOD_DOCS) -> list[dict]:
    return [{"id": f"{prefix}-{i}", "text": f"Document {i} is ordinary English prose about rivers and the sea. " * 3}
            for i in range(n)]


def good_line(doc_id: str) -> bytes:
    return json.dumps({"id": doc_id, "text": "A good document next to a hostile one."}).encode() + b"\n"


def gzip_member(data: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)  # deflate's best ratio on a run: about 1,000 to 1
    return comp.compress(data) + comp.flush()


def write_big_gz(path: str, head: bytes, size: int, tail: bytes) -> None:
    """`head`, then `size` bytes of 'a', then `tail`, as a multi-member gzip (one 64 MB member compressed once)."""
    block = gzip_member(b"a" * (64 * MB))
    with open(path, "wb") as out:
        out.write(gzip_member(head))
        for _ in range(size // (64 * MB)):
            out.write(block)
        out.write(gzip_member(b"a" * (size % (64 * MB)) + tail))


def write_zstd_bomb(path: str, size: int) -> None:
    with open(path, "wb") as out, zstandard.ZstdCompressor(level=1).stream_writer(out) as writer:
        block = b"a" * (64 * MB)
        for _ in range(size // len(block)):
            writer.write(block)


def run_measured(argv: list[str], timeout: float, env: dict | None = None) -> dict:
    """Run a command; its exit code, wall seconds, peak RSS (MB, from wait4) and output tail."""
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=log, stderr=log, env=OUR_ENV if env is None else env)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                status = -1
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
        log.seek(0)
        output = log.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status) if status != -1 else None
    return {"rc": code, "wall_s": round(wall, 2), "rss_mb": round(usage.ru_maxrss / 1024), "output": output}


def dolma(*args: str) -> list[str]:
    return [sys.executable, "-m", "dolma_pipeline.cli", *args]


def tag(root: str, policy: str, taggers: list[str] | None = None, *extra: str) -> list[str]:
    return dolma("tag", "--documents", f"{root}/documents/*", "--experiment", "e", "--taggers",
                 *(taggers or ["char_length_v1"]), "--debug", "--on_error", policy, *extra)


def rows_out(root: str) -> dict[str, int]:
    base = os.path.join(root, "attributes", "e")
    return {name: sum(1 for _ in iter_raw_lines(os.path.join(base, name)))
            for name in sorted(os.listdir(base)) if name.endswith((".gz", ".zst", ".jsonl")) and not name.startswith(".")} \
        if os.path.isdir(base) else {}


def summary(root: str) -> dict:
    path = os.path.join(root, "attributes", "e", "dolma_tag.summary.json")
    return json.load(open(path))["summary"] if os.path.exists(path) else {}


def result_line(result: dict, expect_error: str | None, root: str, expected_rows: dict[str, int]) -> tuple[str, str]:
    """(what happened, good documents through) for a tag run."""
    if expect_error is not None:
        found = next((line.strip() for line in result["output"].splitlines() if expect_error in line), None)
        found = found and found[found.find(expect_error):]
        return (f"exit {result['rc']}: {found[:110]}" if found and result["rc"] == 1 else
                f"UNEXPECTED exit {result['rc']}: {result['output'][-200:]}"), "-"
    if result["rc"] != 0:
        return f"UNEXPECTED exit {result['rc']}: {result['output'][-300:]}", "-"
    stats = summary(root)
    got = rows_out(root)
    ok = all(got.get(name) == n for name, n in expected_rows.items())
    through = f"{sum(got.get(n, 0) for n in expected_rows)}/{sum(expected_rows.values())}" + ("" if ok else " LOST")
    return f"exit 0, {stats.get('lines_skipped', 0)} line(s) skipped and counted", through


def case_dir(workdir: str, name: str) -> str:
    root = os.path.join(workdir, name)
    os.makedirs(os.path.join(root, "documents"), exist_ok=True)
    return root


def clear_outputs(root: str) -> None:
    import shutil

    shutil.rmtree(os.path.join(root, "attributes"), ignore_errors=True)


def bench(args: argparse.Namespace) -> list[dict]:
    rows: list[dict] = []
    cases = set(args.cases.split(","))

    def record(case: str, run: str, result: dict, outcome: str, through: str, bound: tuple[float, int]) -> None:
        within = result["rc"] is not None and result["wall_s"] <= bound[0] and result["rss_mb"] <= bound[1] \
            and not outcome.startswith("UNEXPECTED") and "LOST" not in through
        rows.append({"case": case, "run": run, "result": outcome, "good_docs": through, "wall_s": result["wall_s"],
                     "peak_rss_mb": result["rss_mb"], "bound": f"{bound[0]:g} s, {bound[1]} MB",
                     "within_bound": within})
        print(f"  {case} / {run}: {outcome} | {through} | {result['wall_s']} s | {result['rss_mb']} MB", flush=True)

    if "line" in cases:
        line_cases(args, record)
    if "bombs" in cases:
        bomb_cases(args, record)
    if "deep" in cases:
        deep_cases(args, record)
    if "minified" in cases:
        minified_cases(args, record)
    return rows


def line_cases(args: argparse.Namespace, record) -> None:
    workdir = args.workdir
    # 1. A 2 GB line between good documents (gzip), under the default max_line_bytes (64 MiB).
    line_bytes = int(args.line_gb * 1024) * MB
    root = case_dir(workdir, "line")
    big = os.path.join(root, "documents", "big.jsonl.gz")
    if not os.path.exists(big):
        write_big_gz(big, good_line("g1") + b'{"id": "big", "text": "', line_bytes, b'"}\n' + good_line("g3"))
        write_jsonl(os.path.join(root, "documents", "good.jsonl.gz"), good_docs("ok"))
    expected = {"good.jsonl.gz": GOOD_DOCS, "big.jsonl.gz": 2}
    for policy, bound in (("fail", (30, 1024)), ("skip_line", (120, 1024))):
        clear_outputs(root)
        result = run_measured(tag(root, policy), timeout=bound[0] * 4)
        outcome, through = result_line(result, "big.jsonl.gz:2: line longer than max_line_bytes" if policy == "fail"
                                       else None, root, expected)
        record(f"{args.line_gb:g} GB line", f"tag --on_error {policy}", result, outcome, through, bound)

    # 1b. The same line assembled whole (bound raised above it): linear time, about twice the line in memory.
    if not args.no_assembly:
        script = ("import sys; from dolma_pipeline.io import iter_lines; "
                  "print([len(x) for x in iter_lines(sys.argv[1], 3 << 30)])")
        result = run_measured([sys.executable, "-c", script, big], timeout=600)
        lengths = result["output"].strip().splitlines()[-1] if result["output"].strip() else "?"
        record(f"{args.line_gb:g} GB line", "assembled whole (max_line_bytes 3 GiB)", result,
               f"line lengths {lengths[:60]}", "-", (120, int(2.6 * line_bytes / MB) + 300))
    peer_assembly(args, record)



def bomb_cases(args: argparse.Namespace, record) -> None:
    workdir = args.workdir
    # 2. Bombs without any newline: gzip (multi-member) and zstd, beside a file of good documents.
    bomb_bytes = int(args.bomb_gb * 1024) * MB
    for kind in ("gz", "zst"):
        root = case_dir(workdir, f"bomb_{kind}")
        path = os.path.join(root, "documents", f"bomb.jsonl.{kind}")
        if not os.path.exists(path):
            write_big_gz(path, b"", bomb_bytes, b"") if kind == "gz" else write_zstd_bomb(path, bomb_bytes)
            write_jsonl(os.path.join(root, "documents", "good.jsonl.gz"), good_docs("ok"))
        compressed = os.path.getsize(path)
        for policy, bound in (("fail", (30, 1024)), ("skip_line", (240, 1024))):
            clear_outputs(root)
            result = run_measured(tag(root, policy), timeout=bound[0] * 4)
            outcome, through = result_line(result, f"bomb.jsonl.{kind}:1: line longer than max_line_bytes"
                                           if policy == "fail" else None, root, {"good.jsonl.gz": GOOD_DOCS})
            record(f"{kind} bomb, {args.bomb_gb:g} GB from {compressed >> 10} KB", f"tag --on_error {policy}",
                   result, outcome, through, bound)



def deep_cases(args: argparse.Namespace, record) -> None:
    workdir = args.workdir
    # 3. Documents nested 300 and 100,000 deep between good ones: tag (both policies) and mix.
    root = case_dir(workdir, "deep")
    with open(os.path.join(root, "documents", "deep.jsonl"), "wb") as out:
        for depth, doc_id in ((300, "d300"), (100_000, "d100k")):
            out.write(good_line(f"before-{doc_id}"))
            out.write(f'{{"id": "{doc_id}", "text": "t", "m": '.encode() + b"[" * depth + b"]" * depth + b"}\n")
        out.write(good_line("last"))
    write_jsonl(os.path.join(root, "documents", "good.jsonl.gz"), good_docs("ok"))
    for policy, message in (("fail", "deep.jsonl:2: JSON nested deeper than 254 levels"), ("skip_line", None)):
        clear_outputs(root)
        result = run_measured(tag(root, policy), timeout=120)
        outcome, through = result_line(result, message, root, {"good.jsonl.gz": GOOD_DOCS, "deep.jsonl": 3})
        record("300 / 100,000 deep", f"tag --on_error {policy}", result, outcome, through, (30, 1024))
    mix_yaml = os.path.join(root, "mix.yaml")
    with open(mix_yaml, "w") as fh:
        json.dump({"streams": [{"name": "s", "documents": [f"{root}/documents/deep.jsonl"],
                                "filter": {"syntax": "jq", "exclude": ["[..] | length > 1000"]},
                                "output": {"path": f"{root}/mixed"}}], "debug": True}, fh)
    result = run_measured(dolma("-c", mix_yaml, "mix"), timeout=120)
    outcome, _ = result_line(result, "deep.jsonl:2: JSON nested deeper than 254 levels", root, {})
    record("300 / 100,000 deep", "mix (jq `..` filter)", result, outcome, "-", (30, 1024))



def minified_cases(args: argparse.Namespace, record) -> None:
    workdir = args.workdir
    # 4. 200 KB minified and pathological lines through every tagger of the demo.
    root = case_dir(workdir, "minified")
    hostile = hostile_texts()
    write_jsonl(os.path.join(root, "documents", "hostile.jsonl.gz"),
                [{"id": name, "text": text} for name, text in hostile.items()])
    write_jsonl(os.path.join(root, "documents", "good.jsonl.gz"), good_docs("ok"))
    clear_outputs(root)
    result = run_measured(tag(root, "fail", DEMO_TAGGERS, "--tagger_options.ft_lang_id_doc_v1.threshold", "0.05"),
                          timeout=600)
    outcome, through = result_line(result, None, root, {"good.jsonl.gz": GOOD_DOCS, "hostile.jsonl.gz": len(hostile)})
    record(f"{len(hostile)} lines of 200 KB", "tag, the demo's 6 taggers", result,
           outcome.replace("0 line(s) skipped and counted", "every line tagged"), through, (120, 2048))
    per_tagger(args, hostile, record)
    peer_pii(args, hostile, record)


def hostile_texts() -> dict[str, str]:
    n = 200_000
    return {
        "minified_js_ending_in_address": ("a.b(c,d);if(e){f=g[0]}else{h=1};" * (n // 33)) + "u@v.org",
        "word_then_at": "x" * n + "@",
        "dots_then_at": "." * n + "@",
        "spaces_then_digits": " " * n + "1234567890",
        "at_pairs": "a@" * (n // 2),
        "minified_json_ips": '{"ip":"10.0.0.1","k":[1,2,3]},' * (n // 31),
    }


ASSEMBLY = """
import sys, time
from dolma_pipeline.lines import split_lines

def previous(chunks):  # the line assembly before the fix: the pending line copied with every chunk
    pending = b""
    for chunk in chunks:
        parts = (pending + chunk).split(b"\\n")
        pending = parts.pop()
        yield from parts

size = int(sys.argv[2])
chunks = [b"a" * (1 << 20)] * size + [b"\\n"]
assemble = previous if sys.argv[1] == "previous" else (lambda c: split_lines(c, 1 << 40))
started = time.process_time()
lines = list(assemble(chunks))
assert [len(x) for x in lines] == [size << 20]
print(round(time.process_time() - started, 2))
"""


def peer_assembly(args, record) -> None:
    """Ours vs the previous line assembly on the same 1 MB chunks (in a subprocess each, like for like)."""
    for size in (64, 256):
        for who in ("ours", "previous"):
            result = run_measured([sys.executable, "-c", ASSEMBLY, who, str(size)], timeout=args.peer_cap)
            last = result["output"].strip().splitlines()[-1] if result["output"].strip() else ""
            outcome = (f"stopped after {args.peer_cap:g} s" if result["rc"] is None else
                       f"{last} CPU s" if result["rc"] == 0 else f"UNEXPECTED exit {result['rc']}: {result['output'][-200:]}")
            record(f"{size} MB line in 1 MB chunks", f"line assembly, {who}", result, outcome, "-",
                   (10, 3 * size + 200) if who == "ours" else (args.peer_cap, 10**6))


TAGGER_TIMES = """
import json, sys, time
from dolma_pipeline.documents import Document
from dolma_pipeline.tagger import build_taggers
texts = json.load(open(sys.argv[1]))
out = {}
for name in sys.argv[2:]:
    options = {"ft_lang_id_doc_v1": {"threshold": 0.05}}.get(name, {})
    (tagger,) = build_taggers([name], {name: options} if options else {})
    tagger.predict_batch([Document.from_fields("warm", "warm up")])
    worst = 0.0
    for doc_id, text in texts.items():
        started = time.process_time()
        tagger.predict_batch([Document.from_fields(doc_id, text)])
        worst = max(worst, time.process_time() - started)
    out[name] = round(worst, 3)
print(json.dumps(out))
"""


def per_tagger(args, hostile: dict[str, str], record) -> None:
    """The slowest of the 200 KB lines under each demo tagger alone (CPU seconds per document)."""
    path = os.path.join(args.workdir, "hostile_texts.json")
    with open(path, "w") as fh:
        json.dump(hostile, fh)
    result = run_measured([sys.executable, "-c", TAGGER_TIMES, path, *DEMO_TAGGERS], timeout=600)
    try:
        worst = json.loads(result["output"].strip().splitlines()[-1])
    except (ValueError, IndexError):
        record("200 KB lines, per tagger", "all", result, f"UNEXPECTED: {result['output'][-300:]}", "-", (120, 2048))
        return
    for name, cpu in worst.items():
        record("200 KB lines, per tagger", name, {**result, "wall_s": cpu}, f"slowest line {cpu} CPU s", "-",
               (5, 2048))


def peer_pii(args, hostile: dict[str, str], record) -> None:
    """dolma 1.2.1's pii_regex_with_counts_fast_v2 (its own code) on the same texts, stopped at --peer-cap."""
    python = os.path.join(PEERS, "dolma-venv", "bin", "python")
    if not os.path.exists(python):
        print(f"  (no dolma peer at {python}; skipped)")
        return
    ours = ("import sys, time, json; from dolma_pipeline.documents import Document; "
            "from taggers.pii import DolmaFastPiiRegex as T; t = T(); text = json.load(open(sys.argv[1]))[sys.argv[2]]; "
            "s = time.process_time(); n = len(t.predict(Document.from_fields('x', text))) - 2; "
            "print(n, round(time.process_time() - s, 3))")
    peer = ("import sys, time, json; from dolma.core.data_types import Document; "
            "from dolma.taggers.pii import FastPiiRegex as T; t = T(); text = json.load(open(sys.argv[1]))[sys.argv[2]]; "
            "s = time.process_time(); r = t.predict(Document(source='s', id='x', text=text)); "
            "print(sum(1 for x in r.spans if x.type.isupper()), round(time.process_time() - s, 3))")
    path = os.path.join(args.workdir, "hostile_texts.json")
    with open(path, "w") as fh:
        json.dump(hostile, fh)
    for name in hostile:
        for who, py, script in (("ours", sys.executable, ours), ("dolma 1.2.1", python, peer)):
            result = run_measured([py, "-c", script, path, name], timeout=args.peer_cap,
                                  env=PEER_ENV if who != "ours" else None)
            last = result["output"].strip().splitlines()[-1] if result["output"].strip() else ""
            if result["rc"] is None:
                outcome = f"stopped after {args.peer_cap:g} s"
            elif result["rc"] == 0:
                spans, cpu = last.split()
                outcome = f"{spans} PII spans, {cpu} CPU s"
            else:
                outcome = f"UNEXPECTED exit {result['rc']}: {result['output'][-200:]}"
            record(f"pii_regex_with_counts_fast_v2 on {name}", who, result, outcome, "-",
                   (args.peer_cap, 10**6) if who != "ours" else (10, 1024))


def print_table(rows: list[dict]) -> None:
    print()
    print("| case | run | result | good docs through | wall s | peak RSS MB | bound | within |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['run']} | {r['result']} | {r['good_docs']} | {r['wall_s']} | "
              f"{r['peak_rss_mb'] or '-'} | {r['bound']} | {'yes' if r['within_bound'] else 'NO'} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--line-gb", type=float, default=2.0)
    parser.add_argument("--bomb-gb", type=float, default=4.0)
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "hostile_bench"))
    parser.add_argument("--peer-cap", type=float, default=60.0, help="seconds before a peer run is stopped")
    parser.add_argument("--no-assembly", action="store_true", help="skip assembling the whole line (~2x its size in RAM)")
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--cases", default="line,bombs,deep,minified", help="comma-separated subset")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    os.environ.setdefault("DOLMA_NO_PROGRESS", "1")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    rows = bench(args)
    print_table(rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"machine": f"{os.cpu_count()} CPUs", "rows": rows}, fh, indent=2)
    return 0 if all(r["within_bound"] for r in rows if "dolma" not in r["run"] and "previous" not in r["run"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
