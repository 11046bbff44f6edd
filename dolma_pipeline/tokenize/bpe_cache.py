"""Exact, cached encoding for byte-level BPE tokenizers (the GPT-2 / GPT-NeoX / OLMo family).

`tokenizers` spends most of its time per token outside BPE: normalising and pre-tokenising with
alignment tracking, then building an `Encoding`. This encoder gives the same ids for far less work by
caching whole *chunks* of text: a chunk is a run of whitespace followed by a run of non-whitespace
(`" word,"`, `"\\n\\n    def"`). Each document is cut into chunks by one C-level `re.findall`, and the
ids of each chunk are looked up; only chunks never seen before are encoded.

Why the ids are the same as `Tokenizer.encode(text).ids` (tests/tokenize/test_bpe_cache.py checks it on
every code point in several contexts and on adversarial text; `bench/tokenize_bench.py` compares every
document with Dolma's):
- Byte-level pre-tokenisation (the GPT-2 regex) never puts whitespace after non-whitespace in one piece,
  and never looks behind; so a piece never crosses the start of a whitespace run that follows
  non-whitespace, and the pieces of a text are the pieces of its chunks, concatenated.
- Every added token of a supported tokenizer is all whitespace or all non-whitespace (the OLMo
  tokenizer's runs of spaces and `|||EMAIL_ADDRESS|||`), so an added-token match lies inside one run and
  so inside one chunk. As in `tokenizers`, a chunk is split at its added tokens (leftmost-longest) and
  the text between them is pre-tokenised on its own.
- BPE works on each piece alone. A piece is pre-tokenised here with the GPT-2 regex (the `regex`
  module for `\\p{L}` / `\\p{N}`) and mapped to bytes as `ByteLevel` does; BPE itself is the tokenizer's
  model, `model.tokenize`, so merges are never re-implemented.
- A character that the `regex` module and the tokenizer's Oniguruma class differently (they follow
  different Unicode versions) is found by probing each code point once; its chunk goes to `tokenizers`.
- Normalisation is the tokenizer's own (`normalizer.normalize_str`) on any text that is not ASCII, and
  a document holding an un-normalised added token (`<|endoftext|>`, `<|padding|>`) is encoded whole by
  `tokenizers`, which splits those before normalising.
- Whitespace is Unicode's White_Space property, spelt out (a fixed set that Oniguruma's \\s also uses).

Any tokenizer outside this family (another pre-tokeniser or normaliser, BPE dropout, an added token
mixing whitespace and text, `lstrip` / `rstrip` / `single_word`) is refused by `supports()` and the caller
uses `tokenizers` directly.
"""

from __future__ import annotations

import gc
import json
import re
import sys
from collections.abc import Sequence
from itertools import chain, compress

import numpy as np
import regex
from tokenizers import pre_tokenizers

# Unicode White_Space: what the tokenizer's regex engine (Oniguruma) calls \s. Python's own \s also
# takes U+001C..U+001F, which Oniguruma does not, so the class is spelt out.
WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_CHUNK = re.compile(f"[{WHITESPACE}]*[^{WHITESPACE}]+|[{WHITESPACE}]+")
# The GPT-2 pre-tokenisation pattern of `ByteLevel(use_regex=True)`, with \s spelt out as above.
_PIECES = regex.compile(
    rf"'s|'t|'re|'ve|'m|'ll|'d| ?\p{{L}}+| ?\p{{N}}+| ?[^{WHITESPACE}\p{{L}}\p{{N}}]+"
    rf"|[{WHITESPACE}]+(?![^{WHITESPACE}])|[{WHITESPACE}]+")
# The same pattern for text known to be ASCII, where \p{L} is [A-Za-z] and \p{N} is [0-9]: `re` scans
# it about three times faster than `regex`.
_ASCII_WHITESPACE = "\t\n\v\f\r "
_ASCII_PIECES = re.compile(
    rf"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^{_ASCII_WHITESPACE}A-Za-z0-9]+"
    rf"|[{_ASCII_WHITESPACE}]+(?![^{_ASCII_WHITESPACE}])|[{_ASCII_WHITESPACE}]+")
_WS_CHARS = frozenset(ch for ch in map(chr, range(0x3001)) if re.fullmatch(f"[{WHITESPACE}]", ch))
_WS_STRING = "".join(sorted(_WS_CHARS))
_SUPPORTED_NORMALIZERS = (None, "NFC")


