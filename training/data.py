"""Token files -> fixed-length instances in OLMo's global order, sliced per rank.

A token file (``part-*.npy``) is a raw, header-less little-endian array of token ids (uint16 or uint32,
given in the config). Each file is cut into instances of ``seq_len`` tokens and its remainder dropped;
the instances of all files are concatenated in config order; epoch ``e`` visits them in the order
``PCG64(seed + e).shuffle(arange(N))``. Rank ``r`` of ``W`` takes instance ``j`` of its device batch in
global step ``b`` from position ``b*G + r + j*W`` (``G`` = global batch in instances), so the order is
independent of the world size and resuming needs only the count of instances seen.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from training.config import DataFormatError, SourceConfig

log = logging.getLogger(__name__)

REMOTE_PREFIXES = ("s3://", "gs://", "http://", "https://")


def _is_remote(path: str) -> bool:
    return path.startswith(REMOTE_PREFIXES)


def expand_paths(patterns: list[str]) -> list[str]:
    """Expand globs (sorted, per pattern, in config order). s3:// globs are listed with boto3."""
    out: list[str] = []
    for pat in patterns:
        if _is_remote(pat):
            hits = _remote_glob(pat) if any(c in pat for c in "*?[") else [pat]
        else:
            pat = os.path.expanduser(pat)
            hits = sorted(glob.glob(pat, recursive=True)) if any(c in pat for c in "*?[") else [pat]
            for h in hits:
                if not os.path.isfile(h):
                    raise DataFormatError(f"token file not found: {h}")
        if not hits:
            raise DataFormatError(f"no token files match {pat!r}")
        out.extend(hits)
    return out


def _remote_glob(pattern: str) -> list[str]:
    import fnmatch

    if not pattern.startswith("s3://"):
        raise DataFormatError(f"globs are supported for local paths and s3:// only: {pattern!r}")
    import boto3

    bucket, _, key_pat = pattern[5:].partition("/")
    prefix = key_pat.split("*")[0].split("?")[0].split("[")[0]
    client = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", []) if fnmatch.fnmatchcase(o["Key"], key_pat)]
    return [f"s3://{bucket}/{k}" for k in sorted(keys)]


class TokenFile:
    """Random access to one token file: a memmap locally, byte-range reads remotely."""

    def __init__(self, path: str, dtype: np.dtype) -> None:
        self.path, self.dtype = path, np.dtype(dtype).newbyteorder("<")
        self._mm: np.memmap | None = None
        self._lock = threading.Lock()
        if _is_remote(path):
            import smart_open

            with smart_open.open(path, "rb") as f:
                nbytes = f.seek(0, os.SEEK_END)
        else:
            nbytes = os.path.getsize(path)
        if nbytes % self.dtype.itemsize:
            raise DataFormatError(
                f"{path}: size {nbytes} bytes is not a multiple of {self.dtype.itemsize} ({self.dtype.name}); "
                "wrong data.dtype?"
            )
        self.num_tokens = nbytes // self.dtype.itemsize

    def read(self, start: int, length: int) -> np.ndarray:
        if not _is_remote(self.path):
            if self._mm is None:
                with self._lock:
                    if self._mm is None:
                        self._mm = np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self.num_tokens,))
            return np.asarray(self._mm[start : start + length])
        import smart_open

        with smart_open.open(self.path, "rb") as f:
            f.seek(start * self.dtype.itemsize)
            buf = f.read(length * self.dtype.itemsize)
        return np.frombuffer(buf, dtype=self.dtype)


@dataclass
class Instance:
    tokens: np.ndarray
    source: int  # index into TokenDataset.labels


