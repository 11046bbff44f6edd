"""`dolma warc` throughput, text parity and extraction quality against dolma 1.2.1 and datatrove 0.10.1.

The WARC files are built once from real HTML on this machine (the standard library rendered by pydoc and
the Debian documentation packages installed under /usr/share/doc/*/html), written with warcio, one gzip
member per record as Common Crawl ships them. Each tool runs as a subprocess on the same files with the
same process count; wall time includes start-up. Rows:

- resiliparse: ours (`dolma warc`, default executor) vs dolma 1.2.1's `dolma warc` (same linearizer
  and options), pages/s = HTML response records in the input / wall seconds;
- parity: our text equals dolma's on what share of the records where dolma produced a document (matched
  by URL);
- trafilatura: ours `--linearizer trafilatura` vs datatrove's `WarcReader` + `Trafilatura` + `JsonlWriter`
  on a LocalPipelineExecutor with as many workers, trafilatura options set as ours (no precision bias, no
  deduplication, no tables, a timeout no page reaches: datatrove's default 1 s timeout dropped every page
  on this shared machine);
- quality: token F1 of each output against the page's source text, for the Sphinx pages that ship it
  (`_sources/<page>.rst.txt`, or `.txt`), averaged over pages.

    python bench/warc_bench.py [--files 4] [--processes 2] [--limit 400] [--skip datatrove] [--json out.json]

Peers: $PEERS (default /tmp/peers): dolma-venv (dolma[warc,resiliparse,trafilatura]==1.2.1 and
lxml_html_clean) and dt-venv (datatrove[processing,io]==0.10.1 and lxml_html_clean).
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
PEERS = os.environ.get("PEERS", "/tmp/peers")
OURS = os.path.join(REPO, ".venv", "bin", "dolma")
if not os.path.exists(OURS):
    OURS = os.path.join(os.path.dirname(sys.executable), "dolma")
WORD = re.compile(r"\w+")

DATATROVE = """
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.writers import JsonlWriter

if __name__ == "__main__":
    src, out, logs, workers, tasks, mode = sys.argv[1:7]
    options = {} if mode == "defaults" else dict(favour_precision=False, deduplicate=False, include_tables=False,
                                                  timeout=600)
    LocalPipelineExecutor(pipeline=[WarcReader(src, glob_pattern="*.warc.gz"), Trafilatura(**options),
                                    JsonlWriter(out)],
                          tasks=int(tasks), workers=int(workers), logging_dir=logs).run()
