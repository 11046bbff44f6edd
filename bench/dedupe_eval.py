"""Quality of MinHash near-duplicate detection: ours vs datatrove, per true-Jaccard bin.

    python bench/dedupe_eval.py [--dedup-set DIR] [--synthetic-clusters 300] [--dt-python PATH] [--json OUT]

Two inputs: the real `dedup` set (Django docs across six releases, licence texts) and a generated set with
controlled word edit rates (dolma_pipeline.dedupe.synthetic). Truth: the exact Jaccard of word 5-gram sets
(lower-cased, punctuation dropped, whitespace folded: sets of the n-gram strings, not hashes). Two
documents belong together when a chain of pairs with Jaccard >= 0.8 links them (the connected components
of the J >= 0.8 graph: what a dedupe that clusters is asked to find). A method's prediction is its
clusters (ours: the cluster_id attribute; datatrove: `minhash_cluster_id` from its four stages).

Per bin of true pairwise Jaccard (every pair with J >= 0.3, plus every pair either side links), over
pairs: n, how many the truth links, how many the method links, precision (linked by the method and by
the truth / linked by the method) and recall (linked by both / linked by the truth). The headline:
recall on pairs with J >= 0.8 and precision over all the pairs the method links; then document-level
precision/recall of the duplicate flag (a flag is right when the document's true component has an
earlier member).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import orjson  # noqa: E402
from dedupe_bench import DEFAULT_DT_PYTHON, run_datatrove, run_ours_in_process, stage_corpus  # noqa: E402

DEFAULT_DEDUP_SET = "/tmp/dolma-corpus/dolma/dedup/documents"
BINS = [0.0, 0.3, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0000001]
THRESHOLD = 0.8
_WORDS = re.compile(r"\w+")


def load_documents(directory: str) -> list[tuple[str, str]]:
    """(id, text) in (file path, line) order."""
    docs = []
    for name in sorted(os.listdir(directory)):
        if ".jsonl" not in name:
            continue
        path = os.path.join(directory, name)
        with gzip.open(path) if name.endswith(".gz") else open(path, "rb") as fh:
            docs += [(row["id"], row["text"]) for row in map(orjson.loads, fh)]
    return docs


def shingle_sets(texts: list[str], n: int = 5) -> list[frozenset]:
    out = []
    for text in texts:
        words = _WORDS.findall(text.lower())
        if len(words) < n:
            out.append(frozenset([" ".join(words)]) if words else frozenset())
        else:
            out.append(frozenset(" ".join(words[i:i + n]) for i in range(len(words) - n + 1)))
    return out


def candidate_pairs(sets: list[frozenset], min_jaccard: float) -> dict[tuple[int, int], float]:
    """Every pair with exact Jaccard >= min_jaccard, via a sparse document x shingle product."""
    from scipy import sparse

    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, s in enumerate(sets):
        for shingle in s:
            cols.append(vocab.setdefault(shingle, len(vocab)))
            rows.append(i)
    matrix = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(sets), len(vocab)))
    inter = sparse.triu(matrix @ matrix.T, k=1).tocoo()
    sizes = np.array([len(s) for s in sets])
    union = sizes[inter.row] + sizes[inter.col] - inter.data
    jac = inter.data / np.maximum(union, 1)
    keep = jac >= min_jaccard
    return {(int(a), int(b)): float(j) for a, b, j in zip(inter.row[keep], inter.col[keep], jac[keep])}


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if (a or b) else 1.0


def components(n: int, pairs) -> list[int]:
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [find(i) for i in range(n)]


def pairs_within(labels: list) -> set[tuple[int, int]]:
    groups: dict = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    out = set()
    for members in groups.values():
        out.update((members[i], members[j]) for i in range(len(members)) for j in range(i + 1, len(members)))
    return out


def evaluate(name: str, ids: list[str], sets: list[frozenset], truth_pairs: dict, predicted: dict[str, object]) -> dict:
    """Per-bin pair metrics and document-level flag metrics of one method's clusters."""
    n = len(ids)
    labels = [predicted.get(doc_id, f"missing-{i}") for i, doc_id in enumerate(ids)]
    labels = [f"single-{i}" if lab in (-1, None) else lab for i, lab in enumerate(labels)]
    pred = pairs_within(labels)
    truth_labels = components(n, [p for p, j in truth_pairs.items() if j >= THRESHOLD])
    truth = pairs_within(truth_labels)
    universe = dict(truth_pairs)
    for pair in (pred | truth) - universe.keys():
        universe[pair] = jaccard(sets[pair[0]], sets[pair[1]])
    rows = []
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        in_bin = [p for p, j in universe.items() if lo <= j < hi]
        t = sum(p in truth for p in in_bin)
        m = sum(p in pred for p in in_bin)
        both = sum(p in truth and p in pred for p in in_bin)
        rows.append({"bin": f"[{lo:.2f},{min(hi, 1.0):.2f}{']' if hi > 1 else ')'}", "pairs": len(in_bin),
                     "truth_linked": t, "linked": m, "precision": both / m if m else None,
                     "recall": both / t if t else None})
    high = [p for p, j in universe.items() if j >= THRESHOLD]
    recall_high = sum(p in pred for p in high) / len(high) if high else None
    precision_all = len(pred & truth) / len(pred) if pred else None
    first_of_truth, first_of_pred = {}, {}
    for i in range(n):
        first_of_truth.setdefault(truth_labels[i], i)
        first_of_pred.setdefault(labels[i], i)
    true_dup = [first_of_truth[truth_labels[i]] != i for i in range(n)]
    flagged = [first_of_pred[labels[i]] != i for i in range(n)]
    tp = sum(a and b for a, b in zip(true_dup, flagged))
    result = {"method": name, "bins": rows, "recall_pairs_j_ge_0.8": recall_high,
              "precision_linked_pairs": precision_all, "pairs_j_ge_0.8": len(high), "linked_pairs": len(pred),
              "doc_precision": tp / sum(flagged) if any(flagged) else None,
              "doc_recall": tp / sum(true_dup) if any(true_dup) else None,
              "flagged": sum(flagged), "true_duplicates": sum(true_dup)}
    return result


