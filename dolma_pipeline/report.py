"""`dolma report`: an offline HTML data report with PNG plots for a pipeline work directory.

It reads what the stages left behind (stage records, lineage, attribute files, the mix report, the
token summary and the trainer's metrics log) and draws: documents and tokens kept after each stage,
drops by rule, the language distribution, each tagger score's distribution, near-duplicate cluster
sizes, PII counts by type, and the training and eval loss curves. A section whose data is absent
says so instead of failing.
"""

from __future__ import annotations

import glob
import html
import json
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from dolma_pipeline.errors import ConfigError
from dolma_pipeline.io import iter_raw_lines
from dolma_pipeline.lineage import read_lineage
from dolma_pipeline.report_plots import histogram_png
from dolma_pipeline.report_rules import STYLE as RULE_STYLE
from dolma_pipeline.report_rules import rule_sections
from dolma_pipeline.safety import strip_credentials
from dolma_pipeline.sketches import LogHistogram

PII_TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS")


@dataclass
class Config:
    workdir: str = ""  # the pipeline work directory to report on
    output: str | None = None  # output directory (default: WORKDIR/report)
    max_score_plots: int = 24  # at most this many tagger score plots


@dataclass
class Stage:
    name: str
    command: str
    output: str
    config: dict[str, Any]


def _stages(workdir: str) -> list[Stage]:
    stages = []
    for record_path in sorted(glob.glob(os.path.join(workdir, ".pipeline", "*.json")),
                              key=os.path.getmtime):
        with open(record_path) as fh:
            output = json.load(fh).get("output", "")
        lineage = read_lineage(output) if output else None
        if lineage:
            stages.append(Stage(lineage.stage, lineage.command, output, lineage.config))
    return stages


def _attribute_rows(directory: str):
    for path in sorted(glob.glob(os.path.join(directory, "**", "*.jsonl*"), recursive=True)):
        if os.path.basename(path).startswith("."):
            continue
        for line in iter_raw_lines(path):
            if line:
                yield json.loads(line)


@dataclass
class Scan:
    documents: int = 0  # rows of one attribute set (every set has one row per document)
    doc_scores: dict[str, LogHistogram] = field(default_factory=lambda: defaultdict(LogHistogram))
    span_counts: Counter = field(default_factory=Counter)
    languages: Counter = field(default_factory=Counter)
    cluster_sizes: Counter = field(default_factory=Counter)
    duplicates: int = 0


def scan_attributes(directories: list[str]) -> Scan:
    scan = Scan()
    for directory in directories:
        rows_here = 0
        for row in _attribute_rows(directory):
            rows_here += 1
            attrs = row.get("attributes", {})
            lang_scores = {}
            for key, spans in attrs.items():
                scan.span_counts[key] += len(spans)
                if len(spans) == 1 and spans[0][0] == 0:
                    score = float(spans[0][2])
                    scan.doc_scores[key].add(score)
                    match = re.search(r"ft_lang_id_doc_v\d+__(\w+)$", key)
                    if match:
                        lang_scores[match.group(1)] = score
                    if key.endswith("__cluster_size") and score > 1:
                        scan.cluster_sizes[int(score)] += 1
                    if key.endswith("minhash_v1__duplicate") and score >= 1:
                        scan.duplicates += 1
            if lang_scores:
                scan.languages[max(lang_scores, key=lang_scores.get)] += 1
            else:
                en = [s[0][2] for k, s in attrs.items() if k.endswith("ft_lang_id_en_doc_v2__en") and s]
                if en:
                    scan.languages["en" if en[0] >= 0.5 else "not en"] += 1
        scan.documents = max(scan.documents, rows_here)
    return scan


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_dir: str, name: str) -> str:
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=90)
    _plt().close(fig)
    return name


def _bar(out_dir: str, name: str, title: str, labels: list[str], values: list[float], horizontal=False,
         ylabel: str = "") -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, max(3, 0.35 * len(labels)) if horizontal else 4))
    if horizontal:
        ax.barh(labels[::-1], values[::-1], color="#4c72b0")
    else:
        ax.bar(labels, values, color="#4c72b0")
        ax.tick_params(axis="x", rotation=30)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return _save(fig, out_dir, name)


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _metrics(output: str, config: dict[str, Any]) -> list[dict]:
    candidates = glob.glob(os.path.join(output, "**", "metrics.jsonl"), recursive=True)
    save_folder = (config.get("overrides") or {}).get("checkpoint.save_folder")
    if save_folder:
        candidates += glob.glob(os.path.join(save_folder, "metrics.jsonl"))
    rows = []
    for path in candidates[:1]:
        with open(path) as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    return rows


