"""The two work units of `dolma tokenize`, each a module-level function over a small shard dataclass.

Stage 1 (`encode_shard`, one per input file): stream the documents, encode them in batches and write
three intermediate files in the work directory: `<key>.tokens` (raw ids, documents concatenated),
`<key>.docs` (int64 rows `token_start, token_end, loc, id_start, id_end`) and `<key>.ids` (the
UTF-8 ids, concatenated). All three are memory-mapped by stage 2, so no worker ever loads the corpus.

Stage 2 (`write_part`, one per output part): the driver has fixed a global document order from the
seed and cut it into parts; each part is gathered from the intermediate files and written atomically.
Its bytes depend only on the inputs, the tokenizer and the seed, never on which worker ran it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter, OrderedDict
from contextlib import ExitStack
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from dolma_pipeline import io
from dolma_pipeline.documents import Document
from dolma_pipeline.errors import DataFormatError
from dolma_pipeline.executor import Shard
from dolma_pipeline.lines import DEFAULT_MAX_LINE_BYTES
from dolma_pipeline.reader import ReadStats, read_documents
from dolma_pipeline.safety import strip_credentials
from dolma_pipeline.tokenize.tokenfile import PartWriter
from dolma_pipeline.tokenize.tokenizer_io import DocumentEncoder, load_tokenizer, set_encoder_threads

log = logging.getLogger(__name__)

DOC_FIELDS = 5  # token_start, token_end, loc, id_start, id_end
NO_SOURCE = "(no source)"


def intermediate_base(work_dir: str, input_path: str) -> str:
    """`<work>/encoded/<hash of the input's canonical path>`: stable whatever the file's position in the run."""
    key = hashlib.sha1(io.canonical_path(input_path).encode()).hexdigest()[:20]
    return os.path.join(work_dir, "encoded", key)


# ------------------------------------------------------------------------------------------ stage 1
@dataclass
class EncodeShard(Shard):
    tokenizer_path: str = ""
    dtype: str = "uint16"
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    strip_text: bool = True
    on_error: str = "fail"
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    batch_size: int = 1024
    encoder_threads: int = 1
    cached_encoder: bool = True


@lru_cache(maxsize=2)
def _worker_encoder(shard_options: tuple) -> DocumentEncoder:
    """One encoder per process and options, so its chunk cache serves every file the process encodes."""
    path, threads, bos, eos, strip, cached = shard_options
    set_encoder_threads(threads)  # before this process's first batch: the Rust pool is sized once
    return DocumentEncoder(load_tokenizer(path), bos, eos, strip, cached)


class _EncodedFile:
    """Accumulates the three intermediate files of one input while its batches are encoded."""

    def __init__(self, tokens, docs, ids, dtype: np.dtype):
        self.tokens_out, self.docs_out, self.ids_out, self.dtype = tokens, docs, ids, dtype
        self.token_offset = 0
        self.id_offset = 0
        self.documents = 0
        self.empty = 0
        self.source_documents: Counter[str] = Counter()
        self.source_tokens: Counter[str] = Counter()

    def add(self, batch: list[Document], tokens: np.ndarray, lengths: np.ndarray, bad: set[int]) -> None:
        """Append a batch: each document's ids are the next `lengths[i]` of `tokens`.

        A document with no ids is empty (skipped, counted) unless it is in `bad` (already counted).
        """
        self.empty += sum(1 for i, n in enumerate(lengths.tolist()) if n == 0 and i not in bad)
        kept = [doc for doc, n in zip(batch, lengths.tolist()) if n]
        if not kept:
            return
        lengths = lengths[lengths > 0]
        total = int(lengths.sum())
        id_bytes = [doc.id.encode("utf-8") for doc in kept]
        id_ends = self.id_offset + np.cumsum([len(b) for b in id_bytes], dtype=np.int64)
        token_ends = self.token_offset + np.cumsum(lengths)
        rows = np.empty((len(kept), DOC_FIELDS), dtype="<i8")
        rows[:, 0] = token_ends - lengths
        rows[:, 1] = token_ends
        rows[:, 2] = [doc.line for doc in kept]
        rows[:, 3] = id_ends - [len(b) for b in id_bytes]
        rows[:, 4] = id_ends
        self.tokens_out.write(tokens.astype(self.dtype).tobytes())
        self.docs_out.write(rows.tobytes())
        self.ids_out.write(b"".join(id_bytes))
        self.token_offset += total
        self.id_offset = int(id_ends[-1])
        self.documents += len(kept)
        for doc, n in zip(kept, lengths.tolist()):
            source = doc.source if isinstance(doc.source, str) else NO_SOURCE
            self.source_documents[source] += 1
            self.source_tokens[source] += n