def _byte_level_alphabet() -> str:
    """`ByteLevel`'s byte-to-character table (GPT-2's `bytes_to_unicode`), as a `str.translate` table."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, shifted = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + shifted)
            shifted += 1
    return str.maketrans({chr(b): c for b, c in table.items()})


_BYTE_LEVEL = _byte_level_alphabet()


def _byte_level(piece: str) -> str:
    """A piece as `ByteLevel` hands it to BPE: one character per UTF-8 byte."""
    return piece.encode("utf-8").decode("latin-1").translate(_BYTE_LEVEL)


class UnsupportedTokenizer(ValueError):
    """The tokenizer is outside the family `CachedEncoder` reproduces; encode with `tokenizers`."""


def supports(tokenizer) -> bool:
    """Whether `tokenizer` is in the family whose ids this encoder reproduces exactly."""
    return _supported(json.loads(tokenizer.to_str()))


def _supported(spec: dict) -> bool:
    normalizer = spec.get("normalizer")
    pre = spec.get("pre_tokenizer") or {}
    model = spec.get("model") or {}
    if (normalizer or {}).get("type") not in _SUPPORTED_NORMALIZERS:
        return False
    if pre.get("type") != "ByteLevel" or not pre.get("use_regex", True) or pre.get("add_prefix_space"):
        return False
    if model.get("type") != "BPE" or model.get("dropout") or model.get("continuing_subword_prefix") \
            or model.get("end_of_word_suffix"):
        return False
    for added in spec.get("added_tokens", []):
        content = added["content"]
        if added.get("lstrip") or added.get("rstrip") or added.get("single_word") or not content:
            return False
        spaces = sum(ch in _WS_CHARS for ch in content)
        if spaces not in (0, len(content)):
            return False
    return True


class CachedEncoder:
    """Encodes batches of texts to ids exactly as `tokenizer.encode(text, add_special_tokens=False)`.

    Holds at most about `max_chunks` cached chunks; the cache is dropped whole when it is full, so the
    memory is bounded and the ids never depend on what was cached.
    """

    def __init__(self, tokenizer, max_chunks: int = 1 << 20):
        spec = json.loads(tokenizer.to_str())  # the whole vocabulary: about 0.1 s, so parsed once
        if not _supported(spec):
            raise UnsupportedTokenizer("tokenizer is not a plain byte-level BPE tokenizer; encode with tokenizers")
        self.tokenizer = tokenizer
        self.model = tokenizer.model
        self.normalizer = tokenizer.normalizer
        self.max_chunks = max_chunks
        raw = [a["content"] for a in spec["added_tokens"] if not a.get("normalized", True)]
        normalized = [a["content"] for a in spec["added_tokens"] if a.get("normalized", True)]
        self._raw_added = _any_of(raw)
        self._normalized_added = _any_of(normalized, capture=True)
        self._added_ids = {a["content"]: (a["id"],) for a in spec["added_tokens"] if a.get("normalized", True)}
        self._clear()

    def _clear(self) -> None:
        self._chunk_index: dict[str, int] = {}
        self._piece_ids: dict[str, tuple[int, ...]] = dict(self._added_ids)
        self._heads: dict[str, tuple[list[str], str]] = {}
        self._starts = np.zeros(1024, dtype=np.int64)
        self._lengths = np.zeros(1024, dtype=np.int64)
        self._pool = np.zeros(1 << 16, dtype=np.uint32)
        self._pool_used = 0

    # ---------------------------------------------------------------------------------------- public
    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(all ids of all texts concatenated as uint32, ids per text)."""
        # Encoding makes millions of small lists and tuples and no reference cycles; the cyclic collector,
        # left on, would walk the whole cache again and again (a third of the time on English text).
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._encode(texts)
        finally:
            if collecting:
                gc.enable()

    def _encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if len(self._chunk_index) > self.max_chunks:
            self._clear()
        whole: list[int] = []  # texts tokenizers encodes itself
        chunk_lists: list[list[str]] = []
        for i, text in enumerate(texts):
            if self._raw_added is not None and self._raw_added.search(text):
                whole.append(i)
                chunk_lists.append([])
                continue
            if not text.isascii() and self.normalizer is not None:
                text = self.normalizer.normalize_str(text)
            chunk_lists.append(_CHUNK.findall(text))
        all_chunks = list(chain.from_iterable(chunk_lists))
        missing = set(all_chunks).difference(self._chunk_index)
        if missing:
            self._add_chunks(list(missing))
        index = np.fromiter(map(self._chunk_index.__getitem__, all_chunks), dtype=np.int64, count=len(all_chunks))
        lengths = self._lengths[index]
        flat = _gather(self._pool, self._starts[index], lengths)
        counts = _sum_by_group(lengths, np.fromiter(map(len, chunk_lists), dtype=np.int64, count=len(texts)))
        if whole:
            flat, counts = self._splice_whole(texts, whole, flat, counts)
        return flat, counts

    # -------------------------------------------------------------------------------------- internals
    def _splice_whole(self, texts, whole: list[int], flat: np.ndarray, counts: np.ndarray):
        """Put the ids of the texts `tokenizers` encoded whole into their places."""
        encoded = self.tokenizer.encode_batch_fast([texts[i] for i in whole], add_special_tokens=False)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        pieces = [flat[bounds[i]:bounds[i + 1]] for i in range(len(texts))]
        for i, e in zip(whole, encoded):
            pieces[i] = np.asarray(e.ids, dtype=np.uint32)
            counts[i] = len(e.ids)
        return np.concatenate(pieces), counts

    def _add_chunks(self, chunks: list[str]) -> None:
        """Encode chunks not in the cache and add them to it."""
        tails = list(chunks)  # the text of each chunk to pre-tokenise here
        heads: dict[int, list] = {}  # what comes before a chunk's tail: added tokens, pieces, ids by tokenizers
        by_tokenizers = np.flatnonzero(_holding_disputed_characters(chunks)).tolist()
        if by_tokenizers:
            encoded = self.tokenizer.encode_batch_fast([chunks[k] for k in by_tokenizers], add_special_tokens=False)
            for k, e in zip(by_tokenizers, encoded):
                key = (chunks[k],)  # a tuple never equals a piece
                self._piece_ids[key] = tuple(e.ids)
                heads[k], tails[k] = [key], ""
        if self._normalized_added is not None:
            for k, c in enumerate(chunks):
                if k not in heads and self._normalized_added.search(c):
                    heads[k], tails[k] = self._split_head(c)
        piece_lists = _pre_tokenize(tails)
        for k, head in heads.items():
            piece_lists[k] = head + piece_lists[k]
        pieces = list(chain.from_iterable(piece_lists))
        for piece in set(pieces).difference(self._piece_ids):
            self._piece_ids[piece] = tuple(t.id for t in self.model.tokenize(_byte_level(piece)))
        ids = list(map(self._piece_ids.__getitem__, pieces))
        piece_lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        tokens = np.fromiter(chain.from_iterable(ids), dtype=np.uint32, count=int(piece_lengths.sum()))
        chunk_lengths = _sum_by_group(piece_lengths, np.fromiter(map(len, piece_lists), np.int64, len(piece_lists)))
        self._append(chunks, tokens, chunk_lengths)

    def _split_head(self, chunk: str) -> tuple[list[str], str]:
        """(pieces up to the chunk's last added token, the text after it, to pre-tokenise as a chunk).

        As in `tokenizers`, the text between two added tokens is pre-tokenised on its own. The usual
        case is a run of spaces in front of a word (`"\\n    return"`): its head is cached.
        """
        text_start = len(chunk) - len(chunk.lstrip(_WS_STRING))
        if text_start == 0 or self._normalized_added.search(chunk, text_start):
            return self._split_added(chunk), ""
        space, text = chunk[:text_start], chunk[text_start:]
        head = self._heads.get(space)
        if head is None:
            last_end = max(m.end() for m in self._normalized_added.finditer(space))
            head = self._heads[space] = (self._split_added(space[:last_end]), space[last_end:])
        return head[0], head[1] + text

    def _split_added(self, text: str) -> list[str]:
        """The added tokens in `text` and the pieces of the text between them, each part pre-tokenised alone."""
        out: list[str] = []
        for k, part in enumerate(self._normalized_added.split(text)):
            if k % 2:
                out.append(part)  # an added token: its id is in `_piece_ids`
            elif part:
                out.extend(_PIECES.findall(part))
        return out

    def _append(self, chunks: list[str], tokens: np.ndarray, lengths: np.ndarray) -> None:
        first = len(self._chunk_index)
        n = first + len(chunks)
        if n > len(self._starts):
            self._starts = np.resize(self._starts, max(n, 2 * len(self._starts)))
            self._lengths = np.resize(self._lengths, len(self._starts))
        need = self._pool_used + len(tokens)
        if need > len(self._pool):
            self._pool = np.resize(self._pool, max(need, 2 * len(self._pool)))
        self._pool[self._pool_used:need] = tokens
        self._starts[first:n] = self._pool_used + np.cumsum(lengths) - lengths
        self._lengths[first:n] = lengths
        self._pool_used = need
        self._chunk_index.update(zip(chunks, range(first, n)))


