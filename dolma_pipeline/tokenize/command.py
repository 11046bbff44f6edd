"""`dolma tokenize` (alias `dolma tokens`): documents to OLMo token files, exact, deterministic and resumable.

    dolma tokenize --documents 'ROOT/documents/*.jsonl.gz' --destination OUT \\
        [--tokenizer.name_or_path allenai/gpt-neox-olmo-dolma-v1_5] [--tokenizer.eos_token_id 50279] \\
        [--tokenizer.bos_token_id N] [--tokenizer.pad_token_id 1] [--dtype uint16|uint32] \\
        [--max_size BYTES] [--processes N] [--seed 3920] [--on_error fail|skip_line|skip_file]
    dolma tokenize --verify OUT

Output (dolma_pipeline/tokenize/tokenfile.py): `OUT/part-<group>-<NNNNN>.npy` raw token memmaps with their
`.csv.gz` document tables, `OUT/dolma_tokenize.summary.json` and `OUT/dolma_tokenize.config.yaml`.

`--max_size` is in BYTES of each `.npy` file (Dolma's documented unit; Dolma 1.2.1 actually applied it to
tokens). A document larger than `max_size` is written alone in its own part, which is then larger than
`max_size`; it is never split and never stalls the run. The summary counts such documents.

Order: stage 1 encodes each input file on a worker (where: `--executor`, auto by default, see
dolma_pipeline/executor.py; in this process with `--processes 1`, where the encoder's thread pool uses
every core); stage 2 permutes all documents with `np.random.Generator(PCG64(seed))` (documents numbered in sorted input-path order,
then by line), cuts the permutation into parts and writes each part on a worker. The same inputs,
tokenizer and seed give byte-identical parts whatever `--processes`, and an interrupted run resumes
from its completion markers with the same result. Intermediate files live in `--work_dir` (default
`OUT/.tokenize-work`, removed after success unless `--keep_work`; an existing directory the tool did not
make is never deleted: the files go to `dolma_tokenize_work/` inside it), about the size of the output.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import stat
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import orjson

from dolma_pipeline import io
from dolma_pipeline.config import dump_yaml, fingerprint, to_dict
from dolma_pipeline.errors import ConfigError, DolmaError
from dolma_pipeline.executor import (
    Executor,
    RunSummary,
    describe_executor,
    marker_path,
    merge_executor,
    open_session,
    read_marker,
    run_shards,
)
from dolma_pipeline.lines import DEFAULT_MAX_LINE_BYTES
from dolma_pipeline.reader import OnError
from dolma_pipeline.safety import check_name, check_outputs, owned_work_dir, redact, remove_owned_dir
from dolma_pipeline.tokenize.tokenfile import (
    CONFIG_NAME,
    DTYPES,
    SUMMARY_NAME,
    dtype_for_vocab,
    list_parts,
    max_token_id,
    metadata_path,
    part_stem,
)
from dolma_pipeline.tokenize.tokenizer_io import (
    DEFAULT_TOKENIZER,
    OLMO_EOS,
    OLMO_PAD,
    ResolvedTokenizer,
    resolve_tokenizer,
)
from dolma_pipeline.tokenize.work import (
    EncodedInput,
    EncodeShard,
    PartShard,
    encode_shard,
    intermediate_base,
    plan_order,
    read_document_rows,
    write_part,
    write_plan,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_SIZE = 1024 * 1024 * 1024  # bytes of one .npy part, as Dolma
_GROUP_RE = re.compile(r"^[A-Za-z0-9_]+$")


@dataclass
class TokenizerConfig:
    name_or_path: str = DEFAULT_TOKENIZER  # a tokenizers JSON file (default: the OLMo tokenizer from the cache)
    bos_token_id: int | None = None  # id put before each document (OLMo: none)
    eos_token_id: int | None = OLMO_EOS  # id put after each document
    pad_token_id: int | None = OLMO_PAD  # padding id
    allow_hub: bool = False  # download a tokenizer name that is not a local file from the model hub


@dataclass
class Config:
    """`dolma tokenize` options; Dolma's `dolma tokens` flags keep their names and meaning."""

    documents: list[str] = field(default_factory=list)
    destination: str | None = None  # output directory of the token files
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)  # the tokenizer and its special ids
    dtype: Literal["uint8", "uint16", "uint32", "uint64"] | None = None  # None: from the vocabulary size
    max_size: int = DEFAULT_MAX_SIZE  # bytes per .npy part
    processes: int = 1
    seed: int = 3920
    batch_size: int = 1024  # documents per encode_batch call
    # cached: exact chunk-cached encoding for byte-level BPE tokenizers (bpe_cache.py), the same ids as
    # tokenizers' own encoder and several times faster; tokenizers: always tokenizers' encode_batch_fast.
    encoder: Literal["cached", "tokenizers"] = "cached"
    on_error: OnError = "fail"
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES  # a longer line is a bad line (see on_error)
    strip_text: bool = True  # strip surrounding whitespace before encoding, as Dolma (empty docs are skipped)
    group: str = "0"  # the <group> in part-<group>-<NNNNN>.npy
    work_dir: str | None = None  # where intermediate files go (a directory the tool creates inside it)
    keep_work: bool = False  # keep the intermediate files
    ignore_existing: bool = False
    debug: bool = False
    ray_address: str | None = None
    executor: Executor = "auto"  # auto | ray | local | serial: see dolma_pipeline.executor.choose_executor
    verify: str | None = None  # a tokenized directory to check against the tokenizer instead of tokenizing

    def validate(self) -> None:
        if self.processes < 1:
            raise ConfigError("processes must be at least 1")
        if self.batch_size < 1:
            raise ConfigError("batch_size must be at least 1")
        if self.max_size < 1:
            raise ConfigError(f"max_size is in bytes and must be positive (got {self.max_size})")
        check_name(self.group, "group")
        if not _GROUP_RE.match(self.group):
            raise ConfigError(f"group must match [A-Za-z0-9_]+ (got {self.group!r})")
        if self.tokenizer.eos_token_id is None and self.tokenizer.bos_token_id is None:
            raise ConfigError("neither tokenizer.eos_token_id nor tokenizer.bos_token_id is set: "
                              "documents would not be separated")


