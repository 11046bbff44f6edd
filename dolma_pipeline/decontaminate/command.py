"""`dolma decontaminate`: flag training documents and spans that contain evaluation text, in one command.

Stages, each a list of shards on the shared executor (see executor.where_to_run), each shard atomic
with a completion marker, so an interrupted run resumes and a rerun reuses what is still valid:

1. `index`: one shard per evaluation file (normalised long paragraphs, normalised words), then one
   merge into the index files every worker memory-maps (`index.py`);
2. `probe`: one shard per training file, writing its attribute file (Dolma's layout, beside the
   documents or under `destination`);
3. `write` (n-gram mode with a document-frequency cap only): the cap needs every file's hits first, so
   probing writes hits and this stage writes the attribute files without the frequent n-grams.

Same attribute bytes for any number of processes: inputs are sorted, shards are independent, and the
index is a function of the sorted evaluation files.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

import orjson

from dolma_pipeline import io
from dolma_pipeline.config import fingerprint, to_dict
from dolma_pipeline.decontaminate.config import DecontaminateConfig
from dolma_pipeline.decontaminate.index import META, EvalShard, build_index, index_eval_file
from dolma_pipeline.decontaminate.probe import ProbeShard, WriteShard, probe_file, write_file
from dolma_pipeline.dedupe import exact
from dolma_pipeline.dedupe.command import StageRunner
from dolma_pipeline.dedupe.plan import attribute_path
from dolma_pipeline.errors import ConfigError
from dolma_pipeline.executor import RunSummary, merge_executor
from dolma_pipeline.safety import check_outputs, owned_work_dir, remove_owned_dir
from dolma_pipeline.tag import common_directory, write_run_record

log = logging.getLogger(__name__)

Config = DecontaminateConfig
CONFIG_NAME = "dolma_decontaminate.config.yaml"
SUMMARY_NAME = "dolma_decontaminate.summary.json"
FORMAT_VERSION = 1  # bump when the index or attribute bytes a config produces change


@dataclass
class Plan:
    files: list[str]
    attribute_files: list[str]
    eval_files: list[tuple[int, str]]  # (set index, path)
    work_dir: str
    attribute_root: str


def _identity(path: str) -> list:
    if io.is_remote(path):
        return [path]
    st = os.stat(path)
    return [path, st.st_size, st.st_mtime_ns]


def make_plan(config: DecontaminateConfig, claim: bool = True) -> Plan:
    """Resolve the inputs and outputs; refuse outputs over inputs; with `claim`, create the work dir as the
    tool's own (a user's existing `work_dir` is not taken over: the tool's directory is made inside it)."""
    if not config.documents:
        raise ConfigError("no training documents given (--documents PATH_OR_GLOB ...)")
    files = io.expand_paths(config.documents)
    base = common_directory(files)
    section = config.dedupe
    attribute_files = [attribute_path(f, section.name, section.document_dir, config.destination, base) for f in files]
    eval_files = [(i, path) for i, eval_set in enumerate(config.evaluation) for path in io.expand_paths(eval_set.documents)]
    overlap = set(files) & {path for _, path in eval_files}
    if overlap:
        raise ConfigError(f"{sorted(overlap)[0]} is both a training file and an evaluation file")
    if config.destination:
        root = config.destination
    else:
        first = attribute_files[0]
        root = first[: first.rfind(f"/attributes/{section.name}/") + len(f"/attributes/{section.name}")]
    if config.work_dir:
        work_dir = config.work_dir
    elif not io.is_remote(files[0]):
        marker = f"/{section.document_dir.strip('/')}/"
        cut = files[0].rfind(marker)
        work_dir = os.path.join(files[0][:cut] if cut >= 0 else base.rstrip("/"), "decontaminate_work", section.name)
    else:  # remote documents: the index must be a local file to be memory-mapped; this user's cache (0700),
        # not the shared /tmp where another user could plant files or links in its place
        from dolma_pipeline.assets import cache_dir

        parent = os.path.join(cache_dir(), "decontaminate-work")
        os.makedirs(parent, mode=0o700, exist_ok=True)
        work_dir = os.path.join(parent, fingerprint([files, section.name]))
    if io.is_remote(work_dir):
        raise ConfigError(f"work_dir {work_dir} must be a local directory (or one shared by every node): the "
                          "evaluation index is memory-mapped from it")
    check_outputs(files + [path for _, path in eval_files], attribute_files, [config.destination or "", work_dir],
                  what="decontaminate output")
    if claim:
        work_dir = owned_work_dir(work_dir, f"dolma_decontaminate_{section.name}")
    return Plan(files, attribute_files, eval_files, work_dir, root)