"""


def build_warcs(directory: str, files: int, limit: int | None) -> dict[str, str | None]:
    """WARC files under `directory` (made once) and {url: path of the page's source text or None}."""
    from dolma_pipeline.warc.sample import chunks, debian_doc_roots, html_files, pydoc_pages, write_warc

    manifest_path = os.path.join(directory, "sources.json")
    if os.path.exists(manifest_path):
        return json.load(open(manifest_path))
    pages = pydoc_pages()
    sources: dict[str, str | None] = {p.url: None for p in pages}
    for root, host in debian_doc_roots():
        for page in html_files(root, host, limit):
            rel = page.url.split("/", 3)[3][: -len(".html")]
            found = [p for p in (f"{root}/_sources/{rel}.rst.txt", f"{root}/_sources/{rel}.txt") if os.path.exists(p)]
            sources[page.url] = found[0] if found else None
            pages.append(page)
    os.makedirs(directory, exist_ok=True)
    for n, part in enumerate(chunks(pages, files)):
        write_warc(os.path.join(directory, f"web-{n:05d}.warc.gz"), part)
    json.dump(sources, open(manifest_path, "w"))
    return sources


def timed(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the command and its children, output tail); exits on failure."""
    env = dict(os.environ, DOLMA_NO_PROGRESS="1", RAY_AUTH_MODE="disabled", **(env or {}))
    with tempfile.TemporaryFile("w+") as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        output.seek(0)
        tail = output.read()[-3000:]
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{tail}")
    return seconds, usage.ru_utime + usage.ru_stime, tail


def read_jsonl(pattern: str) -> list[dict]:
    rows = []
    for path in sorted(glob.glob(pattern, recursive=True)):
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as fh:
            rows.extend(json.loads(line) for line in fh if line.strip())
    return rows


def f1(text: str, reference: str) -> float:
    got, want = collections.Counter(WORD.findall(text.lower())), collections.Counter(WORD.findall(reference.lower()))
    common = sum((got & want).values())
    if not common:
        return 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def quality(texts: dict[str, str], sources: dict[str, str | None]) -> tuple[float, int]:
    """Mean token F1 over pages with a source text (a page a tool did not output scores 0)."""
    scores = [f1(texts.get(url, ""), open(path, encoding="utf-8", errors="replace").read())
              for url, path in sources.items() if path]
    return (sum(scores) / len(scores) if scores else 0.0), len(scores)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="/tmp/warc-bench")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--limit", type=int, default=None, help="pages per Debian package (default: all)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--executor", default=None, help="ours: --executor (default: the command's default)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["dolma", "datatrove", "trafilatura"])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    warcs = os.path.join(args.workdir, "warc")
    sources = build_warcs(warcs, args.files, args.limit)
    pages = len(sources)
    size = sum(os.path.getsize(p) for p in glob.glob(os.path.join(warcs, "*.warc.gz")))
    print(f"input: {pages:,} HTML pages in {args.files} WARC files ({size / 1e6:.1f} MB), "
          f"{sum(1 for p in sources.values() if p):,} with their source text; {args.processes} processes")
    results: dict[str, dict] = {}
    ours_extra = ["--executor", args.executor] if args.executor else []

    def ours(linearizer: str) -> dict:
        out = os.path.join(args.workdir, f"ours-{linearizer}")
        shutil.rmtree(out, ignore_errors=True)
        wall, cpu, tail = timed([OURS, "warc", "--documents", warcs + "/*.warc.gz", "--destination", out,
                                 "--source_name", "web", "--linearizer", linearizer,
                                 "--processes", str(args.processes), *ours_extra])
        docs = read_jsonl(out + "/*.jsonl.gz")
        return {"wall": wall, "cpu": cpu, "documents": len(docs), "texts": {d["metadata"]["url"]: d["text"] for d in docs}}

    results["ours_resiliparse"] = ours("resiliparse")
    if "dolma" not in args.skip:
        out = os.path.join(args.workdir, "dolma-resiliparse")
        shutil.rmtree(out, ignore_errors=True)
        wall, cpu, _ = timed([os.path.join(PEERS, "dolma-venv", "bin", "dolma"), "warc", "--documents",
                              warcs + "/*.warc.gz", "--destination", out, "--source_name", "web",
                              "--linearizer", "resiliparse", "--processes", str(args.processes)])
        docs = read_jsonl(out + "/**/*.jsonl.gz")
        texts = {}
        for d in docs:
            url = d["metadata"]["warc_url"]
            texts[url] = d["text"]
        results["dolma_resiliparse"] = {"wall": wall, "cpu": cpu, "documents": len(docs), "texts": texts}
        mine = results["ours_resiliparse"]["texts"]
        empty = [url for url, text in texts.items() if not text.strip()]  # we count these as empty_text
        texts = {url: text for url, text in texts.items() if text.strip()}
        same = sum(1 for url, text in texts.items() if mine.get(url) == text)
        results["parity"] = {"dolma_documents": len(texts), "identical": same, "share": same / max(1, len(texts)),
                             "dolma_empty_text_documents": len(empty),
                             "differ": sorted(url for url, text in texts.items() if mine.get(url) != text)[:20]}
    if "trafilatura" not in args.skip:
        results["ours_trafilatura"] = ours("trafilatura")
    if "datatrove" not in args.skip:
        for mode in ("matched",):  # datatrove's defaults (1 s timeout) dropped every page on a loaded machine
            out = os.path.join(args.workdir, f"datatrove-{mode}")
            shutil.rmtree(out, ignore_errors=True)
            script = os.path.join(args.workdir, "datatrove_warc.py")
            with open(script, "w") as fh:
                fh.write(DATATROVE)
            wall, cpu, _ = timed([os.path.join(PEERS, "dt-venv", "bin", "python"), script, warcs, out + "/out",
                                  out + "/logs", str(args.processes), str(args.files), mode])
            docs = read_jsonl(out + "/out/*.jsonl.gz")
            if not docs:
                raise SystemExit(f"datatrove wrote no documents; see {out}/logs")
            results[f"datatrove_{mode}"] = {"wall": wall, "cpu": cpu, "documents": len(docs),
                                            "texts": {d["metadata"]["url"]: d["text"] for d in docs}}

    print(f"{'run':<22} {'wall s':>8} {'CPU s':>8} {'docs':>7} {'pages/s':>9} {'token F1':>9}")
    for name, r in results.items():
        if name == "parity":
            continue
        r["pages_per_second"] = pages / r["wall"]
        r["f1"], r["f1_pages"] = quality(r["texts"], sources)
        print(f"{name:<22} {r['wall']:>8.1f} {r['cpu']:>8.1f} {r['documents']:>7,} {r['pages_per_second']:>9.1f} "
              f"{r['f1']:>9.3f}")
    ratios = {}
    if "dolma_resiliparse" in results:
        ratios["resiliparse_vs_dolma"] = results["dolma_resiliparse"]["wall"] / results["ours_resiliparse"]["wall"]
        p = results["parity"]
        print(f"parity with dolma (resiliparse): {p['identical']:,} of {p['dolma_documents']:,} identical "
              f"({100 * p['share']:.2f}%); dolma also wrote {p['dolma_empty_text_documents']} empty-text documents")
    for mode in ("matched",):
        if f"datatrove_{mode}" in results and "ours_trafilatura" in results:
            ratios[f"trafilatura_vs_datatrove_{mode}"] = (results[f"datatrove_{mode}"]["wall"]
                                                          / results["ours_trafilatura"]["wall"])
    for name, ratio in ratios.items():
        print(f"ratio {name}: {ratio:.2f}x")
    if args.json:
        for r in results.values():
            r.pop("texts", None)
        json.dump({"pages": pages, "processes": args.processes, "results": results, "ratios": ratios,
                   "cpus": os.cpu_count()}, open(args.json, "w"), indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