def choose_dtype(requested: str | None, tokenizer: ResolvedTokenizer, special_ids: list[int]) -> np.dtype:
    """The vocabulary's dtype, or the requested one if it can hold every id (else a ConfigError)."""
    largest = max([tokenizer.vocab_size - 1, *special_ids])
    if requested is None:
        return dtype_for_vocab(largest + 1)
    if requested not in DTYPES:
        raise ConfigError(f"dtype {requested!r} is not one of {', '.join(DTYPES)}")
    if largest > max_token_id(requested):
        raise ConfigError(f"dtype {requested} cannot hold token id {largest:,} (vocabulary of "
                          f"{tokenizer.vocab_size:,} ids in {tokenizer.path}); use {dtype_for_vocab(largest + 1).name}")
    return np.dtype(requested)


def check_special_ids(config: TokenizerConfig, tokenizer: ResolvedTokenizer) -> list[int]:
    ids = []
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(config, name)
        if value is None:
            continue
        if not 0 <= value < tokenizer.vocab_size:
            raise ConfigError(f"tokenizer.{name} {value} is outside the vocabulary of {tokenizer.path} "
                              f"({tokenizer.vocab_size:,} ids)")
        ids.append(value)
    return ids


def default_work_dir(destination: str) -> str:
    """`OUT/.tokenize-work` for a local destination; for an object store, a directory of this user's cache
    (`$DOLMA_CACHE/tokenize-work/<fingerprint of OUT>`, mode 0700: the same on a rerun, so it resumes,
    and out of the shared /tmp where another user could plant files or links in its place)."""
    if not io.is_remote(destination):
        return os.path.join(io.canonical_path(destination), ".tokenize-work")
    from dolma_pipeline.assets import cache_dir

    parent = os.path.join(cache_dir(), "tokenize-work")
    os.makedirs(parent, mode=0o700, exist_ok=True)
    path = os.path.join(parent, fingerprint(destination))
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ConfigError(f"work directory {path} is not a private directory of this user; remove it or give "
                          "--work_dir")
    return path