def _build(config: DecontaminateConfig, plan: Plan, runner: StageRunner) -> tuple[str, dict[str, Any]]:
    """Stage 1: the index (reused when its inputs and settings are unchanged); returns (dir, metadata)."""
    section = config.dedupe
    index_settings = {"version": FORMAT_VERSION, "hash": exact.UNIT_HASH, "normalize": to_dict(section.normalize),
                      "paragraphs": to_dict(section.paragraphs) if section.paragraphs else None,
                      "n": section.ngrams.n if section.ngrams else None,
                      "bloom": to_dict(config.bloom_filter) if config.bloom_filter else None}
    shards = [EvalShard(input=path, output=io.join(plan.work_dir, "eval", f"{i:06d}.json"),
                        fingerprint=fingerprint([index_settings, set_index, _identity(path)]), set_index=set_index,
                        section=section, on_error=config.on_error)
              for i, (set_index, path) in enumerate(plan.eval_files)]
    index_fp = fingerprint([index_settings, [config.evaluation[s].name for s, _ in plan.eval_files],
                            [shard.fingerprint for shard in shards]])
    index_dir = io.join(plan.work_dir, "index")
    meta_path = io.join(index_dir, META)
    if not config.ignore_existing and io.exists(meta_path):
        meta = orjson.loads(io.read_text(meta_path))
        if meta.get("fingerprint") == index_fp:
            log.info("evaluation index %s is up to date", index_dir)
            return index_dir, meta
    summary = runner.run("index", index_eval_file, shards)
    if summary.files_skipped:
        raise ConfigError(f"{summary.files_skipped} evaluation file(s) could not be read (see above): an index "
                          "without them would miss contamination")
    io.remove(meta_path)
    meta = build_index([s.output for s in shards], [s.name for s in config.evaluation], section,
                       config.bloom_filter, index_dir, index_fp)
    meta["eval_read"] = {k: v for k, v in {"documents": summary.documents, "lines_skipped": summary.lines_skipped,
                                           **summary.extra}.items()
                         if k.startswith("eval_") or k in ("documents", "lines_skipped")}
    io.write_text(meta_path, _json(meta))
    return index_dir, meta


