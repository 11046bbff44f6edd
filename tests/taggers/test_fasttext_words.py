"""Batch tokenisation on bytes (`taggers.fasttext_words`) against fastText's own word splitting."""

from __future__ import annotations

import re

import numpy as np

from taggers.fasttext_words import MAX_HASHED_BYTES, split_batch

FASTTEXT_SPACE = re.compile("[ \n\r\t\v\f\x00]+")  # the bytes fastText splits on


def reference_words(text: str) -> list[str]:
    text = text.encode("utf-8", "replace").decode("utf-8")
    return [w for w in FASTTEXT_SPACE.split(text) if w]


TEXTS = ["hello world", "", "  a\tb\x00c\r\nd\x0b\x0ce  ", "naïve 東京 x😀y", "x" * (MAX_HASHED_BYTES + 5) + " y",
         "ab\udc80 z", " ", "\x00", "hello", "non\u00a0breaking space stays inside a word", "a b a b"]


def test_words_and_owners_match_fasttext_splitting():
    batch = split_batch(TEXTS)
    got: list[list[str]] = [[] for _ in TEXTS]
    for i in range(len(batch.starts)):
        got[batch.text_of_word[i]].append(batch.word(i))
    assert got == [reference_words(t) for t in TEXTS]
    assert batch.words_per_text().tolist() == [len(reference_words(t)) for t in TEXTS]
    assert split_batch([]).words_per_text().tolist() == []
    assert split_batch(["", ""]).words_per_text().tolist() == [0, 0]


def test_keys_are_one_per_distinct_word_and_long_words_have_none():
    words = sorted({w for t in TEXTS for w in reference_words(t)} | {f"w{i}" for i in range(20000)}
                   | {chr(c) for c in range(33, 5000)})
    batch = split_batch([" ".join(words), " ".join(reversed(words))])
    by_word: dict[str, set[int]] = {}
    for i in range(len(batch.starts)):
        by_word.setdefault(batch.word(i), set()).add(int(batch.keys[i]))
    assert all(len(keys) == 1 for keys in by_word.values())  # same word, same key, wherever it is
    keys = [k for w, (k,) in ((w, tuple(v)) for w, v in by_word.items()) if len(w.encode()) <= MAX_HASHED_BYTES]
    assert len(set(keys)) == len(keys) and min(keys) >= 0  # distinct words, distinct keys
    long_word = "x" * (MAX_HASHED_BYTES + 5)
    assert by_word[long_word] == {-1}
    assert np.all(batch.keys[batch.ends - batch.starts > MAX_HASHED_BYTES] == -1)