def run(config: Config) -> int:
    if config.verify:
        from dolma_pipeline.tokenize.verify import verify_directory

        report = verify_directory(config.verify, config)
        print(report.render())
        return 0
    if not config.documents:
        raise ConfigError("no documents given (--documents PATH_OR_GLOB ...)")
    if not config.destination:
        raise ConfigError("no destination given (--destination DIR)")
    started = time.perf_counter()
    destination = config.destination if io.is_remote(config.destination) else io.canonical_path(config.destination)
    work_dir = config.work_dir or default_work_dir(destination)
    files = io.expand_paths(config.documents)
    check_outputs(files, output_dirs=[destination, work_dir], what="tokenize output")
    if not io.is_remote(work_dir):  # a user's existing --work_dir is a parent, never deleted
        work_dir = owned_work_dir(work_dir, "dolma_tokenize_work")
    tokenizer = resolve_tokenizer(config.tokenizer.name_or_path, os.path.join(work_dir, "tokenizer"),
                                  config.tokenizer.allow_hub)
    dtype = choose_dtype(config.dtype, tokenizer, check_special_ids(config.tokenizer, tokenizer))
    max_tokens = config.max_size // dtype.itemsize
    if max_tokens < 1:
        raise ConfigError(f"max_size {config.max_size} bytes cannot hold one {dtype.name} token")
    stage_key = fingerprint([tokenizer.sha256, config.tokenizer.bos_token_id, config.tokenizer.eos_token_id,
                             dtype.name, config.strip_text, config.on_error, config.max_line_bytes])

    run_key = fingerprint([stage_key, config.seed, max_tokens, config.group, config.on_error,
                           [_file_identity(path) for path in files]])
    if not config.ignore_existing and _already_complete(destination, run_key):
        print(redact(f"dolma tokenize: {destination} is already complete for these inputs and options; nothing to do"))
        return 0

    with open_session(config.processes, config.ray_address, config.debug, config.executor):
        _check_work_dir_shared(config, work_dir)
        encode_summary, inputs = _encode_all(config, files, work_dir, tokenizer, dtype, stage_key)
        parts, part_summary, oversized = _write_parts(config, destination, work_dir, inputs, dtype, max_tokens,
                                                      stage_key)
    record = _summary_record(config, tokenizer, dtype, encode_summary, part_summary, parts, oversized,
                             time.perf_counter() - started)
    record["run_key"] = run_key
    record["executor"] = merge_executor([encode_summary, part_summary])
    io.write_text(io.join(destination, CONFIG_NAME), dump_yaml(config))
    io.write_text(io.join(destination, SUMMARY_NAME), orjson.dumps(redact(record), option=orjson.OPT_INDENT_2).decode())
    if not config.keep_work and not io.is_remote(work_dir):
        remove_owned_dir(work_dir)
    print(redact(_render(record, encode_summary)))
    return 0


def _check_work_dir_shared(config: Config, work_dir: str) -> None:
    """Refuse the default work dir of an object-store destination on a multi-node Ray cluster.

    Workers write the intermediate files there and other nodes' workers (and this driver) memory-map
    them, but that default is a directory of this machine's cache: on other nodes the files would
    land on their own disks, out of reach.
    """
    if config.work_dir or not io.is_remote(config.destination or ""):
        return
    ray = sys.modules.get("ray")  # imported by open_session only when the shards run on Ray
    if ray is None or not ray.is_initialized():
        return
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    if nodes > 1:
        raise ConfigError(f"tokenize on a Ray cluster of {nodes} nodes with an object-store destination needs "
                          f"--work_dir on a filesystem every node mounts (the default, {work_dir}, is on this "
                          "machine only)")


def _file_identity(path: str) -> tuple:
    """Path, size and mtime of an input: enough to tell that a finished run's inputs did not change."""
    if io.is_remote(path):
        return (path,)
    stat = os.stat(path)
    return (io.canonical_path(path), stat.st_size, stat.st_mtime_ns)


