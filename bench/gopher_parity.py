"""Parity of `gopher_v1`, `c4_v2` (and `pii_regex_with_counts_fast_v2`) with dolma 1.2.1 on the same corpus.

Runs `dolma tag` of this project and of dolma 1.2.1 on copies of the same documents (see tag_bench.py),
then compares the attribute files document by document: a document agrees for a tagger when both give the
same keys, the same spans and scores within `--tolerance` (1e-4). Prints the share of agreeing documents
per tagger (target >= 99.9%) and lists the others with the keys that differ.

    python bench/gopher_parity.py [--files 0] [--processes 2]
"""

from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tag_bench import DEFAULT_DOCUMENTS, DEFAULT_OURS, DEFAULT_PEER, make_copy, run_tag, select_files  # noqa: E402

TAGGERS = ["gopher_v1", "c4_v2", "pii_regex_with_counts_fast_v2"]
EXPERIMENT = "parity"


def read_attributes(root: str) -> dict[str, dict[str, list]]:
    rows: dict[str, dict[str, list]] = {}
    for path in sorted(glob.glob(os.path.join(root, "attributes", EXPERIMENT, "*.jsonl.gz"))):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                rows[f"{os.path.basename(path)}:{row['id']}"] = row["attributes"]
    return rows


def differing_keys(ours: dict[str, list], peer: dict[str, list], tagger: str, tolerance: float) -> list[str]:
    prefix = f"{EXPERIMENT}__{tagger}__"
    keys = {k for k in ours if k.startswith(prefix)} | {k for k in peer if k.startswith(prefix)}
    bad = []
    for key in sorted(keys):
        a, b = ours.get(key, []), peer.get(key, [])
        if len(a) != len(b) or any(x[0] != y[0] or x[1] != y[1] or abs(x[2] - y[2]) > tolerance
                                   for x, y in zip(a, b)):
            bad.append(key[len(prefix):])
    return bad


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--documents", default=DEFAULT_DOCUMENTS)
    p.add_argument("--files", type=int, default=0, help="use the first N files (0: all)")
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--ours", default=DEFAULT_OURS)
    p.add_argument("--peer", default=DEFAULT_PEER)
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--show", type=int, default=20, help="list at most this many differing documents per tagger")
    p.add_argument("--workdir", help="keep copies and attributes here (default: a temporary directory)")
    args = p.parse_args()
    if not os.path.exists(args.peer):
        print(f"peer {args.peer} not found: nothing to compare (install with ../shared/bench/setup_peers.sh)")
        return 0
    paths = select_files(args.documents, args.files)
    workdir = args.workdir or tempfile.mkdtemp(prefix="gopher_parity_")
    attributes = {}
    for label, executable in (("ours", args.ours), ("peer", args.peer)):
        root = os.path.join(workdir, label)
        documents_glob = make_copy(paths, root)
        seconds, status, tail = run_tag(executable, documents_glob, TAGGERS, args.processes, EXPERIMENT)
        if status != 0:
            print(f"{label} failed (exit {status}):\n{tail}")
            return 1
        print(f"{label}: tagged in {seconds:.1f} s")
        attributes[label] = read_attributes(root)
    ours, peer = attributes["ours"], attributes["peer"]
    if ours.keys() != peer.keys():
        print(f"document sets differ: {len(ours)} ours vs {len(peer)} peer")
        return 1
    texts = {}
    ok = True
    for tagger in TAGGERS:
        differing = {doc: keys for doc in ours if (keys := differing_keys(ours[doc], peer[doc], tagger, args.tolerance))}
        share = 1 - len(differing) / max(len(ours), 1)
        target = tagger != "pii_regex_with_counts_fast_v2"
        ok = ok and (share >= 0.999 or not target)
        print(f"{tagger}: {len(ours) - len(differing)}/{len(ours)} documents agree within {args.tolerance:g} "
              f"({share:.4%}){' (target >= 99.9%)' if target else ''}")
        if differing and not texts:
            texts = load_texts(paths)
        for doc, keys in list(differing.items())[: args.show]:
            text = texts.get(doc, "")
            note = " [text contains U+0130: dolma's c4_v2 offsets drift after str.lower()]" if "\u0130" in text else ""
            print(f"  {doc}: {', '.join(keys)}{note}")
            for key in keys[:2]:
                full = f"{EXPERIMENT}__{tagger}__{key}"
                print(f"    {key}: ours {str(ours[doc].get(full))[:120]} | dolma {str(peer[doc].get(full))[:120]}")
    print(f"workdir: {workdir}")
    return 0 if ok else 1


def load_texts(paths: list[str]) -> dict[str, str]:
    texts = {}
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                texts[f"{os.path.basename(path)}:{row['id']}"] = row["text"]
    return texts


if __name__ == "__main__":
    sys.exit(main())
