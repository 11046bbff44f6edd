"""Fast batched prediction for fastText classifiers trained with hierarchical softmax (`lid.176.*`).

fastText's own `predict` spends ~0.5 ms per KB of text re-deriving the character n-grams of every word
and looking them up one by one. For a supervised model without word n-grams (lid.176's settings) the
hidden vector is just the mean of the input rows of all the line's words and their n-grams, so each word
contributes a fixed (sum of rows, number of rows) pair. Those pairs are taken from fastText itself
(`get_word_vector` x `len(get_subwords)`) once per distinct word and cached; a batch then costs one dict
lookup per word plus a few numpy operations. The output layer is fastText's Huffman tree, rebuilt from the
label counts exactly as fastText builds it, evaluated for all labels at once. Probabilities agree with
`model.predict(text, k=-1)` to float rounding (fastText sums in float32); like fastText with threshold 0,
labels whose log-probability falls below log(1e-5) are not reported (here: probability 0).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

LABEL_PREFIX = "__label__"
EOS = "</s>"
# fastText's tokenizer splits on exactly these bytes.
_FASTTEXT_SPACE = re.compile("[ \n\r\t\v\f\x00]+")
# A floor of fastText's `std_log`: log(x + 1e-5).
_LOG_EPSILON = 1e-5
CACHE_LIMIT = 500_000


def supports_fast_path(model: Any) -> bool:
    from fasttext.FastText import loss_name, model_name

    args = model.f.getArgs()
    return args.model == model_name.supervised and args.loss == loss_name.hs and args.wordNgrams <= 1


def huffman_paths(counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """(right, left) 0/1 matrices [label, internal node]: fastText's `HierarchicalSoftmaxLoss::buildTree`."""
    osz = len(counts)
    size = 2 * osz - 1
    count = [1e15] * size
    parent = [-1] * size
    binary = [False] * size
    count[:osz] = counts
    leaf, node = osz - 1, osz
    for i in range(osz, size):
        mini = []
        for _ in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                mini.append(leaf)
                leaf -= 1
            else:
                mini.append(node)
                node += 1
        count[i] = count[mini[0]] + count[mini[1]]
        parent[mini[0]] = parent[mini[1]] = i
        binary[mini[1]] = True
    right = np.zeros((osz, max(osz - 1, 1)))
    left = np.zeros_like(right)
    for label in range(osz):
        child, up = label, parent[label]
        while up >= 0:
            (right if binary[child] else left)[label, up - osz] = 1.0
            child, up = up, parent[up]
    return right, left


class CachedWordClassifier:
    """All-label probabilities of a hierarchical-softmax fastText classifier, with per-word caching."""

    def __init__(self, model: Any):
        self.model = model
        labels, counts = model.get_labels(include_freq=True)
        self.labels = [label[len(LABEL_PREFIX):] if label.startswith(LABEL_PREFIX) else label for label in labels]
        output = np.array(model.f.getOutputMatrix(), dtype=np.float64)
        self.internal_nodes = output[: max(len(self.labels) - 1, 1)]
        self.right, self.left = huffman_paths([int(c) for c in counts])
        self.dim = output.shape[1]
        self._reset_cache()

    def _reset_cache(self) -> None:
        self.index: dict[str, int] = {}
        self.sums = np.zeros((1024, self.dim), dtype=np.float64)
        self.sizes = np.zeros(1024, dtype=np.float64)
        self.eos = self._add(EOS)

    def _add(self, word: str) -> int:
        ids = self.model.get_subwords(word, on_unicode_error="replace")[1]
        row = len(self.index)
        if row == len(self.sizes):
            self.sums = np.concatenate([self.sums, np.zeros_like(self.sums)])
            self.sizes = np.concatenate([self.sizes, np.zeros_like(self.sizes)])
        if len(ids):
            vector = np.asarray(self.model.get_word_vector(word), dtype=np.float64)
            self.sums[row] = vector * len(ids)
            self.sizes[row] = len(ids)
        self.index[word] = row
        return row

    def _rows(self, text: str) -> list[int]:
        if not text.isascii():
            # fastText reads UTF-8: lone surrogates cannot be encoded, replace them as fastText's input would.
            text = text.encode("utf-8", "replace").decode("utf-8")
        if "\t" in text or "\r" in text or "\x0b" in text or "\x0c" in text or "\x00" in text or "\n" in text:
            words = list(filter(None, _FASTTEXT_SPACE.split(text)))
        else:
            words = list(filter(None, text.split(" ")))
        rows = list(map(self.index.get, words))
        if None not in rows:  # the common case once the cache is warm: no per-word Python loop
            rows.append(self.eos)
            return rows
        for i, row in enumerate(rows):
            if row is None:
                # A word may repeat among the new ones: look it up again before adding.
                rows[i] = self.index.get(words[i])
                if rows[i] is None:
                    rows[i] = self._add(words[i])
        rows.append(self.eos)
        return rows

    def predict_all(self, texts: list[str]) -> np.ndarray:
        """[text, label] probabilities, 0 where fastText would not report the label."""
        if len(self.index) > CACHE_LIMIT:
            self._reset_cache()
        all_rows: list[int] = []
        starts: list[int] = []
        for text in texts:
            starts.append(len(all_rows))
            all_rows.extend(self._rows(text))
        rows = np.asarray(all_rows, dtype=np.int64)
        offsets = np.asarray(starts, dtype=np.int64)
        sums = np.add.reduceat(self.sums[rows], offsets, axis=0)
        sizes = np.add.reduceat(self.sizes[rows], offsets)
        hidden = sums / np.maximum(sizes, 1.0)[:, None]
        f = 1.0 / (1.0 + np.exp(-(hidden @ self.internal_nodes.T)))
        log_p = np.log(f + _LOG_EPSILON) @ self.right.T + np.log(1.0 - f + _LOG_EPSILON) @ self.left.T
        probabilities = np.exp(log_p)
        probabilities[log_p < np.log(_LOG_EPSILON)] = 0.0
        return probabilities