def _already_complete(destination: str, run_key: str) -> bool:
    """A rerun of a finished run (work directory already removed) must not encode everything again."""
    try:
        record = orjson.loads(io.read_text(io.join(destination, SUMMARY_NAME)))
    except Exception:  # no summary, or a half-written one: not complete
        return False
    if record.get("run_key") != run_key:
        return False
    return all(io.exists(io.join(destination, part["file"])) and io.exists(marker_path(io.join(destination, part["file"])))
               for part in record.get("parts", []))


def _encode_all(config: Config, files: list[str], work_dir: str, tokenizer: ResolvedTokenizer, dtype: np.dtype,
                stage_key: str) -> tuple[RunSummary, list[EncodedInput]]:
    # Cores not used by a worker of their own go to the encoder's thread pool (e.g. fewer files than processes).
    threads = max(1, (os.cpu_count() or 1) // max(1, min(config.processes, len(files))))
    # The input's size and mtime are in the fingerprint: a changed file is encoded again on resume.
    shards = [EncodeShard(input=path, output=intermediate_base(work_dir, path) + ".tokens",
                          fingerprint=fingerprint([stage_key, _file_identity(path)]),
                          tokenizer_path=tokenizer.path, dtype=dtype.name,
                          bos_token_id=config.tokenizer.bos_token_id, eos_token_id=config.tokenizer.eos_token_id,
                          strip_text=config.strip_text, on_error=config.on_error, batch_size=config.batch_size,
                          max_line_bytes=config.max_line_bytes,
                          encoder_threads=threads, cached_encoder=config.encoder == "cached")
              for path in files]
    summary = run_shards(encode_shard, shards, processes=config.processes, ray_address=config.ray_address,
                         debug=config.debug, ignore_existing=config.ignore_existing, desc="tokenize",
                         executor=config.executor)
    inputs = []
    unseen = [shard.input for shard in shards if read_marker(shard) is None]
    if len(unseen) > summary.files_skipped:  # finished by a worker, yet not visible here: never drop them
        raise DolmaError(f"{len(unseen) - summary.files_skipped} encoded input(s) (e.g. {redact(unseen[0])}) "
                         f"have no completion marker in {work_dir} as this process sees it: the work directory "
                         "must be on a filesystem that every worker node and this driver see (--work_dir)")
    for shard in shards:
        if read_marker(shard) is None:  # skipped under the error policy
            continue
        base = shard.output[: -len(".tokens")]
        inputs.append(EncodedInput(src=shard.input, base=base, documents=len(read_document_rows(base))))
    return summary, inputs


def _write_parts(config: Config, destination: str, work_dir: str, inputs: list[EncodedInput], dtype: np.dtype,
                 max_tokens: int, stage_key: str) -> tuple[list[dict[str, Any]], RunSummary, int]:
    lengths = np.concatenate([np.diff(read_document_rows(i.base)[:, :2], axis=1).ravel() for i in inputs]
                             or [np.zeros(0, np.int64)]).astype(np.int64)
    plan_key = fingerprint([stage_key, config.seed, max_tokens, config.group,
                            [(i.src, i.documents) for i in inputs], int(lengths.sum())])
    order, bounds = plan_order(lengths, config.seed, max_tokens)
    plan_path = write_plan(work_dir, inputs, order, plan_key) if len(order) else ""
    shards = [PartShard(input=plan_path, output=io.join(destination, part_stem(config.group, n) + ".npy"),
                        fingerprint=fingerprint([plan_key, start, end]), plan_path=plan_path, start=start, end=end,
                        dtype=dtype.name)
              for n, (start, end) in enumerate(bounds)]
    _remove_stale_parts(destination, config.group, len(shards))
    summary = run_shards(write_part, shards, processes=config.processes, ray_address=config.ray_address,
                         debug=config.debug, ignore_existing=config.ignore_existing, desc="write parts",
                         executor=config.executor)
    part_lengths = [int(lengths[order[start:end]].sum()) for start, end in bounds]
    oversized = sum(1 for (start, end), n in zip(bounds, part_lengths) if end - start == 1 and n > max_tokens)
    if oversized:
        log.warning("%d document(s) longer than max_size (%d bytes) were written alone in their own part",
                    oversized, config.max_size)
    parts = [{"file": os.path.basename(s.output), "documents": s.end - s.start, "tokens": n}
             for s, n in zip(shards, part_lengths)]
    return parts, summary, oversized


def _remove_stale_parts(destination: str, group: str, keep: int) -> None:
    """Parts of an earlier run beyond this run's count would silently join the dataset: remove them,
    and the temporaries a killed run left behind."""
    if io.is_remote(destination) or not os.path.isdir(destination):
        return
    for temporary in glob.glob(os.path.join(glob.escape(destination), f".part-{group}-*.tmp-*")):
        os.remove(temporary)
    for path in list_parts(destination, group):
        index = int(os.path.basename(path)[: -len(".npy")].rsplit("-", 1)[1])
        if index >= keep:
            log.warning("removing %s left by an earlier run (this run writes %d parts)", path, keep)
            for stale in (path, metadata_path(path), marker_path(path)):
                io.remove(stale)


def _summary_record(config: Config, tokenizer: ResolvedTokenizer, dtype: np.dtype, encoded: RunSummary,
                    written: RunSummary, parts: list[dict[str, Any]], oversized: int, seconds: float) -> dict:
    tokens = int(written.extra.get("tokens", 0))
    source_documents = encoded.extra.get("source_documents", {})
    source_tokens = encoded.extra.get("source_tokens", {})
    return {
        "documents": written.documents,
        "tokens": tokens,
        "empty_documents_skipped": int(encoded.extra.get("empty_documents", 0)),
        "lines_skipped": encoded.lines_skipped,
        "files": encoded.files,
        "files_skipped": encoded.files_skipped,
        "files_resumed": encoded.files_resumed,
        "parts_resumed": written.files_resumed,
        "errors": encoded.errors,
        "oversized_documents": oversized,
        "sources": {s: {"documents": int(n), "tokens": int(source_tokens.get(s, 0))}
                    for s, n in sorted(source_documents.items())},
        "parts": parts,
        "dtype": dtype.name,
        "max_size_bytes": config.max_size,
        "seed": config.seed,
        "tokenizer": {"name_or_path": tokenizer.name_or_path, "path": tokenizer.path, "sha256": tokenizer.sha256,
                      "vocab_size": tokenizer.vocab_size, "bos_token_id": config.tokenizer.bos_token_id,
                      "eos_token_id": config.tokenizer.eos_token_id,
                      "pad_token_id": config.tokenizer.pad_token_id, "strip_text": config.strip_text},
        "seconds": round(seconds, 3),
        "worker_cpu_seconds": {"encode": round(encoded.extra.get("cpu_seconds", 0.0), 3),
                               "write": round(written.extra.get("cpu_seconds", 0.0), 3)},
        "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 else 0.0,
        "config": to_dict(config),
    }


def _render(record: dict, encoded: RunSummary) -> str:
    lines = [f"dolma tokenize: {record['documents']:,} documents, {record['tokens']:,} tokens ({record['dtype']}) "
             f"in {len(record['parts'])} part(s), {record['seconds']:.1f}s "
             f"({record['tokens_per_second']:,.0f} tokens/s)"]
    lines.append("  " + describe_executor(record["executor"]))
    if record["empty_documents_skipped"]:
        lines.append(f"  empty documents skipped: {record['empty_documents_skipped']}")
    if record["oversized_documents"]:
        lines.append(f"  documents over max_size, written alone: {record['oversized_documents']}")
    if encoded.lines_skipped or encoded.files_skipped:
        lines.append(f"  lines skipped: {encoded.lines_skipped}, files skipped: {encoded.files_skipped}")
        lines.extend(f"  skipped: {e}" for e in encoded.errors[:20])
    return "\n".join(lines)
