"""Validation metrics of the model card against brute-force definitions."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from dolma_pipeline.classifier.balance import keep_probabilities, sample_draw
from dolma_pipeline.classifier.card import metrics, roc_auc


def brute_auc(positive, scores) -> float:
    pairs = [(p, n) for p, n in itertools.product(np.flatnonzero(positive), np.flatnonzero(~positive))]
    return sum(1.0 if scores[p] > scores[n] else 0.5 if scores[p] == scores[n] else 0.0 for p, n in pairs) / len(pairs)


def test_roc_auc_with_ties_equals_pair_counting():
    rng = random.Random(0)
    for _ in range(30):
        n = rng.randrange(2, 40)
        scores = np.array([rng.choice([0.1, 0.2, 0.5, 0.7, 0.9]) for _ in range(n)])
        positive = np.array([rng.random() < 0.5 for _ in range(n)])
        if positive.all() or not positive.any():
            assert roc_auc(positive, scores) is None
            continue
        assert roc_auc(positive, scores) == pytest.approx(brute_auc(positive, scores))


def test_metrics_precision_recall_and_thresholds():
    labels = ["hq", "lq"]
    truth = np.array([0, 0, 0, 1, 1, -1])  # -1: a label the model does not know, left out
    hq = np.array([0.9, 0.6, 0.3, 0.4, 0.1, 0.5])
    values = np.stack([hq, 1 - hq], axis=1)
    out = metrics(labels, truth, values)
    assert out["units"] == 5 and out["accuracy"] == pytest.approx(4 / 5)
    m = out["labels"]["hq"]
    assert m["precision"] == 1.0 and m["recall"] == pytest.approx(2 / 3, abs=1e-5)
    assert m["roc_auc"] == pytest.approx(5 / 6, abs=1e-5)  # 0.3 (hq) ranks below 0.4 (lq): 5 of 6 pairs
    at_half = next(row for row in m["thresholds"] if row["threshold"] == 0.5)
    assert at_half == {"threshold": 0.5, "precision": 1.0, "recall": pytest.approx(0.66667), "f1": 0.8,
                       "fraction_at_or_above": 0.4}


def test_balancing_keeps_the_rarest_count_in_expectation():
    keep = keep_probabilities({"a": 1000, "b": 250}, balance=True, cap=0)
    assert keep == {"a": 0.25, "b": 1.0}
    assert keep_probabilities({"a": 1000, "b": 250}, balance=False, cap=100) == {"a": 0.1, "b": 0.4}
    kept = sum(sample_draw(k) < 0.25 for k in range(0, 40000 * 7919, 7919))
    assert abs(kept / 40000 - 0.25) < 0.01
