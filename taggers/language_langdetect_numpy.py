"""langdetect's `Detector` with its per-character and per-language Python loops done in bulk, to the bit.

langdetect 1.0.9 spends its time in two places: reading the text a character at a time through `NGram`
(normalise each character, keep the last three, list the 1-3-grams it has a profile for), and 7 trials of
up to 1,001 draws, each multiplying 55 language probabilities one at a time in Python. Here:
- the n-grams are listed a word at a time (after a space the n-gram buffer always restarts, so a word's
  n-grams depend on the word alone), each word's list cached, each character normalised once per process;
- the trials of many texts run side by side as numpy rows. Every text re-seeds the detector's
  `random.Random` with the same seed, so every text reads the same stream of 32-bit words: the draws are
  read off that stream (`choice`: the top bits of one word, redrawn while out of range; `gauss`: two
  `random()`s of two words each, the second normal kept for the next trial), as `random.Random` makes them
  (checked against it once per process: if it ever differs, langdetect's own loop runs). The arithmetic is
  langdetect's, in its order: each factor `alpha / BASE_FREQ + p`, multiplied in draw order, the sum taken
  left to right, normalised every fifth draw, the same convergence test, the trials averaged in turn. The
  probabilities are langdetect's, bit for bit (`tests/taggers/test_language_langdetect_numpy.py`).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from langdetect.detector import Detector
from langdetect.lang_detect_exception import ErrorCode, LangDetectException
from langdetect.utils.ngram import NGram

from taggers.language_langdetect_draws import SeededDraws

# a character's normalised form, by code point (NGram.normalize of it); filled as characters are met
_NORMALISED: dict[int, str] = {}
_SPACE_RUNS = re.compile(" {2,}")
_LATIN = re.compile("[A-z]")  # langdetect's 'A' <= ch <= 'z'
# at or above U+0300 and outside the Latin Extended Additional block (U+1E00-U+1EFF)
_NON_LATIN = re.compile("[\u0300-\u1dff\u1f00-\U0010ffff]")
_WORD_CACHE_LIMIT = 200_000  # distinct words whose n-grams are kept (each way)
_SLOTS = 256  # texts whose trials run side by side
_BLOCK = 5  # draws between two normalisations (langdetect: `if i % 5 == 0`)


def normalise_characters(text: str) -> str:
    """`NGram.normalize` applied to every character of `text`."""
    for c in set(text):
        if ord(c) not in _NORMALISED:
            _NORMALISED[ord(c)] = NGram.normalize(c)
    return text.translate(_NORMALISED)


class NumpyDetector(Detector):
    """A `langdetect.detector.Detector` (made from a loaded `DetectorFactory`) giving the same
    probabilities faster, one text (`append`, `get_probabilities`) or many (`probabilities`)."""

    def __init__(self, factory: Any):
        super().__init__(factory)
        # a word's n-grams, followed by a space (True) or ending the text (False)
        self._word_ngrams: dict[bool, dict[str, list[str]]] = {True: {}, False: {}}
        self._row = {gram: i for i, gram in enumerate(self.word_lang_prob_map)}
        self._profile = np.array(list(self.word_lang_prob_map.values()), dtype=np.float64)  # (grams, langs)
        self._draws = SeededDraws(self.seed) if self.seed is not None else None

    def probabilities(self, texts: list[str]) -> list[list[Any] | None]:
        """`get_probabilities()` of each text (langdetect's `Language`s above 0.1, most probable first), or
        None where langdetect raises (no n-gram it knows)."""
        if not self._fast():
            return [self._probabilities_of(text) for text in texts]
        grams = [self._ngrams_of_text(text) for text in texts]
        known = [g for g in grams if g]
        probs = iter([p for s in range(0, len(known), _SLOTS) for p in _Trials(self, known[s:s + _SLOTS]).run()])
        return [self._sort_probability(next(probs)) if g else None for g in grams]

    def _probabilities_of(self, text: str) -> list[Any] | None:
        try:
            self.append(text)
            return self.get_probabilities()
        except LangDetectException:
            return None
        finally:
            self.text, self.langprob = "", None

    def _ngrams_of_text(self, text: str) -> list[str]:
        try:
            self.append(text)
            self.cleaning_text()
            return self._extract_ngrams()
        finally:
            self.text, self.langprob = "", None

    def append(self, text: str) -> None:
        text = self.URL_RE.sub(" ", text)
        text = self.MAIL_RE.sub(" ", text)
        text = NGram.normalize_vi(text)
        # langdetect copies the first max_text_length characters, dropping a space that follows a space
        self.text += _SPACE_RUNS.sub(" ", text[: self.max_text_length])

    def cleaning_text(self) -> None:
        latin = len(_LATIN.findall(self.text))
        non_latin = len(_NON_LATIN.findall(self.text))
        if latin * 2 < non_latin:
            self.text = _LATIN.sub("", self.text)

    def _extract_ngrams(self) -> list[str]:
        words = normalise_characters(self.text).split(" ")
        spaced = self._word_ngrams[True]
        result: list[str] = []
        for word in words[:-1]:
            if word:
                known = spaced.get(word)
                result += known if known is not None else self._ngrams_of_word(word, True)
        if words[-1]:
            result += self._ngrams_of_word(words[-1], False)
        return result

    def _ngrams_of_word(self, word: str, space_after: bool) -> list[str]:
        """The profiled n-grams langdetect lists while reading `word` (normalised, no spaces) after a
        space, and the space after it when there is one."""
        cache = self._word_ngrams[space_after]
        cached = cache.get(word)
        if cached is not None:
            return cached
        if len(cache) >= _WORD_CACHE_LIMIT:
            cache.clear()
        known = self.word_lang_prob_map
        out = []
        grams, capital_word = " ", False
        for ch in word + " " if space_after else word:  # NGram.add_char, then Detector._extract_ngrams
            last = grams[-1]
            if last == " ":
                grams, capital_word = " ", False
            elif len(grams) >= NGram.N_GRAM:
                grams = grams[1:]
            grams += ch
            if ch.isupper():
                if last.isupper():
                    capital_word = True
            else:
                capital_word = False
            if capital_word:
                continue
            for n in range(1, min(len(grams), NGram.N_GRAM) + 1):
                gram = grams[-n:]
                if gram != " " and gram in known:
                    out.append(gram)
        cache[word] = out
        return out

    def _fast(self) -> bool:
        """Whether the side-by-side trials apply (a seeded, quiet detector on a Python whose draws match)."""
        return not self.verbose and self._draws is not None and self._draws.matches_random()

    def _detect_block(self) -> None:
        if not self._fast():
            return super()._detect_block()
        self.cleaning_text()
        ngrams = self._extract_ngrams()
        if not ngrams:
            raise LangDetectException(ErrorCode.CantDetectError, "No features in text.")
        self.langprob = _Trials(self, [ngrams]).run()[0]


class _Trials:
    """The trials of a group of texts, side by side: row s of `prob` and `block` is text `text[s]`'s current
    trial (`picks[text[s]]` its draws); a text leaves when its last trial ends."""

    def __init__(self, detector: NumpyDetector, texts_ngrams: list[list[str]]):
        d = self.d = detector
        assert d._draws is not None
        self.draws = d._draws
        self.grams = [np.array([d._row[g] for g in ngrams], dtype=np.int64) for ngrams in texts_ngrams]
        count = len(texts_ngrams)
        self.blocks = -(-d.ITERATION_LIMIT // _BLOCK) + 1  # block b ends with draw 5b; the last with i >= limit
        self.text = np.arange(count)
        self.langprob = np.zeros((count, len(d.langlist)))
        self.prob = np.empty((count, len(d.langlist)))
        self.weight = np.empty(count)
        # by text: the profile rows of each block's draws (block 0: draw 0 after 4 places of padding)
        self.picks = np.zeros((count, self.blocks, _BLOCK), dtype=np.int64)
        self.block = np.zeros(count, dtype=np.int64)
        self.trial = [0] * count
        self.position = [0] * count  # in the seeded word stream
        self.spare: list[float | None] = [None] * count  # gauss()'s second normal
        self.ends: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * count  # stream position after draw j
        for slot in range(count):
            self._start_trial(slot)

    def _start_trial(self, slot: int) -> None:
        d, t = self.d, int(self.text[slot])
        z = self.spare[t]
        if z is None:
            z, self.spare[t] = self.draws.gauss_pair(self.position[t])
            self.position[t] += 4
        else:
            self.spare[t] = None
        alpha = d.alpha + (0.0 + z * 1.0) * d.ALPHA_WIDTH  # gauss(0.0, 1.0)
        self.weight[slot] = alpha / d.BASE_FREQ
        self.prob[slot] = d._init_probability()
        draws = _BLOCK * (self.blocks - 1) + 1
        indices, self.ends[t] = self.draws.choices(self.position[t], len(self.grams[t]), draws)
        self.picks[t].reshape(-1)[_BLOCK - 1:] = self.grams[t][indices]
        self.block[slot] = 0

    def run(self) -> list[list[float]]:
        d = self.d
        while len(self.text):
            prob = self.prob
            factors = self.d._profile[self.picks[self.text, self.block]]  # (texts, 5, languages)
            factors += self.weight[:, None, None]  # langdetect's `weight + lang_prob_map[i]`
            starting = self.block == 0
            if starting.any():
                factors[starting, :_BLOCK - 1] = 1.0  # padding: draw 0 is normalised alone
            for k in range(_BLOCK):
                prob *= factors[:, k]
            prob /= np.add.accumulate(prob, axis=1)[:, -1:]  # langdetect's sum, left to right
            done = prob.max(axis=1) > d.CONV_THRESHOLD
            done |= self.block == self.blocks - 1
            self.block += 1
            if done.any():
                self._end_trials(np.flatnonzero(done).tolist())
        return self.langprob.tolist()

    def _end_trials(self, slots: list[int]) -> None:
        d = self.d
        leaving = []
        for slot in slots:
            t = int(self.text[slot])
            self.langprob[t] += self.prob[slot] / d.n_trial
            self.position[t] = int(self.ends[t][_BLOCK * (int(self.block[slot]) - 1)])
            self.trial[t] += 1
            if self.trial[t] < d.n_trial:
                self._start_trial(slot)
            else:
                leaving.append(slot)
        if leaving:
            stay = np.ones(len(self.text), dtype=bool)
            stay[leaving] = False
            self.text, self.prob, self.weight, self.block = (
                self.text[stay], self.prob[stay], self.weight[stay], self.block[stay])
