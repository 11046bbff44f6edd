"""`dolma dedupe`: exact (documents by key, paragraphs) or MinHash near-duplicate detection.

Every stage is a list of shards run by the shared executor (dolma_pipeline/executor.py: in this process,
on forked processes, or as Ray tasks on one Ray session for all stages), each writing one atomic output
and a completion marker, so
an interrupted run resumes where it stopped and a rerun reuses finished work when nothing changed.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from dolma_pipeline import io
from dolma_pipeline.config import fingerprint, to_dict
from dolma_pipeline.dedupe import bloom as bloom_filter
from dolma_pipeline.dedupe import exact, ngram
from dolma_pipeline.dedupe.config import DedupeConfig
from dolma_pipeline.dedupe.plan import ReduceShard, RunPlan, make_plan
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.executor import RunSummary, Shard, merge_executor, open_session, read_marker, run_shards
from dolma_pipeline.safety import redact, remove_owned_dir
from dolma_pipeline.tag import write_run_record

log = logging.getLogger(__name__)

Config = DedupeConfig
CONFIG_NAME = "dolma_dedupe.config.yaml"
SUMMARY_NAME = "dolma_dedupe.summary.json"
FORMAT_VERSION = 2  # bump when an intermediate or output format changes: old stage outputs are redone


class StageRunner:
    """Runs the stages of one dedupe on one Ray session (started once, not once per stage)."""

    def __init__(self, config: DedupeConfig):
        self.config = config
        self.summaries: dict[str, RunSummary] = {}
        self.cpu_seconds = 0.0  # summed over every stage (and every round), as the workers report it
        self._session = open_session(config.processes, config.ray_address, config.debug, config.executor)

    def __enter__(self) -> StageRunner:
        self._session.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._session.__exit__(*exc)

    def all_done(self, shards: list[Shard]) -> bool:
        """True when every final output is finished: the shuffle stages need not run (or exist) again."""
        return not self.config.ignore_existing and all(read_marker(shard) is not None for shard in shards)

    def run(self, name: str, work: Any, shards: list[Shard]) -> RunSummary:
        summary = run_shards(work, shards, processes=self.config.processes, ray_address=self.config.ray_address,
                             debug=self.config.debug, ignore_existing=self.config.ignore_existing,
                             desc=f"dedupe {name}", executor=self.config.executor)
        log.info("stage %s: %d shards (%d already done) in %.1fs", name, summary.files, summary.files_resumed,
                 summary.seconds)
        self.summaries[name] = summary
        self.cpu_seconds += summary.extra.get("cpu_seconds", 0.0)
        return summary


# ------------------------------------------------------------------------------------------------- exact
def _exact_rules(config: DedupeConfig) -> exact.UnitRules:
    section = config.dedupe
    if section.documents:
        exact.parse_key(section.documents.key)
        return exact.UnitRules("documents", key=section.documents.key, skip_empty=section.skip_empty,
                               min_length=section.min_length, min_words=section.min_words)
    assert section.paragraphs
    return exact.UnitRules("paragraphs", separator=section.paragraphs.paragraph_separator,
                           skip_empty=section.skip_empty, min_length=section.min_length,
                           min_words=section.min_words)


def run_exact(config: DedupeConfig, runner: StageRunner) -> RunPlan:
    """Exact dedupe of documents or paragraphs, or Dolma's n-gram paragraph dedupe (`paragraphs.by_ngram`):
    the same map / reduce / write stages, the n-gram mode with its own map and write (ngram.py)."""
    rules = _exact_rules(config)
    partitions = config.num_partitions
    bloom = config.bloom_filter
    read_only = bloom is not None and bloom.read_only
    by_ngram = config.dedupe.paragraphs.ngram if config.dedupe.paragraphs else None
    ngram_rules = ngram.NgramRules(**to_dict(by_ngram)) if by_ngram else None
    stage = "ngram" if ngram_rules else "exact"
    plan = make_plan(config, [FORMAT_VERSION, "exact", exact.UNIT_HASH, to_dict(rules)]
                     + ([bloom_filter.filter_fingerprint(bloom)] if read_only else [])
                     + ([to_dict(ngram_rules)] if ngram_rules else []))
    map_files = [plan.stage_dir(stage, "map", f"{i:06d}.bin") for i in range(len(plan.files))]
    reduce_files = [plan.stage_dir(stage, "reduce", f"{p:05d}.bin") for p in range(partitions)]
    skeletons = [plan.stage_dir(stage, "documents", f"{i:06d}.bin") for i in range(len(plan.files))]
    paragraphs = [plan.stage_dir(stage, "paragraphs", f"{i:06d}.bin") for i in range(len(plan.files))]
    section = config.dedupe
    attribute_name = (section.documents or section.paragraphs).attribute_name  # type: ignore[union-attr]

    write_fp = fingerprint([plan.inputs_fingerprint, attribute_name])
    common = [dict(input=path, output=out, fingerprint=write_fp, file_index=i, reduce_files=reduce_files,
                   skeleton=skeletons[i], attribute_name=attribute_name)
              for i, (path, out) in enumerate(zip(plan.files, plan.attribute_files))]
    if ngram_rules:
        write_work: Any = ngram.ngram_write
        write_shards: list[Shard] = [
            ngram.NgramWriteShard(**kw, paragraphs=paragraphs[i], overlap_threshold=ngram_rules.overlap_threshold)
            for i, kw in enumerate(common)]
    else:
        write_work, write_shards = exact.exact_write, [exact.ExactWriteShard(**kw) for kw in common]
    if not runner.all_done(write_shards):
        map_common = [dict(input=path, output=out, fingerprint=fingerprint([fp, partitions]), file_index=i,
                           rules=rules, partitions=partitions, skeleton=skeletons[i],
                           max_line_bytes=config.max_line_bytes)
                      for i, (path, out, fp) in enumerate(zip(plan.files, map_files, plan.file_fingerprints))]
        if ngram_rules:
            map_work: Any = ngram.ngram_map
            map_shards: list[Shard] = [ngram.NgramMapShard(**kw, ngram=ngram_rules, paragraphs=paragraphs[i])
                                       for i, kw in enumerate(map_common)]
        else:
            map_work, map_shards = exact.exact_map, [exact.ExactMapShard(**kw) for kw in map_common]
        _exact_shuffle(runner, plan, rules, map_work, map_shards, reduce_files, bloom.file if read_only else None)
        if bloom is not None and bloom.file and not read_only:
            bloom_filter.write_filter(bloom, map_files, partitions)
    runner.run("write", write_work, write_shards)
    return plan


def _exact_shuffle(runner: StageRunner, plan: RunPlan, rules: exact.UnitRules, map_work: Any,
                   map_shards: list[Shard], reduce_files: list[str], filter_file: str | None = None) -> None:
    partitions = len(reduce_files)
    map_files = [shard.output for shard in map_shards]
    mapped = runner.run("map", map_work, map_shards)
    _check_not_disabled(mapped, rules)
    if filter_file:  # bloom_filter.read_only: flag the units found in an earlier run's filter
        runner.run("reduce", bloom_filter.bloom_reduce, [
            bloom_filter.BloomReduceShard(
                input=f"partition {p}", output=out, partition=p, inputs=map_files, outputs=len(plan.files),
                fingerprint=fingerprint([plan.inputs_fingerprint, partitions, "bloom"]), filter_file=filter_file)
            for p, out in enumerate(reduce_files)])
        return
    runner.run("reduce", exact.exact_reduce, [
        ReduceShard(input=f"partition {p}", output=out, fingerprint=fingerprint([plan.inputs_fingerprint, partitions]),
                    partition=p, inputs=map_files, outputs=len(plan.files))
        for p, out in enumerate(reduce_files)])


def _check_not_disabled(mapped: RunSummary, rules: exact.UnitRules) -> None:
    """A filter that excludes every unit would silently turn the dedupe off: refuse instead."""
    extra = mapped.extra
    considered = extra.get("units_considered", 0)
    if mapped.documents and not considered:
        reasons = {k: v for k, v in extra.items() if k.startswith("skipped_") and v}
        raise ConfigError(f"no {rules.mode} unit is eligible for dedupe ({mapped.documents} documents read; "
                          f"excluded: {reasons or 'none'}); check dedupe.documents.key, min_length, min_words "
                          "and skip_empty")
    for reason in ("skipped_min_words", "skipped_min_length", "skipped_missing_key", "skipped_empty"):
        if extra.get(reason):
            log.warning("%s: %d %s units are not deduplicated", reason, extra[reason], rules.mode)


# ----------------------------------------------------------------------------------------------- command
def run(config: DedupeConfig) -> int:
    if config.dryrun:
        plan = make_plan(config, None, claim=False)
        for doc, attr in zip(plan.files, plan.attribute_files):
            print(redact(f"{doc} -> {attr}"))
        print(redact(f"dry run: {len(plan.files)} file(s), mode {config.dedupe.mode}, work dir {plan.work_dir}"))
        return 0
    with StageRunner(config) as runner:
        if config.dedupe.mode == "minhash":
            from dolma_pipeline.dedupe import minhash_stages

            plan = minhash_stages.run_minhash(config, runner)
        else:
            plan = run_exact(config, runner)
    final = runner.summaries["write"]
    final.extra.update({f"{stage}_seconds": round(s.seconds, 3) for stage, s in runner.summaries.items()})
    for stage, s in runner.summaries.items():
        for key, value in s.extra.items():
            if stage != "write" and key not in final.extra and isinstance(value, (int, float)):
                final.extra[key] = value
    final.seconds = sum(s.seconds for s in runner.summaries.values())
    final.extra["cpu_seconds"] = round(runner.cpu_seconds, 3)
    final.executor = merge_executor(list(runner.summaries.values()))
    roots = sorted({attr[: attr.rfind(f"/{config.dedupe.name}/") + len(config.dedupe.name) + 1]
                    for attr in plan.attribute_files}) if not config.destination else [config.destination]
    write_run_record(roots, config, final, CONFIG_NAME, SUMMARY_NAME)
    if not config.keep_work_dir and not io.is_remote(plan.work_dir):
        remove_owned_dir(plan.work_dir)  # only a directory this tool created (a user's work_dir stays)
    print(final.render(f"dolma dedupe ({config.dedupe.mode})"), file=sys.stdout)
    if config.bloom_filter is not None:
        print(bloom_filter.describe(config.bloom_filter), file=sys.stdout)
    interesting = {k: v for k, v in final.extra.items() if not k.endswith("cpu_seconds") and k != "digest_in"}
    print("  " + ", ".join(f"{k}={v}" for k, v in sorted(interesting.items())))
    return 0