def _fmt(x) -> str:
    return "   -  " if x is None else f"{x:.4f}"


def print_result(result: dict) -> None:
    print(f"  {result['method']}")
    print("    bin            pairs  truth  linked  precision  recall")
    for row in result["bins"]:
        print(f"    {row['bin']:<13} {row['pairs']:6d} {row['truth_linked']:6d} {row['linked']:7d}   "
              f"{_fmt(row['precision'])}   {_fmt(row['recall'])}")
    print(f"    pairs with J >= 0.8: {result['pairs_j_ge_0.8']}, recall {_fmt(result['recall_pairs_j_ge_0.8'])}; "
          f"linked pairs: {result['linked_pairs']}, precision {_fmt(result['precision_linked_pairs'])}")
    print(f"    duplicate flag: {result['flagged']} flagged / {result['true_duplicates']} true duplicates, "
          f"precision {_fmt(result['doc_precision'])}, recall {_fmt(result['doc_recall'])}")


def our_clusters(documents: str, argv: list[str]) -> dict[str, float]:
    config = os.path.join(REPO, "configs", "dedupe", "minhash.yaml")
    run_ours_in_process(documents, argv, config)
    root = os.path.dirname(documents)
    clusters = {}
    for name in sorted(os.listdir(documents)):
        with gzip.open(os.path.join(root, "attributes", "minhash", name)) as fh:
            for row in map(orjson.loads, fh):
                clusters[row["id"]] = row["attributes"]["minhash__minhash_v1__cluster_id"][0][2]
    return clusters


def evaluate_set(label: str, documents: str, work: str, args) -> list[dict]:
    docs = load_documents(documents)
    ids, texts = [d[0] for d in docs], [d[1] for d in docs]
    sets = shingle_sets(texts)
    truth_pairs = candidate_pairs(sets, 0.3)
    print(f"\n{label}: {documents}: {len(ids):,} documents, {sum(j >= THRESHOLD for j in truth_pairs.values()):,} "
          f"pairs with word 5-gram Jaccard >= 0.8")
    results = []
    ours_docs = stage_corpus(documents, os.path.join(work, label, "ours"))
    results.append(evaluate("ours (dolma dedupe, minhash.yaml: 20x6 + exact Jaccard check)", ids, sets,
                            truth_pairs, our_clusters(ours_docs, args.ours_args)))
    print_result(results[-1])
    peer = run_datatrove(args.dt_python, os.path.abspath(documents), os.path.join(work, label, "datatrove"))
    if peer:
        results.append(evaluate("datatrove 0.10.1 (MinhashConfig(): 14x8, 4 stages)", ids, sets, truth_pairs,
                                peer["clusters"]))
        print_result(results[-1])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dedup-set", default=DEFAULT_DEDUP_SET)
    parser.add_argument("--synthetic-clusters", type=int, default=300)
    parser.add_argument("--dt-python", default=DEFAULT_DT_PYTHON)
    parser.add_argument("--ours-args", nargs="*", default=[], help="extra `dolma dedupe` flags for our run")
    parser.add_argument("--work", default=None)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="dedupe_eval_")
    from dolma_pipeline.dedupe.synthetic import generate, write_corpus

    synthetic_root = os.path.join(work, "synthetic_input")
    write_corpus(synthetic_root, generate(num_clusters=args.synthetic_clusters, variants=4, seed=1), files=4)
    report = {"synthetic": evaluate_set("synthetic", os.path.join(synthetic_root, "documents"), work, args)}
    if os.path.isdir(args.dedup_set):
        report["dedup"] = evaluate_set("dedup", args.dedup_set, work, args)
    else:
        print(f"\ndedup set: skipped ({args.dedup_set} not found; build it with ../shared/corpus/build_corpus.py)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