class TokenDataset:
    """All instances of several labelled sources, in config order."""

    def __init__(self, sources: list[SourceConfig], seq_len: int, dtype: str, vocab_size: int) -> None:
        self.seq_len, self.vocab_size = seq_len, vocab_size
        self.labels = [s.label for s in sources]
        self.files: list[TokenFile] = []
        file_source: list[int] = []
        for si, src in enumerate(sources):
            for p in expand_paths(src.paths):
                self.files.append(TokenFile(p, np.dtype(dtype)))
                file_source.append(si)
        counts = np.array([f.num_tokens // seq_len for f in self.files], dtype=np.int64)
        self.file_source = np.array(file_source, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])  # instance offsets per file
        if len(self) == 0:
            raise DataFormatError(
                f"no complete instance of {seq_len} tokens in {[f.path for f in self.files]}"
            )

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def instance(self, idx: int) -> Instance:
        fi = int(np.searchsorted(self.offsets, idx, side="right")) - 1
        local = idx - int(self.offsets[fi])
        f = self.files[fi]
        tokens = f.read(local * self.seq_len, self.seq_len)
        if tokens.size and int(tokens.max()) >= self.vocab_size:
            raise DataFormatError(
                f"{f.path}: token id {int(tokens.max())} in instance {local} (tokens "
                f"{local * self.seq_len}..{(local + 1) * self.seq_len}) >= vocab_size {self.vocab_size}"
            )
        return Instance(tokens.astype(np.int64), int(self.file_source[fi]))

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(tokens (n, seq_len) int64, source ids (n,))`` for global instance indices."""
        insts = [self.instance(int(i)) for i in indices]
        if not insts:
            return np.zeros((0, self.seq_len), np.int64), np.zeros((0,), np.int64)
        return np.stack([x.tokens for x in insts]), np.array([x.source for x in insts])


def global_order(num_instances: int, seed: int, epoch: int) -> np.ndarray:
    """OLMo's order: ``Generator(PCG64(seed + epoch)).shuffle(arange(N, dtype=uint32))``."""
    dtype = np.uint32 if num_instances < 2**32 else np.uint64
    idx = np.arange(num_instances, dtype=dtype)
    np.random.Generator(np.random.PCG64(seed + epoch)).shuffle(idx)
    return idx


class TrainLoader:
    """The device batch of any global step, for one rank; a pure function of (step, seed, sizes).

    ``batch(step)`` returns the rank's instances for that step split into micro-batches. The epoch of a
    step is ``step // steps_per_epoch``; the tail of an epoch that does not fill a global batch is dropped.
    """

    def __init__(
        self,
        dataset: TokenDataset,
        global_batch_size: int,
        micro_batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        prefetch: bool = True,
    ) -> None:
        if global_batch_size % world_size:
            raise DataFormatError(f"global batch {global_batch_size} is not divisible by world size {world_size}")
        self.device_batch = global_batch_size // world_size
        if self.device_batch % micro_batch_size:
            raise DataFormatError(
                f"device batch {self.device_batch} (global {global_batch_size} / world {world_size}) "
                f"is not divisible by micro_batch_size {micro_batch_size}"
            )
        self.dataset, self.G, self.micro = dataset, global_batch_size, micro_batch_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.steps_per_epoch = len(dataset) // global_batch_size
        if self.steps_per_epoch == 0:
            raise DataFormatError(
                f"{len(dataset)} instances of {dataset.seq_len} tokens cannot fill one global batch of "
                f"{global_batch_size}"
            )
        self._order: tuple[int, np.ndarray] | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="prefetch") if prefetch else None
        self._pending: tuple[int, Future] | None = None

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def instances_seen(self, step: int) -> int:
        """Global instances consumed before ``step`` (what a checkpoint records)."""
        return step * self.G

    def indices(self, step: int) -> np.ndarray:
        epoch, b = divmod(step, self.steps_per_epoch)
        # The prefetch thread calls this too: read the cached order once into a local, so a concurrent
        # switch of epoch by the other thread cannot hand this call another epoch's order.
        order = self._order
        if order is None or order[0] != epoch:
            order = (epoch, global_order(len(self.dataset), self.seed, epoch))
            self._order = order
        pos = b * self.G + self.rank + np.arange(self.device_batch) * self.world_size
        return order[1][pos]

    def _load(self, step: int) -> list[tuple[np.ndarray, np.ndarray]]:
        tokens, sources = self.dataset.batch(self.indices(step))
        return [(tokens[i : i + self.micro], sources[i : i + self.micro]) for i in range(0, len(tokens), self.micro)]

    def batch(self, step: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Micro-batches ``[(tokens (m, T), sources (m,)), ...]`` of this rank for global step ``step``."""
        if self._pending is not None and self._pending[0] == step:
            out = self._pending[1].result()
        else:
            out = self._load(step)
        self._pending = (step + 1, self._pool.submit(self._load, step + 1)) if self._pool else None
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class EvalLoader:
    """A held-out source in file order (no shuffle), split across ranks, micro-batched."""

    def __init__(
        self,
        dataset: TokenDataset,
        micro_batch_size: int,
        rank: int = 0,
        world_size: int = 1,
        max_batches: int | None = None,
    ) -> None:
        self.dataset, self.micro = dataset, micro_batch_size
        n = len(dataset)
        if max_batches is not None:
            n = min(n, max_batches * micro_batch_size * world_size)
        # Every rank gets the same number of batches so collectives line up; the tail is dropped.
        per_rank = n // world_size
        self.indices = np.arange(per_rank * world_size)[rank::world_size]

    def __iter__(self):
        for i in range(0, len(self.indices), self.micro):
            tokens, _ = self.dataset.batch(self.indices[i : i + self.micro])
            yield tokens

    def __len__(self) -> int:
        return -(-len(self.indices) // self.micro)
