"""fastText classifier tagging: this project against dolma 1.2.1, same model, same documents, same processes.

The model is trained here with `dolma train-classifier` on the benchmark corpus itself (labels from the
`source` field: prose sources against reference works), unless `--model` names one. Dolma tags with
its jigsaw tagger class loaded with that local model through a `--tagger_modules` subclass (its own
weights live on a host this machine cannot reach); we tag with `jigsaw_hatespeech_document_v2` /
`jigsaw_hatespeech_sentence_v2` and `model_path`. Both commands are timed whole (start-up and model
loading included); then every document's attribute values are compared (parity within 1e-5).

    python bench/classifier_bench.py --mode document sentence [--files 1] [--processes 2] [--rounds 3]

With `--rounds N` each mode is timed N times (ours, then dolma, each round, each on a fresh copy) and the
median and best ratios are printed; parity is checked on the first round.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tag_bench import DEFAULT_DOCUMENTS, DEFAULT_OURS, count_documents, make_copy, run_tag_timed, select_files  # noqa: E402

PEERS = os.environ.get("PEERS", "/tmp/peers")
PEER_MODULE = '''
import os
from dolma.core.ft_tagger import BaseFastTextTagger
from dolma.core.registry import TaggerRegistry
from dolma.taggers.jigsaw import FastTextJigsawHatespeechDocumentTagger

MODEL = os.environ["BENCH_CLASSIFIER_MODEL"]


@TaggerRegistry.add("bench_classifier_document")
class LocalDocument(FastTextJigsawHatespeechDocumentTagger):
    def __init__(self):
        BaseFastTextTagger.__init__(self, model_path=MODEL, model_mode=self.DOCUMENT_LEVEL_TAGGER)


@TaggerRegistry.add("bench_classifier_sentence")
class LocalSentence(FastTextJigsawHatespeechDocumentTagger):
    def __init__(self):
        BaseFastTextTagger.__init__(self, model_path=MODEL, model_mode=self.SENTENCE_LEVEL_TAGGER)
'''
OURS = {"document": "jigsaw_hatespeech_document_v2", "sentence": "jigsaw_hatespeech_sentence_v2"}
PROSE = ["brown-corpus", "world-english-bible", "fortunes-en", "devils-dictionary"]
REFERENCE = ["gcide", "foldoc", "jargon", "linux-docs"]


def train_model(documents: list[str], workdir: str, ours: str) -> str:
    """A bigram classifier (prose vs reference sources) trained by our command on the benchmark files."""
    out = os.path.join(workdir, "model")
    command = [ours, "train-classifier", "--documents", *documents, "--label_field.field", "source",
               *[f"--label_field.map.{s}=prose" for s in PROSE], *[f"--label_field.map.{s}=reference" for s in REFERENCE],
               "--output", out, "--fasttext.dim", "64", "--fasttext.bucket", "200000", "--fasttext.epoch", "5"]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return os.path.join(out, "model.bin")


COMPILE = ("import compileall, os, dolma_pipeline, taggers\n"
           "for m in (dolma_pipeline, taggers): compileall.compile_dir(os.path.dirname(m.__file__), quiet=1)")


def byte_compile(ours: str) -> None:
    """Byte-compile the sources our command imports, as installing a package does (dolma's site-packages
    hold their .pyc files); else a PYTHONDONTWRITEBYTECODE environment compiles them in every timed run."""
    python = os.path.join(os.path.dirname(ours), "python")
    subprocess.run([python if os.path.exists(python) else sys.executable, "-c", COMPILE], check=True)


def read_attributes(root: str) -> dict[str, dict[str, list]]:
    out: dict[str, dict[str, list]] = {}
    for dirpath, _, files in os.walk(root):
        for name in sorted(files):
            if name.endswith(".jsonl.gz") and not name.startswith("."):
                with gzip.open(os.path.join(dirpath, name), "rt") as fh:
                    for line in fh:
                        row = json.loads(line)
                        # key by the label part only: `{exp}__{tagger}____label__x` -> `__label__x`
                        out[row["id"]] = {k.split("____", 1)[1]: v for k, v in row["attributes"].items()}
    return out


def parity(ours: dict, theirs: dict, tolerance: float = 1e-5) -> tuple[int, int, float]:
    """(documents compared, documents whose every span and value agree within `tolerance`, largest difference)."""
    same, worst = 0, 0.0
    for doc_id, attributes in theirs.items():
        mine = ours.get(doc_id, {})
        ok = set(mine) == set(attributes)
        for key, spans in attributes.items():
            other = mine.get(key, [])
            if len(other) != len(spans):
                ok = False
                continue
            for (s1, e1, v1), (s2, e2, v2) in zip(spans, other):
                worst = max(worst, abs(v1 - v2))
                ok = ok and (s1, e1) == (s2, e2) and abs(v1 - v2) <= tolerance + 1e-12
        same += ok
    return len(theirs), same, worst


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", nargs="+", default=["document", "sentence"], choices=list(OURS))
    p.add_argument("--documents", default=DEFAULT_DOCUMENTS)
    p.add_argument("--files", type=int, default=1)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--model", help="a fastText classifier (default: train one here)")
    p.add_argument("--ours", default=DEFAULT_OURS)
    p.add_argument("--peer", default=os.path.join(PEERS, "dolma-venv", "bin", "dolma"))
    p.add_argument("--keep", help="work in this directory instead of a temporary one")
    p.add_argument("--rounds", type=int, default=1, help="timed rounds per mode (ours, then dolma, each round)")
    args = p.parse_args()
    paths = select_files(args.documents, args.files)
    n_docs = count_documents(paths)
    workdir = args.keep or tempfile.mkdtemp(prefix="classifier_bench_")
    os.makedirs(workdir, exist_ok=True)
    try:
        model = args.model or train_model(paths, workdir, args.ours)
        module = os.path.join(workdir, "bench_classifier_peer.py")
        with open(module, "w") as fh:
            fh.write(PEER_MODULE)
        os.environ["BENCH_CLASSIFIER_MODEL"] = model
        byte_compile(args.ours)
        print(f"model {model} ({os.path.getsize(model) / 1e6:.0f} MB); {n_docs} docs in {len(paths)} file(s) of "
              f"{args.documents}; --processes {args.processes}, our default executor; our sources byte-compiled "
              "first (as an installed package's are)")
        for mode in args.mode:
            runs: dict[str, list[tuple[float, float]]] = {"ours": [], "dolma 1.2.1": []}
            for round_ in range(args.rounds):
                attributes = {}
                for label in runs:
                    if label != "ours" and not os.path.exists(args.peer):
                        print(f"  peer {args.peer} not found (../shared/bench/setup_peers.sh)")
                        continue
                    root = os.path.join(workdir, f"{mode}-{label.split()[0]}")
                    shutil.rmtree(root, ignore_errors=True)  # a kept directory's old attributes would be "done"
                    documents_glob = make_copy(paths, root)
                    if label == "ours":
                        taggers = [OURS[mode], f"--tagger_options.{OURS[mode]}.model_path={model}"]
                        extra = ["--processes", str(args.processes)]
                    else:
                        taggers = [f"bench_classifier_{mode}"]
                        extra = ["--processes", str(args.processes), "--tagger_modules", module]
                    load = os.getloadavg()[0]
                    seconds, cpu, status, tail = run_tag_timed(args.ours if label == "ours" else args.peer,
                                                               documents_glob, taggers, extra, "bench")
                    if status != 0:
                        print(f"  {mode} {label}: FAILED (exit {status})\n{tail}")
                        continue
                    runs[label].append((seconds, cpu))
                    if round_ == 0:
                        attributes[label] = read_attributes(os.path.join(root, "attributes"))
                    print(f"  {mode:<8} {label:<12} round {round_ + 1}: {seconds:7.1f} s wall "
                          f"{n_docs / seconds:8,.0f} docs/s  ({cpu:.1f} CPU-s; load {load:.1f} at start)")
                    shutil.rmtree(os.path.join(root, "documents"), ignore_errors=True)
                if len(attributes) == 2:
                    total, same, worst = parity(attributes["ours"], attributes["dolma 1.2.1"])
                    print(f"  {mode:<8} parity: {same}/{total} documents ({100 * same / max(total, 1):.3f}%) "
                          f"within 1e-5, largest difference {worst:.2e}")
            if runs["ours"] and runs["dolma 1.2.1"]:
                ours, theirs = runs["ours"], runs["dolma 1.2.1"]
                walls = [sorted(w for w, _ in r) for r in (ours, theirs)]
                cpus = [statistics.median(c for _, c in r) for r in (ours, theirs)]
                median = [statistics.median(w) for w in walls]
                print(f"  {mode:<8} ours / dolma 1.2.1 over {len(ours)} round(s): median {n_docs / median[0]:,.0f} vs "
                      f"{n_docs / median[1]:,.0f} docs/s = {median[1] / median[0]:.2f}x; best of each {walls[1][0] / walls[0][0]:.2f}x; "
                      f"per round {', '.join(f'{t / o:.2f}x' for (o, _), (t, _) in zip(ours, theirs))}; "
                      f"CPU median {cpus[0]:.1f} vs {cpus[1]:.1f} s = {cpus[1] / cpus[0]:.2f}x")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
