"""Fast batched prediction for fastText classifiers trained with hierarchical softmax (`lid.176.*`).

fastText's own `predict` spends ~0.5 ms per KB of text re-deriving the character n-grams of every word
and looking them up one by one. For a supervised model without word n-grams (lid.176's settings) the
hidden vector is just the mean of the input rows of all the line's words and their n-grams, so each word
contributes a fixed (sum of rows, number of rows) pair, computed once per distinct word and cached: the
words a batch sees for the first time get theirs all at once from `fasttext_ngrams` (fastText's n-gram
hashing vectorised over the model file; for other model formats, `get_word_vector` x `len(get_subwords)`).
A batch is split into words and each word keyed on its bytes by `fasttext_words` (numpy, no Python string
per word), so it costs one dict lookup per distinct word plus a few numpy operations. As in fastText, a
literal `</s>` word ends the line: it is read as the end-of-line token and what follows is ignored.
The output layer is fastText's Huffman tree, rebuilt from the label counts exactly as fastText builds it, evaluated for all labels at once. Probabilities agree with
`model.predict(text, k=-1)` to float rounding (fastText sums in float32); like fastText with threshold 0,
labels whose log-probability falls below log(1e-5) are not reported (here: probability 0).
"""

from __future__ import annotations

import logging
import struct
from typing import Any

import numpy as np

from taggers.fasttext_words import BatchWords, split_batch

log = logging.getLogger(__name__)