def _pre_tokenize(chunks: list[str]) -> list[list[str]]:
    """The pieces of each chunk: all-ASCII chunks scanned together by `re`, the others by `regex`."""
    out: list[list[str]] = [[] for _ in chunks]
    ascii_chunks, other = [], []
    for k, c in enumerate(chunks):
        if c and c[-1] in _WS_CHARS:  # whitespace only (a text's end): it cannot be joined to the next
            out[k] = _PIECES.findall(c)
        elif c:
            (ascii_chunks if c.isascii() else other).append(k)
    for group, pattern in ((ascii_chunks, _ASCII_PIECES), (other, _PIECES)):
        if group:
            for k, pieces in zip(group, _pre_tokenize_joined([chunks[k] for k in group], pattern)):
                out[k] = pieces
    return out


def _pre_tokenize_joined(chunks: list[str], pattern) -> list[list[str]]:
    """The pieces of each chunk, from one regex scan of the chunks concatenated.

    Concatenation keeps every chunk's pieces because each chunk ends with non-whitespace, and a chunk
    that starts with non-whitespace (a document's first) gets a `"\\n"` in front, which the regex always
    makes a piece of its own and which is dropped.
    """
    starts_text = np.array([c[0] not in _WS_CHARS for c in chunks], dtype=bool)
    text = "".join(["\n" + c if s else c for c, s in zip(chunks, starts_text.tolist())])
    found = pattern.findall(text)
    piece_lengths = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
    piece_starts = np.cumsum(piece_lengths) - piece_lengths
    chunk_lengths = np.fromiter(map(len, chunks), dtype=np.int64, count=len(chunks)) + starts_text
    chunk_starts = np.cumsum(chunk_lengths) - chunk_lengths
    keep = ~np.isin(piece_starts, chunk_starts[starts_text])
    owner = np.searchsorted(chunk_starts, piece_starts[keep], side="right") - 1
    bounds = np.searchsorted(owner, np.arange(len(chunks) + 1)).tolist()
    kept = list(compress(found, keep.tolist()))
    return [kept[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


# Per code point: 0 not yet looked at, 1 classed alike by `regex` and the tokenizer, 2 not (or a surrogate).
# The `regex` module and the tokenizer's regex engine (Oniguruma) follow different Unicode versions, so a
# recently assigned character may be a letter to one and not to the other. Each code point met is probed
# once through the tokenizer's own pre-tokeniser; chunks holding one classed differently go to `tokenizers`.
_CODE_POINTS = np.zeros(sys.maxunicode + 1, dtype=np.int8)
_REFERENCE_PRE_TOKENIZER = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


def _classed_alike(point: int) -> bool:
    """Whether `regex` and the tokenizer split the same probe around `chr(point)` identically.

    After a letter, a digit and punctuation, and between spaces: a character merges with the letter
    only if it is a letter, with the digit only if a number, with the punctuation only if neither and not
    whitespace. So equal pieces mean the same class in both engines, and the same pieces in any text.
    """
    c = chr(point)
    probe = f"a{c}1{c}.{c} {c}{c} {c}'s"
    try:
        reference = [piece for piece, _ in _REFERENCE_PRE_TOKENIZER.pre_tokenize_str(probe)]
    except Exception:  # a lone surrogate: tokenizers refuses it, and so must we
        return False
    ours = [_byte_level(p) for p in _PIECES.findall(probe)]
    return ours == reference


def _disputed(points: np.ndarray) -> np.ndarray:
    """Which of `points` the two engines class differently (see `_CODE_POINTS`)."""
    for c in np.unique(points[_CODE_POINTS[points] == 0]).tolist():
        _CODE_POINTS[c] = 1 if _classed_alike(c) else 2
    return _CODE_POINTS[points] == 2


def _holding_disputed_characters(chunks: list[str]) -> np.ndarray:
    """Which chunks hold a character the two engines class differently; `tokenizers` encodes those."""
    flags = np.zeros(len(chunks), dtype=bool)
    wide = [k for k, c in enumerate(chunks) if not c.isascii()]
    if not wide:
        return flags
    texts = [chunks[k] for k in wide]
    points = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype="<u4")
    disputed = _disputed(points)
    if disputed.any():
        owner = np.repeat(np.arange(len(texts)), np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)))
        flags[np.asarray(wide)[np.unique(owner[disputed])]] = True
    return flags


def _gather(pool: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The pool's slices `[start, start + length)`, concatenated, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.uint32)
    ends = np.cumsum(lengths)
    return pool[np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - lengths), lengths)]


def _any_of(contents: list[str], capture: bool = False) -> re.Pattern | None:
    """Leftmost-longest matching of any of `contents` (longer alternatives first), as `tokenizers` does."""
    if not contents:
        return None
    pattern = "|".join(re.escape(c) for c in sorted(contents, key=len, reverse=True))
    return re.compile(f"({pattern})" if capture else pattern)


def _sum_by_group(values: np.ndarray, group_sizes: list[int]) -> np.ndarray:
    """Sums of consecutive groups of `values` (a group may be empty)."""
    bounds = np.concatenate([[0], np.cumsum(group_sizes, dtype=np.int64)])
    totals = np.concatenate([[0], np.cumsum(values)])
    return totals[bounds[1:]] - totals[bounds[:-1]]