def encode_shard(shard: EncodeShard) -> dict[str, Any]:
    """Encode one input file into its intermediate files; returns the shard's stats."""
    cpu_start = time.process_time()
    encoder = _worker_encoder((shard.tokenizer_path, shard.encoder_threads, shard.bos_token_id, shard.eos_token_id,
                               shard.strip_text, shard.cached_encoder))
    base = shard.output[: -len(".tokens")]
    stats = ReadStats()
    dtype = np.dtype(shard.dtype)
    try:
        with ExitStack() as stack:
            # Entered first, renamed last: a visible `.tokens` means its `.docs` and `.ids` are complete.
            tokens = stack.enter_context(io.AtomicWriter(shard.output))
            docs = stack.enter_context(io.AtomicWriter(base + ".docs"))
            ids = stack.enter_context(io.AtomicWriter(base + ".ids"))
            encoded = _EncodedFile(tokens, docs, ids, dtype)
            batch: list[Document] = []
            for doc in read_documents(shard.input, shard.on_error, stats, max_line_bytes=shard.max_line_bytes):
                batch.append(doc)
                if len(batch) >= shard.batch_size:
                    encoded.add(batch, *_encode(encoder, batch, shard, stats))
                    batch = []
            if batch:
                encoded.add(batch, *_encode(encoder, batch, shard, stats))
    except DataFormatError as e:
        if shard.on_error == "fail":
            raise
        return {"skipped_file": True, "errors": [*stats.errors, f"file skipped: {e}"],
                "lines_skipped": stats.lines_skipped}
    result = stats.as_dict()
    result.update(documents=encoded.documents, tokens=encoded.token_offset, empty_documents=encoded.empty,
                  source_documents=dict(encoded.source_documents), source_tokens=dict(encoded.source_tokens),
                  cpu_seconds=time.process_time() - cpu_start)  # the worker's threads included
    return result


def _encode(encoder: DocumentEncoder, batch: list[Document], shard: EncodeShard,
            stats: ReadStats) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """(ids, ids per document, the documents that could not be tokenized and were skipped)."""
    try:
        for doc in batch:
            doc.id.encode("utf-8")  # ids go to the CSV as UTF-8
        return (*encoder.encode([doc.text for doc in batch]), set())
    except Exception:  # e.g. a lone surrogate from a JSON escape: find the document, one at a time
        pieces, lengths, bad = [], np.zeros(len(batch), dtype=np.int64), set()
        for i, doc in enumerate(batch):
            tokens = _encode_one(encoder, doc, shard, stats)
            if tokens is None:
                bad.add(i)
            else:
                pieces.append(tokens)
                lengths[i] = len(tokens)
        return (np.concatenate(pieces) if pieces else np.zeros(0, np.int64)), lengths, bad


def _encode_one(encoder: DocumentEncoder, doc: Document, shard: EncodeShard, stats: ReadStats) -> np.ndarray | None:
    """Encode one document of a batch that failed, to name the bad line (or skip it under `skip_line`)."""
    try:
        doc.id.encode("utf-8")
        return encoder.encode([doc.text])[0]
    except Exception as e:  # the tokenizer raises plain Exceptions for text it cannot take
        error = DataFormatError(doc.path, doc.line, f"cannot tokenize document {doc.id!r}: {e}")
        if shard.on_error != "skip_line":
            raise error from None
        stats.lines_skipped += 1
        stats.errors.append(str(error))
        return None


# ------------------------------------------------------------------------------------------ stage 2
@dataclass
class PartShard(Shard):
    plan_path: str = ""
    start: int = 0  # slice of the global order this part holds
    end: int = 0
    dtype: str = "uint16"
    chunk_documents: int = 4096


@dataclass
class EncodedInput:
    src: str
    base: str
    documents: int


def read_document_rows(base: str) -> np.ndarray:
    """The `(n, 5)` int64 document rows of one intermediate file, memory-mapped."""
    path = base + ".docs"
    if os.path.getsize(path) == 0:
        return np.zeros((0, DOC_FIELDS), dtype="<i8")
    return np.memmap(path, dtype="<i8", mode="r").reshape(-1, DOC_FIELDS)


