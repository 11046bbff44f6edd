"""Streaming, atomic reads and writes of Dolma files: local or any smart_open scheme, plain/.gz/.zst.

Compression is handled here (and in `dolma_pipeline.lines` for reading) rather than by smart_open so that
(a) a truncated archive is an error, never a silent short read, (b) decompression and lines are bounded
(`max_line_bytes`), and (c) written bytes are deterministic (no gzip timestamp).
"""

from __future__ import annotations

import glob as globlib
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import IO

import orjson
import zstandard
from zlib_ng import zlib_ng as zlib  # zlib's API, same levels and ratios; ~2.5x faster deflate

from dolma_pipeline.errors import DataFormatError, InputNotFoundError
from dolma_pipeline.lines import DEFAULT_MAX_LINE_BYTES, LineTooLong, decompressed_chunks, split_lines

GZIP_LEVEL = 6
ZSTD_LEVEL = 3


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def strip_file_scheme(path: str) -> str:
    return path.removeprefix("file://")


def canonical_path(path: str) -> str:
    """One spelling per file: absolute, normalised local paths; remote URLs with `//` folded."""
    path = strip_file_scheme(path)
    if is_remote(path):
        from dolma_pipeline.safety import split_credentials

        path, credentials = split_credentials(path)  # a secret may hold '//': never folded
        scheme, rest = path.split("://", 1)
        auth = f"{credentials[0]}:{credentials[1]}@" if credentials else ""
        return f"{scheme}://{auth}{re.sub('/+', '/', rest)}"
    return os.path.realpath(os.path.abspath(os.path.expanduser(path)))


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return os.path.join(base, *parts)


# ---------------------------------------------------------------------------------------------- globbing
_HAS_MAGIC = re.compile(r"[*?\[]")


