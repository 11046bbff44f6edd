"""The text a fastText classifier sees: one preparation function and one unit splitter, shared.

Training (`dolma train-classifier`) and tagging (`taggers/fasttext_classifier.py`) both call `units()`,
so a model is always applied to text prepared exactly as its training examples were. Both follow Dolma's
fastText taggers (`core/ft_tagger.py`, `taggers/jigsaw.py`):

- units: `document` is the whole text; `paragraph` is Dolma's `split_paragraphs` (each line with its
  newline, whitespace-only lines left out); `sentence` is Dolma's `split_sentences` (blingfire's sentence
  breaker, offsets mapped from UTF-8 bytes to characters exactly as blingfire's Python wrapper maps them,
  here per sentence boundary instead of a Python loop over every byte);
- preparation: `text.replace("\\n", " ").strip()`, what Dolma passes to `predict` (fastText reads one
  line; it splits words on ASCII whitespace itself).
"""

from __future__ import annotations

import ctypes
from typing import Any, Literal

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


class _Buffers:
    """blingfire's output text and offset arrays, reused and grown (its wrapper makes new ones per call).

    Reuse is safe: blingfire zeroes both offset arrays up to the capacity it is given and writes its text
    (ending with a NUL) from the start of the buffer; only the first `capacity` elements are ever read.
    """

    size = 0
    text: Any = None
    starts: Any = None
    ends: Any = None

    @classmethod
    def get(cls, capacity: int) -> tuple[Any, Any, Any]:
        if capacity > cls.size:
            cls.size = max(capacity, 2 * cls.size, 1 << 16)
            cls.text = ctypes.create_string_buffer(cls.size)
            cls.starts = (ctypes.c_int32 * cls.size)()
            cls.ends = (ctypes.c_int32 * cls.size)()
        return cls.text, cls.starts, cls.ends


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Dolma's sentences (blingfire 0.1.8 `text_to_sentences_and_offsets`), as character offsets.

    The same native call (same capacity, 2 bytes per input byte) and the same byte-to-character mapping
    as blingfire's wrapper, including its quirks (a whitespace-only text gives one sentence), so spans
    equal Dolma's. The mapping is done per sentence boundary, not per byte: ASCII text maps bytes to
    themselves, other text counts the characters decoded between consecutive boundaries.
    """
    if not text:
        return []
    data = text.encode("utf-8", "replace")  # a lone surrogate is one character and becomes one byte, "?"
    size = len(data)
    capacity = 2 * size
    out, starts, ends = _Buffers.get(capacity)
    written = _blingfire().TextToSentencesWithOffsets(data, size, out, starts, ends, capacity)
    if written == -1 or written > capacity:
        return []
    text_out = ctypes.string_at(out, written)  # the wrapper reads its zero-filled buffer up to the first NUL
    nul = text_out.find(b"\0")
    count = (text_out if nul < 0 else text_out[:nul]).count(b"\n") + 1
    targets = [0] * (2 * count)
    targets[0::2] = starts[:count]
    targets[1::2] = [end + 1 for end in ends[:count]]  # blingfire's ends are inclusive
    offsets = _map_offsets(data, targets, len(text), text.isascii())
    return list(zip(offsets[0::2], offsets[1::2]))


def _map_offsets(data: bytes, targets: list[int], length: int, ascii: bool) -> list[int]:
    """The wrapper's byte-to-character mapping of ordered boundaries (each a character start, the last
    possibly the end of the text); anything else goes through the wrapper's own loop."""
    size = len(data)
    ordered = targets[0] >= 0 and targets[-1] <= size and (len(targets) < 2 or targets[-2] < size) \
        and all(a <= b for a, b in zip(targets, targets[1:]))
    if ordered and ascii:
        return targets  # one byte per character
    if ordered and all(data[t] & 0xC0 != 0x80 for t in targets if t < size):
        offsets, chars, previous = [], 0, 0
        for t in targets:
            if t != previous:
                chars += len(data[previous:t].decode("utf-8"))
                previous = t
            offsets.append(chars)
        return offsets
    return _map_offsets_slowly(data, targets, length)


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
