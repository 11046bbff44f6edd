"""Validation of a trained classifier, its model card (JSON) and its precision-recall curves (PNG).

The validation units are scored by fastText's own `predict(k=-1)` (the values the taggers write), in
batches. Per label, one-vs-rest: precision, recall and F1 of the arg-max prediction, ROC AUC (the
rank statistic, ties counted half), average precision, and a table of thresholds on the label's score
(precision, recall, F1 and the fraction of units at or above it), for choosing a mix filter.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

THRESHOLDS = [round(0.05 * i, 2) for i in range(1, 20)]
BATCH = 4096


def read_examples(path: str) -> Iterator[tuple[str, str]]:
    """(label, text) of each line of a fastText file `__label__X text`."""
    with open(path, "rb") as fh:
        for line in fh:
            head, _, text = line.rstrip(b"\n").partition(b" ")
            yield head.decode()[len("__label__"):], text.decode("utf-8", "replace")


def score_file(model: Any, path: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(model labels without prefix, true label index per unit (-1: not a model label), values [unit, label])."""
    labels = [label[len("__label__"):] for label in model.get_labels()]
    index = {label: i for i, label in enumerate(labels)}
    truth: list[int] = []
    rows: list[np.ndarray] = []
    batch: list[str] = []

    def flush() -> None:
        names, values = model.f.multilinePredict([t + "\n" for t in batch], -1, 0.0, "replace")
        block = np.zeros((len(batch), len(labels)))
        for r, (ns, vs) in enumerate(zip(names, values)):
            for n, v in zip(ns, vs):
                block[r, index[n[len("__label__"):]]] = v
        rows.append(block)
        batch.clear()

    for label, text in read_examples(path):
        truth.append(index.get(label, -1))
        batch.append(text)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    values = np.concatenate(rows) if rows else np.zeros((0, len(labels)))
    return labels, np.asarray(truth, dtype=np.int64), values


def roc_auc(positive: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); None with one class only."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    # average rank of each run of equal scores
    starts = np.flatnonzero(np.concatenate(([True], sorted_scores[1:] != sorted_scores[:-1])))
    ends = np.concatenate((starts[1:], [len(scores)]))
    average = (starts + ends + 1) / 2.0  # 1-based ranks
    ranks[order] = np.repeat(average, ends - starts)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def pr_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, threshold) at every distinct score, highest threshold first."""
    order = np.argsort(-scores, kind="mergesort")
    s, p = scores[order], positive[order]
    last = np.flatnonzero(np.concatenate((s[1:] != s[:-1], [True])))
    tp = np.cumsum(p)[last]
    predicted = last + 1
    precision = tp / predicted
    recall = tp / max(int(p.sum()), 1)
    return precision, recall, s[last]


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def metrics(labels: list[str], truth: np.ndarray, values: np.ndarray) -> dict[str, Any]:
    """Accuracy and per-label precision/recall/F1, ROC AUC, average precision and threshold table."""
    known = truth >= 0
    truth, values = truth[known], values[known]
    predicted = values.argmax(axis=1) if len(values) else np.zeros(0, dtype=np.int64)
    out: dict[str, Any] = {"units": int(len(truth)),
                           "accuracy": float((predicted == truth).mean()) if len(truth) else None,
                           "labels": {}}
    for i, label in enumerate(labels):
        positive = truth == i
        scores = values[:, i]
        tp = int((positive & (predicted == i)).sum())
        precision = tp / max(int((predicted == i).sum()), 1)
        recall = tp / max(int(positive.sum()), 1)
        table = []
        for threshold in THRESHOLDS:
            above = scores >= threshold
            t_tp = int((above & positive).sum())
            t_p = t_tp / max(int(above.sum()), 1)
            t_r = t_tp / max(int(positive.sum()), 1)
            table.append({"threshold": threshold, "precision": round(t_p, 5), "recall": round(t_r, 5),
                          "f1": round(_f1(t_p, t_r), 5),
                          "fraction_at_or_above": round(float(above.mean()) if len(above) else 0.0, 5)})
        average_precision = None
        if positive.any():
            curve_p, curve_r, _ = pr_curve(positive, scores)
            average_precision = float(np.sum(np.diff(np.concatenate(([0.0], curve_r))) * curve_p))
        auc = roc_auc(positive, scores)
        out["labels"][label] = {
            "support": int(positive.sum()), "precision": round(precision, 5), "recall": round(recall, 5),
            "f1": round(_f1(precision, recall), 5), "roc_auc": None if auc is None else round(auc, 5),
            "average_precision": None if average_precision is None else round(average_precision, 5),
            "thresholds": table,
        }
    return out


def plot_pr_curves(labels: list[str], truth: np.ndarray, values: np.ndarray, path: str, title: str) -> None:
    """One precision-recall curve per label (one-vs-rest) into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for i, label in enumerate(labels):
        positive = truth == i
        if not positive.any():
            continue
        precision, recall, _ = pr_curve(positive, values[:, i])
        ax.plot(np.concatenate(([0.0], recall)), np.concatenate(([precision[0]], precision)), label=label)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def jsonable(value: Any) -> Any:
    """NaN/inf become None so the card is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def report_section(output: str, out_dir: str, name: str, scores: dict[str, Any]) -> str:
    """HTML for `dolma report`: the card's validation figures, its precision-recall curves and a
    histogram of the tagged documents' scores (`scores`: attribute key -> the report's score sketch)."""
    import html
    import json
    import os
    import shutil

    try:
        with open(os.path.join(output, "model_card.json")) as fh:
            record = json.load(fh)
    except (OSError, ValueError):
        return "<p>No model card found.</p>"
    validation = record.get("validation") or {}
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td>{m['support']:,}</td><td>{m['precision']:.3f}</td>"
        f"<td>{m['recall']:.3f}</td><td>{m['f1']:.3f}</td><td>{m['roc_auc'] if m['roc_auc'] is not None else '-'}</td></tr>"
        for label, m in (validation.get("labels") or {}).items())
    counts = record.get("label_counts", {}).get("train_units_kept", {})
    accuracy = validation.get("accuracy")
    text = (f"<p>Model <code>{html.escape(record.get('model_path', ''))}</code>, {html.escape(record.get('mode', ''))} "
            f"units; training units per label: {html.escape(json.dumps(counts))}; validation: "
            f"{validation.get('units', 0):,} units, accuracy {accuracy:.4f}</p>" if accuracy is not None else "")
    table = ("<table><tr><th>label</th><th>support</th><th>precision</th><th>recall</th><th>F1</th>"
             f"<th>ROC AUC</th></tr>{rows}</table>")
    curve = os.path.join(output, "pr_curve.png")
    image = ""
    if os.path.exists(curve):
        target = f"classifier_{name}_pr_curve.png"
        shutil.copyfile(curve, os.path.join(out_dir, target))
        image = f'<img src="{target}">'
    histogram = ""
    if scores:
        from dolma_pipeline.report_plots import histogram_png

        cells = []
        for i, key in enumerate(sorted(scores)):
            img, note = histogram_png(out_dir, f"classifier_{name}_scores_{i}.png", key, {"documents": scores[key]})
            cells.append(f'<figure><img src="{img}" alt="{html.escape(key)}"><figcaption>{html.escape(note)}'
                         "</figcaption></figure>")
        histogram = f"<p>Scores of the tagged documents:</p>{''.join(cells)}"
    return text + table + image + histogram