def _glob_to_regex(pattern: str) -> re.Pattern:
    """Translate a glob where `*` stays within one path segment and `**/` spans any number."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 2 :]:
            j = pattern.index("]", i + 2)
            body = pattern[i + 1 : j]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = j + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


_S3_CLIENTS: dict[tuple, object] = {}


def _s3_client(credentials: tuple[str, str] | None = None):
    """This process's boto3 S3 client (endpoint from AWS_ENDPOINT_URL), with the credentials of an
    `s3://KEY:SECRET@` URL.

    Building a client costs tens of milliseconds of CPU (hundreds on a busy machine); smart_open would
    build one per opened object, which made small remote reads (dedupe's intermediate files, markers)
    cost far more than the bytes they move. Keyed by pid: a forked worker builds its own.
    """
    cache_key = (os.getpid(), os.environ.get("AWS_ENDPOINT_URL") or None, credentials)
    client = _S3_CLIENTS.get(cache_key)
    if client is None:
        import boto3

        keys = dict(zip(("aws_access_key_id", "aws_secret_access_key"), credentials or ()))
        client = _S3_CLIENTS[cache_key] = boto3.client("s3", endpoint_url=cache_key[1], **keys)
    return client


def _list_s3(pattern: str) -> list[str]:
    from dolma_pipeline.safety import split_credentials

    pattern, credentials = split_credentials(pattern)
    bucket, key_pattern = pattern[len("s3://") :].split("/", 1)
    magic = _HAS_MAGIC.search(key_pattern)
    prefix = key_pattern[: magic.start()] if magic else key_pattern
    regex = _glob_to_regex(key_pattern) if magic else None
    client = _s3_client(credentials)
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            hidden = any(part.startswith(".") for part in key[len(prefix) :].split("/"))
            if hidden:
                continue
            if regex is None:
                if key == prefix or key.startswith(prefix.rstrip("/") + "/"):
                    keys.append(key)
            elif regex.match(key):
                keys.append(key)
    auth = f"{credentials[0]}:{credentials[1]}@" if credentials else ""  # later reads need them too
    return [f"s3://{auth}{bucket}/{k}" for k in keys]


def expand_paths(patterns: str | Iterable[str]) -> list[str]:
    """Expand files, directories (recursively) and globs (with `**`) into a sorted list of files.

    Raises InputNotFoundError naming every pattern that matched nothing.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    found: set[str] = set()
    empty: list[str] = []
    for pattern in patterns:
        pattern = strip_file_scheme(pattern)
        if pattern.startswith("s3://"):
            matches = _list_s3(pattern)
        elif is_remote(pattern):
            matches = [pattern]  # other schemes: exact paths only
        elif os.path.isdir(pattern):
            matches = [p for p in globlib.glob(os.path.join(pattern, "**", "*"), recursive=True) if os.path.isfile(p)]
        else:
            matches = [p for p in globlib.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(p)]
        if not matches:
            empty.append(pattern)
        found.update(m if is_remote(m) else os.path.abspath(m) for m in matches)
    if empty:
        raise InputNotFoundError("no files match: " + ", ".join(empty))
    return sorted(found)


# ----------------------------------------------------------------------------------------------- reading
def open_raw(path: str, mode: str = "rb") -> IO[bytes]:
    """The raw byte stream of a path (remote ones through smart_open), without any decompression."""
    path = strip_file_scheme(path)
    if not is_remote(path):
        return open(path, mode)
    import smart_open  # imported on first remote use: it pulls in boto3 (~0.3 s per process)

    params = None
    if path.startswith("s3://"):  # one client per process, not one per object opened
        from dolma_pipeline.safety import split_credentials

        path, credentials = split_credentials(path)
        params = {"client": _s3_client(credentials)}
    return smart_open.open(path, mode, compression="disable", transport_params=params)


def read_range(path: str, offset: int, length: int) -> bytes:
    """`length` bytes of `path` from `offset` (on S3: one ranged GET, not an open, a seek and a read)."""
    path = strip_file_scheme(path)
    if length <= 0:
        return b""
    if path.startswith("s3://"):
        from dolma_pipeline.safety import split_credentials

        path, credentials = split_credentials(path)
        bucket, key = path[5:].split("/", 1)
        ranged = f"bytes={offset}-{offset + length - 1}"
        return _s3_client(credentials).get_object(Bucket=bucket, Key=key, Range=ranged)["Body"].read()
    with open_raw(path) as fh:
        fh.seek(offset)
        return fh.read(length)


def iter_lines(path: str, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[bytes | LineTooLong]:
    """The lines of a (possibly compressed) file without their newline; see `dolma_pipeline.lines.split_lines`."""
    with open_raw(path) as raw:
        yield from split_lines(decompressed_chunks(raw, path), max_line_bytes)


def iter_raw_lines(path: str, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[bytes]:
    """Yield the lines of a (possibly compressed) file as bytes without their newline.

    A line longer than `max_line_bytes` is a DataFormatError naming file, line and byte offset.
    """
    for lineno, line in enumerate(iter_lines(path, max_line_bytes), 1):
        if type(line) is LineTooLong:
            raise DataFormatError(path, lineno, line.problem())
        yield line


def is_parquet(path: str) -> bool:
    return path.endswith(".parquet")


def iter_parquet_rows(path: str, columns: dict[str, str] | None = None, batch_size: int = 1024) -> Iterator[dict]:
    """Rows of a Parquet file as dicts; `columns` maps Dolma field names to the file's column names."""
    import pyarrow.parquet as pq

    mapping = {"id": "id", "text": "text", **(columns or {})}
    with open_raw(path) as fh:
        pf = pq.ParquetFile(fh)
        names = set(pf.schema_arrow.names)
        missing = [src for dst, src in mapping.items() if dst in ("id", "text") and src not in names]
        if missing:
            raise DataFormatError(path, None, f"parquet file lacks column(s) {missing}; it has {sorted(names)}")
        for batch in pf.iter_batches(batch_size=batch_size):
            table = batch.to_pydict()
            mapped = {dst: table[src] for dst, src in mapping.items() if src in table}
            extra = {k: v for k, v in table.items() if k not in set(mapping.values())}
            for i in range(batch.num_rows):
                row = {dst: values[i] for dst, values in mapped.items()}
                if extra:
                    row.setdefault("metadata", {}).update({k: v[i] for k, v in extra.items()})
                yield row


# ----------------------------------------------------------------------------------------------- writing
class AtomicWriter:
    """Write bytes to `path` so readers only ever see a complete file.

    Local files go to a hidden temporary name in the same directory, are fsynced (unless `sync=False`:
    a file whose loss only means redoing work, such as a completion marker) and renamed on success; the
    directory is fsynced by `sync_directories` before a completion marker. Object-store uploads only
    become visible when the multipart upload completes on close (the executor then adds a completion
    marker). Compression follows the extension, deterministically.
    """

    def __init__(self, path: str, sync: bool = True):
        self.sync = sync
        self.path = strip_file_scheme(path)
        self.remote = is_remote(self.path)
        if self.remote:
            self.tmp = self.path
        else:
            directory, name = os.path.split(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            self.tmp = os.path.join(directory, f".{name}.tmp-{uuid.uuid4().hex[:12]}")
        self._raw: IO[bytes] | None = None
        self._compress = None
        self.bytes_written = 0

    def __enter__(self) -> AtomicWriter:
        self._raw = open_raw(self.tmp, "wb") if self.remote else open(self.tmp, "wb")
        self._compress = compressor(self.path)
        return self

    def write(self, data: bytes) -> None:
        self.bytes_written += len(data)
        self._raw.write(self._compress.compress(data) if self._compress else data)

    def write_lines(self, lines: Iterable[bytes]) -> None:
        for line in lines:
            self.write(line + b"\n")

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if self._compress is not None:
                self._raw.write(self._compress.flush())
            if not self.remote:
                commit_local(self._raw, self.tmp, self.path, self.sync)
            else:
                self._raw.close()
            return
        if self.remote:
            terminate = getattr(self._raw, "terminate", None)
            if terminate:
                terminate()
            else:
                self._raw.close()
        else:
            self._raw.close()
            try:
                os.remove(self.tmp)
            except FileNotFoundError:
                pass


_UNSYNCED_DIRS: set[str] = set()


def commit_local(fh: IO[bytes], tmp: str, path: str, sync: bool = True) -> None:
    """Close `fh` (open on `tmp`) with its data on disk (if `sync`), then rename it to `path`."""
    fh.flush()
    if sync:
        os.fsync(fh.fileno())
    fh.close()
    os.replace(tmp, path)
    _UNSYNCED_DIRS.add(os.path.dirname(os.path.abspath(path)))


def renamed_into(directory: str) -> None:
    """Note a rename into local `directory` made outside `commit_local`, for `sync_directories`."""
    if not is_remote(directory):
        _UNSYNCED_DIRS.add(os.path.abspath(directory))


def sync_directories() -> None:
    """fsync every directory this process renamed files into since the last call, so the renames survive
    a crash; called before a completion marker is written (one fsync per directory, not per file)."""
    while _UNSYNCED_DIRS:
        directory = _UNSYNCED_DIRS.pop()
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:  # removed since (a temporary directory)
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def compressor(path: str, level: int | None = None):
    """A deterministic streaming compressor for the path's extension (gzip without a timestamp), or None."""
    if path.endswith(".gz"):
        return zlib.compressobj(level or GZIP_LEVEL, zlib.DEFLATED, 31)
    if path.endswith((".zst", ".zstd")):
        return zstandard.ZstdCompressor(level=level or ZSTD_LEVEL).compressobj()
    return None


def sync_flush_mode(path: str) -> int:
    """The `flush()` mode of `compressor(path)` that ends a block but keeps the stream (and dictionary) open."""
    return zlib.Z_SYNC_FLUSH if path.endswith(".gz") else zstandard.COMPRESSOBJ_FLUSH_BLOCK


def write_jsonl(path: str, rows: Iterable[dict]) -> int:
    """Atomically write rows as JSON lines; returns the number of rows."""
    n = 0
    with AtomicWriter(path) as out:
        for row in rows:
            out.write(orjson.dumps(row) + b"\n")
            n += 1
    return n


def read_text(path: str) -> str:
    with open_raw(strip_file_scheme(path)) as fh:
        return fh.read().decode("utf-8")


def write_text(path: str, text: str, sync: bool = True) -> None:
    with AtomicWriter(path, sync) as out:
        out.write(text.encode("utf-8"))


def exists(path: str) -> bool:
    path = strip_file_scheme(path)
    if not is_remote(path):
        return os.path.exists(path)
    try:
        with open_raw(path):
            return True
    except Exception:  # smart_open raises scheme-specific errors for a missing object
        return False


def remove(path: str) -> None:
    path = strip_file_scheme(path)
    if not is_remote(path):
        if os.path.exists(path):
            os.remove(path)
        return
    if path.startswith("s3://"):
        from dolma_pipeline.safety import split_credentials

        path, credentials = split_credentials(path)
        bucket, key = path[5:].split("/", 1)
        _s3_client(credentials).delete_object(Bucket=bucket, Key=key)


def clean_stale_temporaries(path: str) -> None:
    """Remove temporaries a killed run left beside `path`."""
    if is_remote(path):
        return
    directory, name = os.path.split(os.path.abspath(path))
    for stale in globlib.glob(os.path.join(glob_escape(directory), f".{glob_escape(name)}.tmp-*")):
        try:
            os.remove(stale)
        except FileNotFoundError:
            pass


def glob_escape(text: str) -> str:
    return globlib.escape(text)