LABEL_PREFIX = "__label__"
EOS = "</s>"
EOS_KEY = int(split_batch([EOS]).keys[0])  # the key of a literal `</s>` word in a batch
# A floor of fastText's `std_log`: log(x + 1e-5).
_LOG_EPSILON = 1e-5
CACHE_LIMIT = 1_000_000  # words; ~70 MB of vectors plus the dict


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

    def __init__(self, model: Any, path: str | None = None):
        self.model = model
        labels, counts = model.get_labels(include_freq=True)
        self.labels = [label[len(LABEL_PREFIX):] if label.startswith(LABEL_PREFIX) else label for label in labels]
        output = np.array(model.f.getOutputMatrix(), dtype=np.float64)
        self.internal_nodes = output[: max(len(self.labels) - 1, 1)]
        self.right, self.left = huffman_paths([int(c) for c in counts])
        self._layers: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.dim = output.shape[1]
        self.ngrams = None
        if path is not None:
            from taggers.fasttext_ngrams import NgramModel

            try:
                self.ngrams = NgramModel(path)
            except (ValueError, OSError, struct.error) as e:  # other formats: fastText's per-word calls
                log.info("fastText model %s: per-word subwords (%s)", path, e)
        self._reset_cache()

    def _reset_cache(self, keep: list[int | str] | None = None) -> None:
        old_index, old_sums, old_sizes = getattr(self, "index", {}), getattr(self, "sums", None), \
            getattr(self, "sizes", None)
        # word key (`fasttext_words` key, or the word itself when it is too long to have one) -> cache row
        self.index: dict[int | str, int] = {}
        self.sums = np.zeros((1024, self.dim), dtype=np.float32)
        self.sizes = np.zeros(1024, dtype=np.float32)
        self.hits = np.zeros(1024, dtype=np.int64)
        self._add_many([EOS], [EOS])
        self.eos = self.index[EOS]
        if keep and old_sums is not None:
            rows = np.fromiter((old_index[w] for w in keep), dtype=np.int64, count=len(keep))
            self._store(keep, old_sums[rows], old_sizes[rows])

    def _evict(self) -> None:
        """Keep the words used more than once since they were cached (the Zipf head), drop the rest."""
        used = self.hits[: len(self.index)]
        keep = [w for w, row in self.index.items() if used[row] > 1 and w != EOS]
        self._reset_cache(keep)

    def _word_sums(self, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if self.ngrams is not None:
            return self.ngrams.word_sums(words)
        sums, sizes = np.zeros((len(words), self.dim)), np.zeros(len(words))
        for i, word in enumerate(words):
            ids = self.model.get_subwords(word, on_unicode_error="replace")[1]
            if len(ids):
                sums[i] = np.asarray(self.model.get_word_vector(word), dtype=np.float64) * len(ids)
                sizes[i] = len(ids)
        return sums, sizes

    def _add_many(self, keys: list[int | str], words: list[str]) -> np.ndarray:
        """Cache (sum of input rows, number of rows) of new distinct words under their keys; their rows."""
        sums, sizes = self._word_sums(words)
        return self._store(keys, sums, sizes)

    def _store(self, keys: list[int | str], sums: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        first = len(self.index)
        needed = first + len(keys)
        if needed > len(self.sizes):
            grow = max(needed, 2 * len(self.sizes)) - len(self.sizes)
            self.sums = np.concatenate([self.sums, np.zeros((grow, self.dim), dtype=np.float32)])
            self.sizes = np.concatenate([self.sizes, np.zeros(grow, dtype=np.float32)])
            self.hits = np.concatenate([self.hits, np.zeros(grow, dtype=np.int64)])
        self.sums[first:needed] = sums
        self.sizes[first:needed] = sizes
        self.index.update(zip(keys, range(first, needed)))
        return np.arange(first, needed)

    def _line_rows(self, batch: BatchWords) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row of each word fastText reads, its text, texts already closed by a literal `</s>` word).

        fastText stops reading a line at its first `</s>` word, which it keeps as the end-of-line token.
        """
        rows, text_of_word = self._rows(batch), batch.text_of_word
        closed = np.zeros(batch.texts, dtype=bool)
        literal = np.flatnonzero(batch.keys == EOS_KEY)
        if len(literal):
            texts, first = np.unique(text_of_word[literal], return_index=True)
            cut = np.full(batch.texts, len(rows))
            cut[texts] = literal[first]
            read = np.arange(len(rows)) <= cut[text_of_word]
            rows, text_of_word = rows[read], text_of_word[read]
            closed[texts] = True
        return rows, text_of_word, closed

    def _rows(self, batch: BatchWords) -> np.ndarray:
        """The cache row of every word of the batch, caching the words seen for the first time."""
        index = self.index
        unique, first, inverse = np.unique(batch.keys, return_index=True, return_inverse=True)
        rows = np.fromiter((index.get(key, -1) for key in unique.tolist()), dtype=np.int64, count=len(unique))
        new = np.flatnonzero((rows < 0) & (unique >= 0))
        if len(new):
            rows[new] = self._add_many(unique[new].tolist(), [batch.word(i) for i in first[new].tolist()])
        rows = rows[inverse.ravel()]
        unhashed = np.flatnonzero(batch.keys < 0)  # very long words: keyed by the word itself
        if len(unhashed):
            words = [batch.word(i) for i in unhashed.tolist()]
            fresh = sorted(set(words).difference(index))
            if fresh:
                self._add_many(fresh, fresh)
            rows[unhashed] = [index[w] for w in words]
        return rows

    def _output_layer(self, labels: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(internal node rows, right, left) restricted to the tree nodes on the paths of `labels`."""
        if labels is None:
            return self.internal_nodes, self.right, self.left
        layer = self._layers.get(labels)
        if layer is None:
            right, left = self.right[list(labels)], self.left[list(labels)]
            nodes = np.flatnonzero((right + left).any(axis=0))
            layer = self._layers[labels] = (self.internal_nodes[nodes], right[:, nodes], left[:, nodes])
        return layer

    def predict_all(self, texts: list[str], labels: tuple[int, ...] | None = None) -> np.ndarray:
        """[text, label] probabilities, 0 where fastText would not report the label.

        With `labels` (indices into `self.labels`), only those columns, in that order: only the tree
        nodes on their paths are evaluated (for `en` alone, a handful instead of 175).
        """
        if len(self.index) > CACHE_LIMIT:
            self._evict()
        batch = split_batch(texts)
        rows, text_of_word, closed = self._line_rows(batch)
        lengths = np.bincount(text_of_word, minlength=len(texts))
        ends = np.cumsum(lengths)
        # every line ends with fastText's end-of-sentence token (unless a literal one already closed it),
        # so no segment is empty
        with_eos = np.insert(rows, ends[~closed], self.eos)
        counts = np.bincount(with_eos)
        self.hits[: len(counts)] += counts
        segment = lengths + ~closed
        offsets = np.cumsum(segment) - segment
        sums = np.add.reduceat(self.sums[with_eos].astype(np.float64), offsets, axis=0)
        sizes = np.add.reduceat(self.sizes[with_eos].astype(np.float64), offsets)
        hidden = sums / np.maximum(sizes, 1.0)[:, None]
        internal, right, left = self._output_layer(labels)
        f = 1.0 / (1.0 + np.exp(-(hidden @ internal.T)))
        log_p = np.log(f + _LOG_EPSILON) @ right.T + np.log(1.0 - f + _LOG_EPSILON) @ left.T
        probabilities = np.exp(log_p)
        probabilities[log_p < np.log(_LOG_EPSILON)] = 0.0
        return probabilities
