"""`dolma -c mix.yaml mix`: filter, mask and sample documents by their attributes into sized shards.

Steps: validate every stream (inputs, attribute sets and files, attribute keys) before writing anything;
run one work unit per document file (where: `executor`, see dolma_pipeline/executor.py), each writing hidden parts and a
completion marker; pack the parts of each stream in input order into `<name>-NNNN.jsonl.gz`, one work unit
per output shard on the same executor (workers read the parts and write the shards: no document passes
through the driver); write the stream's report and a stream marker. A rerun skips finished streams and finished files.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import orjson

from dolma_pipeline import io
from dolma_pipeline.config import dump_yaml, fingerprint, to_dict
from dolma_pipeline.errors import DolmaError
from dolma_pipeline.executor import describe_executor, open_session, read_marker, run_shards
from dolma_pipeline.safety import check_outputs, redact
from mixers.config import MixConfig, StreamConfig
from mixers.report import merge_unit_stats, render, stream_report
from mixers.shards import (
    PackShard,
    Part,
    claim_parts_dir,
    pack_plan,
    pack_shard,
    plan_shards,
    remove_parts,
    remove_stale_shards,
    remove_stale_temporaries,
)
from mixers.validate import StreamPlan, plan_stream
from mixers.worker import MixShard, StreamMixer, mix_file

log = logging.getLogger(__name__)

Config = MixConfig
MIX_VERSION = 1  # bump when the bytes a given config produces change


def _stream_marker(stream: StreamConfig) -> str:
    return io.join(stream.output.path, f".{stream.name}.mix.done.json")


def _stream_fingerprint(plan: StreamPlan) -> str:
    return fingerprint({"version": MIX_VERSION, "stream": to_dict(plan.config), "documents": plan.documents,
                        "attributes": plan.attribute_paths})


def _finished_report(plan: StreamPlan, stream_fp: str) -> dict[str, Any] | None:
    try:
        marker = orjson.loads(io.read_text(_stream_marker(plan.config)))
    except Exception:  # missing or half-written: not finished
        return None
    if marker.get("fingerprint") != stream_fp:
        return None
    if not all(io.exists(io.join(plan.config.output.path, s)) for s in marker["report"]["shards"]):
        return None
    return marker["report"]


def _parts_dir(stream: StreamConfig) -> str:
    return io.join(stream.output.path, ".parts", stream.name)


def _units(plan: StreamPlan, stream_fp: str, max_line_bytes: int) -> list[MixShard]:
    stream = plan.config
    stream_dict = to_dict(stream)
    parts_dir = _parts_dir(stream)
    units = []
    for index, (doc_path, attr_paths) in enumerate(zip(plan.documents, plan.attribute_paths)):
        prefix = io.join(parts_dir, f"{index:06d}")
        unit_fp = fingerprint({"stream": stream_fp, "input": doc_path, "attributes": attr_paths, "index": index,
                               "max_line_bytes": max_line_bytes})
        units.append(MixShard(input=doc_path, output=f"{prefix}-0000{stream.output_extension()}", fingerprint=unit_fp,
                              stream=stream_dict, stream_fingerprint=stream_fp, attribute_paths=attr_paths,
                              parts_prefix=prefix, max_line_bytes=max_line_bytes))
    return units


def _pack_plan(plan: StreamPlan, stream_fp: str, units: list[MixShard]) -> tuple[list[dict[str, Any]], list[str],
                                                                                 list[PackShard]]:
    """The finished units' stats, their part paths and the stream's output shards to pack."""
    stream = plan.config
    unit_stats = []
    for unit in units:
        stats = read_marker(unit)
        if stats is None:
            raise DolmaError(f"stream {stream.name!r}: {unit.input} has no finished output; rerun to resume")
        unit_stats.append(stats)
    parts_dir = _parts_dir(stream)  # part paths are rebuilt here: markers record them without credentials
    parts = [Part(io.join(parts_dir, p["path"].rsplit("/", 1)[-1]), p["documents"], p["compressed_bytes"], 0)
             for s in unit_stats for p in s["parts"]]
    groups = plan_shards(parts, stream.output.max_size_in_bytes)
    remove_stale_temporaries(stream.output.path, stream.name, stream.output_extension())
    packs = pack_plan(stream.output.path, stream.name, stream.output_extension(), groups, stream_fp)
    return unit_stats, [p.path for p in parts], packs


def _finish_stream(plan: StreamPlan, stream_fp: str, unit_stats: list[dict[str, Any]], part_paths: list[str],
                   packs: list[PackShard], executor: dict[str, Any]) -> dict[str, Any]:
    """Once its shards are packed: the stream's config, report and marker; then its parts go."""
    stream = plan.config
    remove_stale_shards(stream.output.path, stream.name, len(packs))
    io.sync_directories()  # the shards' renames are durable before the stream marker says they are done
    report = stream_report(stream.name, len(unit_stats), merge_unit_stats(unit_stats),
                           [os.path.basename(p.output) for p in packs])
    report["executor"] = executor  # which executor ran this stream's files, why, and on which workers
    io.write_text(io.join(stream.output.path, f".{stream.name}.mix_config.yaml"), dump_yaml(stream))
    io.write_text(io.join(stream.output.path, f".{stream.name}.mix_report.json"),
                  orjson.dumps(redact(report), option=orjson.OPT_INDENT_2).decode())
    marker = {"fingerprint": stream_fp, "report": report}
    io.write_text(_stream_marker(stream), orjson.dumps(redact(marker), option=orjson.OPT_INDENT_2).decode())
    remove_parts(_parts_dir(stream), part_paths, packs)
    return report


