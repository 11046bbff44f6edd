"""The text a fastText classifier sees: one preparation function and one unit splitter, shared.

Training (`dolma train-classifier`) and tagging (`taggers/fasttext_classifier.py`) both call `units()`,
so a model is always applied to text prepared exactly as its training examples were. Both follow Dolma's
fastText taggers (`core/ft_tagger.py`, `taggers/jigsaw.py`):

- units: `document` is the whole text; `paragraph` is Dolma's `split_paragraphs` (each line with its
  newline, whitespace-only lines left out); `sentence` is Dolma's `split_sentences` (blingfire's sentence
  breaker, offsets mapped from UTF-8 bytes to characters exactly as blingfire's Python wrapper maps them,
  here with numpy instead of a Python loop over every byte);
- preparation: `text.replace("\\n", " ").strip()`, what Dolma passes to `predict` (fastText reads one
  line; it splits words on ASCII whitespace itself).
"""

from __future__ import annotations

import ctypes
from typing import Any, Literal

import numpy as np

from dolma_pipeline.errors import ConfigError

Mode = Literal["document", "paragraph", "sentence"]
MODES: tuple[str, ...] = ("document", "paragraph", "sentence")
PREPARATION = "dolma-ft-v1: units as Dolma's split_paragraphs / split_sentences (blingfire); text.replace('\\n', ' ').strip()"


def prepare(text: str) -> str:
    """The one line fastText reads for a unit of text (Dolma's preparation: newlines to spaces, stripped)."""
    return text.replace("\n", " ").strip()


def split_paragraphs(text: str) -> list[tuple[int, int]]:
    """Dolma's paragraphs: each line with its newline (the last one may lack it), blank lines left out."""
    out, start, length = [], 0, len(text)
    for line in text.split("\n"):
        end = start + len(line) + 1
        if line.strip():
            out.append((start, min(end, length)))
        start = end
    return out


_BLINGFIRE: Any = None


def _blingfire() -> Any:
    global _BLINGFIRE
    if _BLINGFIRE is None:
        try:
            import blingfire
        except ImportError as e:  # a dependency of the project; say what is missing
            raise ConfigError(f"sentence mode needs the `blingfire` package ({e})") from None
        lib = blingfire.blingfire
        lib.TextToSentencesWithOffsets.restype = ctypes.c_int
        _BLINGFIRE = lib
    return _BLINGFIRE


_BUFFER: Any = None


def _output_buffer(capacity: int) -> Any:
    """A reused output buffer of at least `capacity` bytes (blingfire's wrapper makes a new one per call)."""
    global _BUFFER
    if _BUFFER is None or len(_BUFFER) < capacity:
        _BUFFER = ctypes.create_string_buffer(max(capacity, 2 * len(_BUFFER) if _BUFFER is not None else 1 << 16))
    return _BUFFER


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Dolma's sentences (blingfire 0.1.8 `text_to_sentences_and_offsets`), as character offsets.

    The same native call and the same byte-to-character mapping as blingfire's wrapper, including its
    quirks (a whitespace-only text gives one sentence), so spans equal Dolma's.
    """
    if not text:
        return []
    data = text.encode("utf-8", "replace")  # a lone surrogate is one character and becomes one byte, "?"
    size = len(data)
    lib = _blingfire()
    capacity = 2 * size
    out = _output_buffer(capacity)
    starts = np.zeros(capacity, dtype=np.int32)
    ends = np.zeros(capacity, dtype=np.int32)
    pointer = ctypes.POINTER(ctypes.c_int32)
    written = lib.TextToSentencesWithOffsets(ctypes.c_char_p(data), ctypes.c_int(size), out,
                                             starts.ctypes.data_as(pointer), ends.ctypes.data_as(pointer),
                                             ctypes.c_int(capacity))
    if written == -1 or written > capacity:
        return []
    text_out = out.raw[:written]  # the wrapper reads its zero-filled buffer up to the first NUL
    count = text_out[: text_out.find(b"\0")].count(b"\n") + 1 if b"\0" in text_out else text_out.count(b"\n") + 1
    targets = np.empty(2 * count, dtype=np.int64)
    targets[0::2] = starts[:count]
    targets[1::2] = ends[:count].astype(np.int64) + 1  # blingfire's ends are inclusive
    raw = np.frombuffer(data, dtype=np.uint8)
    char_start = (raw & 0xC0) != 0x80
    head, last = targets[:-1], targets[-1]
    simple = (np.all(np.diff(targets) >= 0) and head.min() >= 0 and head.max() < size
              and bool(char_start[head].all()) and (last == size or (0 <= last < size and char_start[last])))
    if simple:
        char_index = np.cumsum(char_start) - 1
        offsets = np.where(targets < size, char_index[np.minimum(targets, size - 1)], len(text)).tolist()
    else:
        offsets = _map_offsets_slowly(data, targets.tolist(), len(text))
    return [(offsets[i], offsets[i + 1]) for i in range(0, len(offsets) - 1, 2)]


def _map_offsets_slowly(data: bytes, targets: list[int], length: int) -> list[int]:
    """blingfire's own loop, for offsets that are not plain character starts (kept only while complete)."""
    mapped: list[int] = []
    position = 0
    for byte_index, byte in enumerate(data):
        if byte & 0xC0 != 0x80:
            while len(mapped) < len(targets) and targets[len(mapped)] == byte_index:
                mapped.append(position)
            position += 1
    if len(mapped) < len(targets):
        mapped.append(length)
    return mapped[: len(mapped) - len(mapped) % 2]


def split_units(text: str, mode: str) -> list[tuple[int, int]]:
    """The (start, end) character ranges a classifier scores in `mode` (document, paragraph, sentence)."""
    if mode == "document":
        return [(0, len(text))]
    if mode == "paragraph":
        return split_paragraphs(text)
    if mode == "sentence":
        return split_sentences(text)
    raise ConfigError(f"unknown classifier mode {mode!r}; valid choices: {', '.join(MODES)}")


def units(text: str, mode: str) -> list[tuple[int, int, str]]:
    """(start, end, prepared text) of every unit of `text`: what training writes and tagging predicts on."""
    return [(start, end, prepare(text[start:end])) for start, end in split_units(text, mode)]