def _json(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


def _probe(config: DecontaminateConfig, plan: Plan, runner: StageRunner, index_dir: str,
           meta: dict[str, Any]) -> RunSummary:
    """Stages 2 and 3: every training file's attribute file."""
    section = config.dedupe
    set_names = list(meta["sets"])
    capped = section.ngrams is not None and section.ngrams.max_document_frequency > 0
    attr_fp = fingerprint([FORMAT_VERSION, meta["fingerprint"], to_dict(section), capped])
    probe_shards = []
    for i, (path, attr) in enumerate(zip(plan.files, plan.attribute_files)):
        output = io.join(plan.work_dir, "probe", f"{i:06d}.json") if capped else attr
        probe_shards.append(ProbeShard(input=path, output=output, fingerprint=fingerprint([attr_fp, _identity(path)]),
                                       index_dir=index_dir, index_fingerprint=meta["fingerprint"], section=section,
                                       set_names=set_names, on_error=config.on_error, batch_size=config.batch_size,
                                       final=not capped))
    if not capped:
        return runner.run("probe", probe_file, probe_shards)
    assert section.ngrams is not None
    probed = runner.run("probe", probe_file, probe_shards)
    frequency = probed.extra.pop("ngram_document_frequency", {})
    cap = section.ngrams.max_document_frequency
    frequent = sorted(int(p) for p, count in frequency.items() if count > cap)
    write_shards = [WriteShard(input=shard.output, output=attr, fingerprint=fingerprint([shard.fingerprint, frequent]),
                               section=section, set_names=set_names, frequent=frequent)
                    for shard, attr in zip(probe_shards, plan.attribute_files)
                    if shard.output and io.exists(shard.output)]
    written = runner.run("write", write_file, write_shards)
    written.extra["ngrams_frequent"] = len(frequent)
    written.extra["paragraphs_probed"] = probed.extra.get("paragraphs_probed", 0)
    written.extra["ngram_windows_probed"] = probed.extra.get("ngram_windows_probed", 0)
    written.files_skipped += probed.files_skipped
    written.errors += probed.errors
    return written


def contamination_report(final: RunSummary, meta: dict[str, Any], set_names: list[str]) -> dict[str, Any]:
    """Per evaluation set: what the index holds and what was flagged; how exact the answer is."""
    extra = final.extra
    per_set: dict[str, Any] = {}
    for name in ["any", *set_names]:
        row = {key: extra.get(key, {}).get(name, 0) for key in
               ("documents_contaminated", "paragraph_documents", "paragraph_spans", "paragraph_characters",
                "ngram_documents", "ngram_spans", "ngram_characters")}
        if name != "any":
            row["eval_paragraphs_indexed"] = meta.get("paragraphs", {}).get("per_set", {}).get(name, 0)
            row["eval_ngrams_indexed"] = meta.get("ngrams", {}).get("per_set", {}).get(name, 0)
        per_set[name] = row
    exactness: dict[str, Any] = {"index": meta["kind"]}
    if meta["kind"] == "exact":
        exactness["verified"] = True
        exactness["false_positive_rate"] = 0.0
        exactness["note"] = "every hit was compared with the evaluation text (paragraphs) or word ids (n-grams)"
    else:
        for kind, probes in (("paragraphs", extra.get("paragraphs_probed", 0)),
                             ("ngrams", extra.get("ngram_windows_probed", 0))):
            for name, bloom in meta.get(kind, {}).get("bloom", {}).items():
                exactness[f"{kind}.{name}"] = {**bloom, "probes": probes,
                                               "expected_false_positives": bloom["false_positive_rate"] * probes}
    return {"per_set": per_set, "exactness": exactness, "documents_checked": final.documents,
            "ngrams_ignored_as_frequent": extra.get("ngrams_frequent", 0)}


def run(config: DecontaminateConfig) -> int:
    plan = make_plan(config, claim=not config.dryrun)
    if config.dryrun:
        for set_index, path in plan.eval_files:
            print(f"evaluation {config.evaluation[set_index].name}: {path}")
        for doc, attr in zip(plan.files, plan.attribute_files):
            print(f"{doc} -> {attr}")
        print(f"dry run: {len(plan.eval_files)} evaluation file(s), {len(plan.files)} training file(s), "
              f"work dir {plan.work_dir}")
        return 0
    with StageRunner(config) as runner:  # type: ignore[arg-type]  # the same executor fields as dedupe's
        index_dir, meta = _build(config, plan, runner)
        final = _probe(config, plan, runner, index_dir, meta)
    stage_seconds = {f"{stage}_seconds": round(s.seconds, 3) for stage, s in runner.summaries.items()}
    final.seconds = sum(s.seconds for s in runner.summaries.values())
    final.extra.update(stage_seconds)
    final.extra["cpu_seconds"] = round(runner.cpu_seconds, 3)
    final.executor = merge_executor(list(runner.summaries.values()))
    report = contamination_report(final, meta, list(meta["sets"]))
    final.extra["decontamination"] = report
    final.extra["index"] = {k: v for k, v in meta.items() if k != "fingerprint"}
    write_run_record([plan.attribute_root], config, final, CONFIG_NAME, SUMMARY_NAME)
    if not config.keep_work_dir:
        remove_owned_dir(plan.work_dir)  # only a directory this tool created (a user's work_dir stays)
    print(final.render("dolma decontaminate"), file=sys.stdout)
    for name, row in report["per_set"].items():
        print(f"  {name}: {row['documents_contaminated']:,} documents contaminated "
              f"({row['paragraph_spans']:,} paragraphs, {row['ngram_spans']:,} n-gram spans)")
    print(f"  index: {meta['kind']}" + ("" if meta["kind"] == "exact" else "; " + ", ".join(
        f"{k} false-positive rate {v['false_positive_rate']:.3g}" for k, v in report["exactness"].items()
        if isinstance(v, dict))))
    return 0