def run(config: MixConfig) -> int:
    started = time.perf_counter()
    plans = []
    for stream in config.streams:
        keys = StreamMixer(stream).attribute_keys()  # compiles every expression: syntax errors surface now
        plan = plan_stream(stream, keys, config.allow_missing_attributes, config.max_line_bytes)
        check_outputs([*plan.documents, *(p for row in plan.attribute_paths for p in row if p)],
                      output_dirs=[stream.output.path], what=f"stream {stream.name!r} output")
        for warning in plan.warnings:
            log.warning(warning)
        plans.append(plan)
    if config.dryrun:
        for plan in plans:
            print(redact(f"stream {plan.config.name}: {len(plan.documents)} document file(s), attribute sets "
                         f"{plan.config.attributes}, output {plan.config.output.path}"))
        return 0

    reports: dict[str, dict[str, Any]] = {}
    pending: list[tuple[StreamPlan, str, list[MixShard]]] = []
    for plan in plans:
        stream_fp = _stream_fingerprint(plan)
        done = None if config.ignore_existing else _finished_report(plan, stream_fp)
        if done is not None:
            log.info("stream %s already mixed; skipping (use --ignore_existing to redo)", plan.config.name)
            reports[plan.config.name] = done
        else:
            io.remove(_stream_marker(plan.config))  # its shards are about to be rewritten
            claim_parts_dir(_parts_dir(plan.config))
            pending.append((plan, stream_fp, _units(plan, stream_fp, config.max_line_bytes)))

    all_units = [u for _, _, units in pending for u in units]
    validated = time.perf_counter()
    executor: dict[str, Any] = {}
    resumed = 0
    run = {"processes": config.processes, "ray_address": config.ray_address, "debug": config.debug,
           "ignore_existing": config.ignore_existing, "executor": config.executor}
    with open_session(config.processes, config.ray_address, config.debug, config.executor):
        if all_units:
            summary = run_shards(mix_file, all_units, desc="mix", **run)
            executor, resumed = summary.executor, summary.files_resumed
        mixed = time.perf_counter()
        packing = [(plan, stream_fp, *_pack_plan(plan, stream_fp, units)) for plan, stream_fp, units in pending]
        all_packs = [pack for *_, packs in packing for pack in packs]
        if all_packs:  # workers read the parts and write the shards; nothing passes through this process
            packed = run_shards(pack_shard, all_packs, desc="pack", **run).executor
            executor = {**executor, "pack": {k: packed[k] for k in ("kind", "workers", "worker_pids") if k in packed}}
    for plan, stream_fp, unit_stats, part_paths, packs in packing:
        reports[plan.config.name] = _finish_stream(plan, stream_fp, unit_stats, part_paths, packs, executor)

    log.info("validated in %.1fs, mixed %d file(s) (%d already done) in %.1fs (any executor start-up included), "
             "packed in %.1fs", validated - started, len(all_units), resumed, mixed - validated,
             time.perf_counter() - mixed)
    ordered = [reports[s.name] for s in config.streams]
    print(render(ordered), file=sys.stderr)
    if executor:
        print("  " + describe_executor(executor), file=sys.stderr)
    if config.report:
        io.write_text(config.report, orjson.dumps(redact(ordered), option=orjson.OPT_INDENT_2).decode())
    return 0