def plan_order(lengths: np.ndarray, seed: int, max_tokens: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The global document order from the seed and its cut into parts of at most `max_tokens` tokens.

    A document longer than `max_tokens` gets a part of its own (never split, never an endless loop).
    """
    order = np.random.Generator(np.random.PCG64(seed)).permutation(len(lengths)).astype(np.int64)
    cumulative = np.cumsum(lengths[order], dtype=np.int64)
    bounds: list[tuple[int, int]] = []
    start, base = 0, 0
    while start < len(order):
        end = int(np.searchsorted(cumulative, base + max_tokens, side="right"))
        end = max(end, start + 1)
        bounds.append((start, end))
        base = int(cumulative[end - 1])
        start = end
    return order, bounds


def write_plan(work_dir: str, inputs: list[EncodedInput], order: np.ndarray, key: str) -> str:
    """Save the order and the input table where every part worker can read them; returns the plan path."""
    order_path = os.path.join(work_dir, f"order-{key}.npy")
    with io.AtomicWriter(order_path) as out:
        out.write(np.ascontiguousarray(order, dtype="<i8").tobytes())
    offsets = np.concatenate([[0], np.cumsum([i.documents for i in inputs], dtype=np.int64)]).tolist()
    # `srcs` become the parts' `src` column: recorded, so without URL credentials
    plan = {"order": order_path, "srcs": [strip_credentials(i.src) for i in inputs], "bases": [i.base for i in inputs],
            "offsets": offsets}
    plan_path = os.path.join(work_dir, f"plan-{key}.json")
    io.write_text(plan_path, json.dumps(plan))
    return plan_path


class _PlanReader:
    """A part worker's read-only view of the plan and the intermediate files.

    The files are memory-mapped lazily and at most `OPEN_INPUTS` inputs stay mapped (least recently used
    first out), which keeps a worker under the kernel's limit on mappings whatever the number of inputs.
    """

    OPEN_INPUTS = 512

    def __init__(self, plan_path: str, dtype: np.dtype):
        with open(plan_path) as fh:
            plan = json.load(fh)
        self.srcs: list[str] = plan["srcs"]
        self.bases: list[str] = plan["bases"]
        self.offsets = np.asarray(plan["offsets"], dtype=np.int64)
        self.order = np.memmap(plan["order"], dtype="<i8", mode="r")
        self.dtype = dtype
        self._open: OrderedDict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()

    def input(self, f: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(document rows, tokens, id bytes) of input `f`."""
        if f in self._open:
            self._open.move_to_end(f)
            return self._open[f]
        base = self.bases[f]
        ids = np.memmap(base + ".ids", dtype=np.uint8, mode="r") if os.path.getsize(base + ".ids") \
            else np.zeros(0, np.uint8)
        self._open[f] = (read_document_rows(base), np.memmap(base + ".tokens", dtype=self.dtype, mode="r"), ids)
        if len(self._open) > self.OPEN_INPUTS:
            self._open.popitem(last=False)
        return self._open[f]


@lru_cache(maxsize=4)
def _plan_reader(plan_path: str, dtype: str) -> _PlanReader:
    return _PlanReader(plan_path, np.dtype(dtype))


def write_part(shard: PartShard) -> dict[str, Any]:
    """Gather the documents of one part in plan order and write its `.npy` and `.csv.gz`."""
    cpu_start = time.process_time()
    plan = _plan_reader(shard.plan_path, shard.dtype)
    with PartWriter(shard.output, shard.dtype) as writer:
        for chunk_start in range(shard.start, shard.end, shard.chunk_documents):
            chunk = np.asarray(plan.order[chunk_start : min(shard.end, chunk_start + shard.chunk_documents)])
            files = np.searchsorted(plan.offsets, chunk, side="right") - 1
            local = chunk - plan.offsets[files]
            rows = np.empty((len(chunk), DOC_FIELDS), dtype=np.int64)
            for f in np.unique(files).tolist():
                mask = files == f
                rows[mask] = plan.input(f)[0][local[mask]]
            pieces, ids = [], []
            for f, (start, end, _, id_start, id_end) in zip(files.tolist(), rows.tolist()):
                _, tokens, id_bytes = plan.input(f)
                pieces.append(tokens[start:end])
                ids.append(id_bytes[id_start:id_end].tobytes().decode("utf-8"))
            writer.write(np.concatenate(pieces), ids, [plan.srcs[f] for f in files.tolist()], rows[:, 2].tolist(),
                         rows[:, 1] - rows[:, 0])
    return {"documents": writer.documents, "tokens": writer.tokens_written,
            "bytes": writer.tokens_written * np.dtype(shard.dtype).itemsize,
            "cpu_seconds": time.process_time() - cpu_start}
