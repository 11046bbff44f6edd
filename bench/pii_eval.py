"""PII taggers on the hand-labelled snippet set: precision and recall per entity type.

Two matchings: `exact` (the predicted span is exactly the labelled one) and `overlap` (a prediction counts
when it overlaps a labelled span of the same type, which is fairer to Dolma's regexes whose spans include
surrounding whitespace and punctuation). Also prints docs/s on the set.

    python bench/pii_eval.py [--taggers pii_regex_v3 pii_presidio_v1 pii_regex_with_counts_fast_v2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from dolma_pipeline.documents import Document  # noqa: E402
from dolma_pipeline.tagger import TAGGERS  # noqa: E402

TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS")
DEFAULT_SNIPPETS = os.path.join(REPO, "tests", "taggers", "data", "pii_snippets.jsonl")


def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def evaluate(name: str, rows: list[dict]) -> None:
    tagger = TAGGERS.get(name)()
    tagger.setup()
    docs = [Document.from_fields(r["id"], r["text"]) for r in rows]
    start = time.perf_counter()
    predictions = tagger.predict_batch(docs)
    seconds = time.perf_counter() - start
    print(f"{name} ({len(rows) / seconds:,.0f} docs/s on the snippets)")
    print(f"  {'type':<14}{'exact P':>9}{'exact R':>9}{'overlap P':>11}{'overlap R':>11}{'gold':>6}{'pred':>6}")
    for kind in TYPES:
        exact = overlap_p = overlap_r = n_pred = n_gold = 0
        for row, spans in zip(rows, predictions):
            predicted = [(s.start, s.end) for s in spans if s.type == kind]
            gold = [tuple(s) for s in row["spans"][kind]]
            n_pred += len(predicted)
            n_gold += len(gold)
            exact += len(set(predicted) & set(gold))
            overlap_p += sum(any(overlaps(p, g) for g in gold) for p in predicted)
            overlap_r += sum(any(overlaps(p, g) for p in predicted) for g in gold)
        print(f"  {kind:<14}{exact / max(n_pred, 1):>9.3f}{exact / max(n_gold, 1):>9.3f}"
              f"{overlap_p / max(n_pred, 1):>11.3f}{overlap_r / max(n_gold, 1):>11.3f}{n_gold:>6}{n_pred:>6}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snippets", default=DEFAULT_SNIPPETS)
    parser.add_argument("--taggers", nargs="+",
                        default=["pii_regex_v3", "pii_presidio_v1", "pii_regex_with_counts_fast_v2"])
    args = parser.parse_args()
    with open(args.snippets, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    print(f"{len(rows)} snippets, {sum(len(r['spans'][t]) for r in rows for t in TYPES)} labelled entities")
    for name in args.taggers:
        evaluate(name, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
