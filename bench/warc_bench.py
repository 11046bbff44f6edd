"""`dolma warc` throughput, text parity and extraction quality against dolma 1.2.1 and datatrove 0.10.1.

The WARC files are built once from real HTML on this machine (the standard library rendered by pydoc and
the Debian documentation packages installed under /usr/share/doc/*/html), written with warcio, one gzip
member per record as Common Crawl ships them. Each tool runs as a subprocess on the same files with the
same process count; wall time includes start-up. Rows:

- resiliparse: ours (`dolma warc`, default executor) vs dolma 1.2.1's `dolma warc` (same linearizer
  and options); documents written per second of wall time and per CPU-second (CPU summed over every
  process of the run: on a shared machine the wall time mostly measures the other users);
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


def _tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds (user + system) of `root` and every process under it, from /proc."""
    parent, cpu = {}, {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {root}, [root]
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, ppid in parent.items():
        children[ppid].append(pid)
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in tree:
                tree.add(child)
                frontier.append(child)
    return {pid: cpu[pid] for pid in tree if pid in cpu}


def timed(command: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the command and every process under it, output tail); exits on failure.

    CPU is sampled from the process tree every 0.2 s (the last sample of each process counts): pool
    workers that a forkserver or a sandbox starts are not waited for by the command itself, so they are
    missing from its rusage.
    """
    env = dict(os.environ, DOLMA_NO_PROGRESS="1", **(env or {}))
    cpu: dict[int, float] = {}
    with tempfile.TemporaryFile("w+") as output:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True, env=env)
        while process.poll() is None:
            cpu.update(_tree_cpu(process.pid))
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        output.seek(0)
        tail = output.read()[-3000:]
    if process.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{tail}")
    return seconds, sum(cpu.values()), tail


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

    print(f"{'run':<22} {'wall s':>8} {'CPU s':>8} {'docs':>7} {'docs/s':>8} {'docs/CPU-s':>10} {'token F1':>9}")
    for name, r in results.items():
        if name == "parity":
            continue
        r["docs_per_second"] = r["documents"] / r["wall"]
        r["docs_per_cpu_second"] = r["documents"] / max(r["cpu"], 1e-9)
        r["f1"], r["f1_pages"] = quality(r["texts"], sources)
        print(f"{name:<22} {r['wall']:>8.1f} {r['cpu']:>8.1f} {r['documents']:>7,} {r['docs_per_second']:>8.1f} "
              f"{r['docs_per_cpu_second']:>10.1f} {r['f1']:>9.3f}")
    ratios = {}

    def ratio(name: str, ours_key: str, peer_key: str) -> None:
        """Documents written per second (and per CPU-second): ours over the peer's."""
        ours_r, peer = results[ours_key], results[peer_key]
        ratios[name] = (ours_r["documents"] / ours_r["wall"]) / (peer["documents"] / peer["wall"])
        ratios[name + "_cpu"] = (ours_r["documents"] / ours_r["cpu"]) / (peer["documents"] / peer["cpu"])

    if "dolma_resiliparse" in results:
        ratio("resiliparse_vs_dolma", "ours_resiliparse", "dolma_resiliparse")
        p = results["parity"]
        print(f"parity with dolma (resiliparse): {p['identical']:,} of {p['dolma_documents']:,} identical "
              f"({100 * p['share']:.2f}%); dolma also wrote {p['dolma_empty_text_documents']} empty-text documents")
    for mode in ("matched",):
        if f"datatrove_{mode}" in results and "ours_trafilatura" in results:
            ratio(f"trafilatura_vs_datatrove_{mode}", "ours_trafilatura", f"datatrove_{mode}")
    for name, value in ratios.items():
        print(f"ratio {name}: {value:.2f}x ({'CPU seconds' if name.endswith('_cpu') else 'wall time'})")
    if args.json:
        for r in results.values():
            r.pop("texts", None)
        json.dump({"pages": pages, "processes": args.processes, "results": results, "ratios": ratios,
                   "cpus": os.cpu_count()}, open(args.json, "w"), indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