def build_report(workdir: str, out_dir: str, max_score_plots: int = 16) -> str:
    stages = _stages(workdir)
    if not stages:
        raise ConfigError(f"no pipeline stages recorded in {workdir}/.pipeline; run `dolma pipeline run` first")
    os.makedirs(out_dir, exist_ok=True)
    sections: list[tuple[str, str]] = []
    by_command = defaultdict(list)
    for stage in stages:
        by_command[stage.command].append(stage)

    scan = scan_attributes([s.output for s in by_command["tag"] + by_command["dedupe"]])
    tag_docs = scan.documents
    mix_reports, mixed = [], []  # per stream of every mix stage (a later mix, e.g. removing contamination, too)
    for i, stage in enumerate(by_command["mix"]):
        reports = [r for p in sorted(glob.glob(os.path.join(stage.output, "**", ".*.mix_report.json"),
                                               recursive=True)) if (r := _read_json(p))]
        mix_reports += reports
        mixed += [(f"{'mixed' if i == 0 else stage.name}: {r.get('stream', '?')}", r["documents_out"])
                  for r in reports]
    tokenized = [(s.name, r) for s in by_command["tokenize"]
                 if (r := _read_json(os.path.join(s.output, "dolma_tokenize.summary.json")))]

    # waterfall: one bar per stage, and per stream (or tokenize stage) where a stage writes several
    labels, values = [], []
    if tag_docs:
        labels.append("tagged")
        values.append(tag_docs)
    if scan.duplicates:
        labels.append("unique (MinHash)")
        values.append(tag_docs - scan.duplicates)
    for label, documents in mixed:
        labels.append(label)
        values.append(documents)
    for name, summary in tokenized:
        labels.append(f"{name} (tokenized)")
        values.append(summary["documents"])
    if labels:
        img = _bar(out_dir, "waterfall.png", "Documents kept after each stage", labels, values, ylabel="documents")
        tokens = sum(t["tokens"] for _, t in tokenized)
        rows = "".join(f"<tr><td>{html.escape(label)}</td><td>{int(v):,}</td></tr>" for label, v in zip(labels, values))
        extra = f"<p>Tokens written: <b>{tokens:,}</b></p>" if tokenized else ""
        sections.append(("Documents after each stage", f'<img src="{img}"><table>{rows}</table>{extra}'))

    dropped = Counter()
    replaced = Counter()
    for r in mix_reports:  # per stream: an eval stream's "kept for training" is not a training-data loss
        dropped.update({f"{r.get('stream', '?')}: {rule}": n for rule, n in r.get("dropped", {}).items()})
        replaced.update(r.get("spans_replaced", {}))
    if dropped:
        items = dropped.most_common(15)
        img = _bar(out_dir, "drops.png", "Documents dropped by rule (mix), per stream", [k[:60] for k, _ in items],
                   [v for _, v in items], horizontal=True)
        sections.append(("Drops by rule", f'<img src="{img}">'))
    else:
        sections.append(("Drops by rule", "<p>No mix stage output found.</p>"))

    if scan.languages:
        items = scan.languages.most_common(20)
        img = _bar(out_dir, "languages.png", "Language distribution (fastText)", [k for k, _ in items],
                   [v for _, v in items], ylabel="documents")
        sections.append(("Languages", f'<img src="{img}">'))

    # Per-language scores of ft_lang_id_doc_v1 have their own plot above; show the taggers' other scores.
    score_keys = [k for k in sorted(scan.doc_scores) if len(scan.doc_scores[k].buckets) + bool(scan.doc_scores[k].zeros) > 1
                  and not re.search(r"ft_lang_id_doc_v\d+__", k)][:max_score_plots]
    if score_keys:
        cells = []
        for i, key in enumerate(score_keys):
            img, note = histogram_png(out_dir, f"score_{i}.png", key, {"documents": scan.doc_scores[key]})
            cells.append(f'<figure><img src="{img}" alt="{html.escape(key)}"><figcaption>{html.escape(note)}'
                         f'</figcaption></figure>')
        sections.append(("Tagger score distributions", f'<div class="grid">{"".join(cells)}</div>'))

    sections += rule_sections(mix_reports, out_dir)

    if scan.cluster_sizes:
        sizes = sorted(scan.cluster_sizes)
        clusters = [scan.cluster_sizes[s] / s for s in sizes]
        img = _bar(out_dir, "clusters.png", "Near-duplicate clusters by size", [str(s) for s in sizes], clusters,
                   ylabel="clusters")
        sections.append(("Near-duplicate clusters", f'<img src="{img}"><p>{scan.duplicates:,} documents flagged '
                                                    f'as duplicates of a kept representative.</p>'))

    for stage in by_command["train-classifier"]:
        from dolma_pipeline.classifier.card import report_section

        scores = {k: v for k, v in scan.doc_scores.items() if "__fasttext_classifier_v1__" in k}
        sections.append((f"Classifier ({stage.name})", report_section(stage.output, out_dir, stage.name, scores)))

    for stage in by_command["decontaminate"]:
        from dolma_pipeline.decontaminate.report import section

        sections.append((f"Decontamination ({stage.name})", section(stage.config)))

    pii = Counter()
    for key, n in scan.span_counts.items():
        for pii_type in PII_TYPES:
            if key.endswith(pii_type):
                pii[f"{key.split('__')[1]}: {pii_type}"] += n
    for key, n in replaced.items():
        if key in PII_TYPES:
            pii[f"masked in mix: {key}"] += n
    if pii:
        items = sorted(pii.items())
        img = _bar(out_dir, "pii.png", "PII spans by type", [k for k, _ in items], [v for _, v in items],
                   horizontal=True)
        sections.append(("PII", f'<img src="{img}">'))

    for stage in by_command["train"]:
        metrics = _metrics(stage.output, stage.config)
        train = [(m["step"], m["loss"]) for m in metrics if "loss" in m and "step" in m]
        evals = defaultdict(list)
        for m in metrics:
            for k, v in m.items():
                if k.startswith("eval/") and k.endswith("loss"):
                    evals[k].append((m["step"], v))
        if train:
            plt = _plt()
            fig, ax = plt.subplots(figsize=(8, 4))
            ax.plot(*zip(*train), label="train loss")
            for k, pts in evals.items():
                ax.plot(*zip(*pts), marker="o", label=k)
            ax.set_xlabel("step")
            ax.set_ylabel("loss")
            ax.legend()
            ax.set_title("Training and eval loss")
            sections.append(("Training", f'<img src="{_save(fig, out_dir, "loss.png")}">'))

    lineage_rows = "".join(f"<tr><td>{html.escape(s.name)}</td><td>{html.escape(s.command)}</td>"
                           f"<td><code>{html.escape(s.output)}</code></td></tr>" for s in stages)
    sections.append(("Stages and lineage", f"<table><tr><th>stage</th><th>command</th><th>output</th></tr>"
                                           f"{lineage_rows}</table>"))
    body = "\n".join(f"<h2>{html.escape(t)}</h2>\n{c}" for t, c in sections)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>dolma-pipeline report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}img{{max-width:100%}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}
.grid{{display:grid;grid-template-columns:1fr 1fr;gap:8px}}figure{{margin:0}}figcaption{{font-size:11px;color:#555}}
{RULE_STYLE}</style>
</head><body><h1>dolma-pipeline data report</h1><p>Work directory: <code>{html.escape(os.path.abspath(workdir))}</code></p>
{body}</body></html>"""
    path = os.path.join(out_dir, "index.html")
    with open(path, "w") as fh:
        fh.write(strip_credentials(page))  # paths from configs and lineage: no secrets in the report
    return path


def run(config: Config) -> int:
    if not config.workdir:
        raise ConfigError("dolma report --workdir DIR (a pipeline work directory)")
    out_dir = config.output or os.path.join(config.workdir, "report")
    path = build_report(config.workdir, out_dir, config.max_score_plots)
    print(f"report: {os.path.abspath(path)}")
    return 0
