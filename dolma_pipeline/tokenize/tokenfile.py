"""The OLMo/Dolma token-file format: raw memmaps of token ids plus a CSV of document boundaries.

One part is two files with the same stem:
- `part-<group>-<NNNNN>.npy`: a RAW, header-less little-endian array of token ids (what `np.memmap`
  reads; not `np.save` output). uint16 when the vocabulary has at most 65,536 ids, else uint32.
  Documents are concatenated, each followed by EOS (BOS before it only when configured); a document
  never spans two files.
- `part-<group>-<NNNNN>.csv.gz`: no header; one row per document, in file order:
  `start,end,id,src,loc` (token offsets into the `.npy`, end exclusive; `src` the input file; `loc` its
  1-based line). Rows are written with Python's default CSV dialect, as Dolma does.

This module only knows the format; it imports nothing from the tokenizer stage so that readers (the
trainer, `--verify`, Dolma's tools) can depend on it alone.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io as pyio
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

NPY_SUFFIX = ".npy"
CSV_SUFFIX = ".csv.gz"
PART_RE = re.compile(r"^part-(?P<group>.+)-(?P<index>\d{5,})\.npy$")
DTYPES = ("uint8", "uint16", "uint32", "uint64")
# Beside the parts of a finished `dolma tokenize` run: its config and its summary (tokenizer, sha256, dtype).
CONFIG_NAME = "dolma_tokenize.config.yaml"
SUMMARY_NAME = "dolma_tokenize.summary.json"


def part_stem(group: str, index: int) -> str:
    """`part-<group>-<NNNNN>` (five digits at least, as Dolma writes them)."""
    return f"part-{group}-{index:05d}"


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id of a vocabulary (uint16 up to 65,536 ids)."""
    if vocab_size <= 0:
        raise ValueError(f"vocabulary size must be positive, got {vocab_size}")
    if vocab_size <= 1 << 16:
        return np.dtype(np.uint16)
    return np.dtype(np.uint32) if vocab_size <= 1 << 32 else np.dtype(np.uint64)


def max_token_id(dtype: str | np.dtype) -> int:
    return int(np.iinfo(np.dtype(dtype)).max)


@dataclass(frozen=True)
class DocumentRow:
    """One row of a part's metadata: where a document's tokens lie and where the document came from."""

    start: int
    end: int
    id: str
    src: str
    loc: int


def format_rows(rows: Iterable[DocumentRow]) -> bytes:
    """CSV text (Python's default dialect, `\\r\\n` line ends, like Dolma's `csv.writer`)."""
    buffer = pyio.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow((row.start, row.end, row.id, row.src, row.loc))
    return buffer.getvalue().encode("utf-8")


def read_rows(csv_path: str) -> list[DocumentRow]:
    """Every row of a part's `.csv.gz` (or plain `.csv`)."""
    opener = gzip.open if csv_path.endswith(".gz") else open
    with opener(csv_path, "rt", encoding="utf-8", newline="") as fh:
        return [DocumentRow(int(r[0]), int(r[1]), r[2], r[3], int(r[4])) for r in csv.reader(fh) if r]


def metadata_path(npy_path: str) -> str:
    return npy_path[: -len(NPY_SUFFIX)] + CSV_SUFFIX if npy_path.endswith(NPY_SUFFIX) else npy_path + CSV_SUFFIX


def open_tokens(npy_path: str, dtype: str | np.dtype) -> np.memmap | np.ndarray:
    """The token ids of a part as a read-only memmap (an empty array for an empty file)."""
    dtype = np.dtype(dtype)
    size = os.path.getsize(npy_path)
    if size % dtype.itemsize:
        raise ValueError(f"{npy_path}: {size} bytes is not a whole number of {dtype.name} tokens")
    if size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(npy_path, dtype=dtype, mode="r")


def infer_dtype(npy_path: str, rows: list[DocumentRow]) -> np.dtype:
    """A header-less file does not say its dtype: its byte size over its token count (the last `end`) does."""
    tokens = max((r.end for r in rows), default=0)
    size = os.path.getsize(npy_path)
    if tokens == 0 or size % tokens:
        raise ValueError(f"{npy_path}: cannot infer the dtype ({size} bytes for {tokens} tokens in its metadata)")
    itemsize = size // tokens
    dtype = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}.get(itemsize)
    if dtype is None:
        raise ValueError(f"{npy_path}: {itemsize} bytes per token is not an unsigned integer dtype")
    return np.dtype(dtype)


def list_parts(directory: str, group: str | None = None) -> list[str]:
    """The `.npy` parts of a directory, sorted by group then index."""
    names = []
    for path in glob.glob(os.path.join(glob.escape(directory), "part-*.npy")):
        match = PART_RE.match(os.path.basename(path))
        if match and (group is None or match["group"] == group):
            names.append((match["group"], int(match["index"]), path))
    return [path for _, _, path in sorted(names)]


def iter_documents(npy_path: str, dtype: str | np.dtype | None = None) -> Iterator[tuple[DocumentRow, np.ndarray]]:
    """Each document of a part with its tokens (a view into the memmap), in file order."""
    rows = read_rows(metadata_path(npy_path))
    tokens = open_tokens(npy_path, dtype if dtype is not None else infer_dtype(npy_path, rows))
    for row in rows:
        yield row, tokens[row.start : row.end]


class PartWriter:
    """Write one part atomically: tokens are streamed to the `.npy`, rows to the `.csv.gz`.

    Both files appear only when the context exits without error (the `.csv.gz` first, so a visible
    `.npy` always has its metadata).
    """

    def __init__(self, npy_path: str, dtype: str | np.dtype):
        from dolma_pipeline.io import AtomicWriter

        self.npy_path = npy_path
        self.dtype = np.dtype(dtype)
        self._tokens = AtomicWriter(npy_path)
        self._rows = AtomicWriter(metadata_path(npy_path))
        self.tokens_written = 0
        self.documents = 0

    def __enter__(self) -> PartWriter:
        self._tokens.__enter__()
        self._rows.__enter__()
        return self

    def write(self, tokens: np.ndarray, ids: list[str], srcs: list[str], locs: list[int], lengths: np.ndarray) -> None:
        """Append documents whose tokens are concatenated in `tokens` (`lengths[i]` tokens each)."""
        if tokens.dtype != self.dtype:
            raise TypeError(f"tokens are {tokens.dtype}, the part is {self.dtype}")
        ends = self.tokens_written + np.cumsum(lengths, dtype=np.int64)
        starts = ends - lengths
        self._tokens.write(tokens.tobytes())
        self._rows.write(format_rows(DocumentRow(int(s), int(e), i, src, int(loc))
                                     for s, e, i, src, loc in zip(starts, ends, ids, srcs, locs)))
        self.tokens_written += int(tokens.size)
        self.documents += len(ids)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._rows.__exit__(exc_type, exc, tb)
            self._tokens.__exit__(exc_type, exc, tb)
            return
        self._rows.__exit__(None, None, None)
        self._tokens.__exit__(None, None, None)
