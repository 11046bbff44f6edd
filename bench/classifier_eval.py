"""Held-out accuracy of `dolma train-classifier` against fastText's own trainer on the same examples.

The reference training and validation files are written here by hand, independently of the project's
code: one line per document, `__label__{label} ` + `text.replace("\\n", " ").strip()`, the validation
split by the same rule as documented (blake2b-64 of the id < fraction), no balancing, in input order.
The reference trainer is the `fasttext` command (Debian's package, fastText 0.9.2) with the same
hyperparameters and one thread; its `test` gives precision at 1 (the accuracy). Ours runs
`dolma train-classifier --balance false` with the same hyperparameters; its card has the accuracy on
the same validation documents. A preparation bug shows as a gap.

    python bench/classifier_eval.py [--files 3] [--fasttext /usr/bin/fasttext]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from classifier_bench import PROSE, REFERENCE  # noqa: E402
from tag_bench import DEFAULT_DOCUMENTS, DEFAULT_OURS, select_files  # noqa: E402

PARAMS = {"dim": 64, "epoch": 5, "lr": 0.1, "wordNgrams": 2, "bucket": 200000, "minCount": 1, "loss": "softmax"}


def hand_written_files(paths: list[str], labels: dict[str, str], fraction: float, workdir: str) -> tuple[str, str]:
    train, valid = os.path.join(workdir, "hand_train.txt"), os.path.join(workdir, "hand_valid.txt")
    train_lines = []
    with open(valid, "w", encoding="utf-8") as v:
        for path in paths:
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                for line in fh:
                    doc = json.loads(line)
                    label = labels.get(doc.get("source"))
                    text = doc["text"].replace("\n", " ").strip()
                    if label is None or not text:
                        continue
                    h = int.from_bytes(hashlib.blake2b(doc["id"].encode(), digest_size=8).digest(), "big") / 2**64
                    if h < fraction:
                        v.write(f"__label__{label} {text}\n")
                    else:
                        train_lines.append(f"__label__{label} {text}\n")
    random.Random(0).shuffle(train_lines)  # fastText reads in order; any fixed shuffle will do
    with open(train, "w", encoding="utf-8") as t:
        t.writelines(train_lines)
    return train, valid


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--documents", default=DEFAULT_DOCUMENTS)
    p.add_argument("--files", type=int, default=3)
    p.add_argument("--fasttext", default=shutil.which("fasttext") or "/usr/bin/fasttext")
    p.add_argument("--ours", default=DEFAULT_OURS)
    p.add_argument("--validation_fraction", type=float, default=0.1)
    args = p.parse_args()
    paths = select_files(args.documents, args.files)
    labels = {**{s: "prose" for s in PROSE}, **{s: "reference" for s in REFERENCE}}
    workdir = tempfile.mkdtemp(prefix="classifier_eval_")
    try:
        train, valid = hand_written_files(paths, labels, args.validation_fraction, workdir)
        flags = [f"-{k}" if k != "wordNgrams" else "-wordNgrams" for k in PARAMS]
        command = [args.fasttext, "supervised", "-input", train, "-output", os.path.join(workdir, "reference"),
                   "-thread", "1", "-seed", "0", "-verbose", "0"]
        for flag, value in zip(flags, PARAMS.values()):
            command += [flag, str(value)]
        subprocess.run(command, check=True)
        result = subprocess.run([args.fasttext, "test", os.path.join(workdir, "reference.bin"), valid],
                                check=True, capture_output=True, text=True).stdout
        reference = float(next(line.split()[1] for line in result.splitlines() if line.startswith("P@1")))
        n_valid = int(next(line.split()[1] for line in result.splitlines() if line.startswith("N")))
        out = os.path.join(workdir, "ours")
        command = [args.ours, "train-classifier", "--documents", *paths, "--label_field.field", "source",
                   *[f"--label_field.map.{s}={label}" for s, label in labels.items()], "--balance", "false",
                   "--validation_fraction", str(args.validation_fraction), "--output", out,
                   *[f"--fasttext.{k}={v}" for k, v in PARAMS.items()]]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "model_card.json")) as fh:
            card = json.load(fh)
        ours = card["validation"]["accuracy"]
        print(f"{n_valid} validation documents ({card['validation']['units']} in our card), "
              f"{sum(card['label_counts']['train_units'].values())} training documents, {PARAMS}")
        print(f"  fastText command (Debian 0.9.2), hand-written files: accuracy {100 * reference:.2f}%")
        print(f"  dolma train-classifier:                         accuracy {100 * ours:.2f}%")
        print(f"  difference: {100 * (ours - reference):+.2f} points (target: within 0.5)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
