"""The decontamination section of `dolma report`: what each evaluation set matched, and examples of it."""

from __future__ import annotations

import html
import json
import os
from typing import Any

from dolma_pipeline import io
from dolma_pipeline.config import from_dict
from dolma_pipeline.decontaminate.command import SUMMARY_NAME, Config, make_plan
from dolma_pipeline.errors import DolmaError
from dolma_pipeline.reader import read_documents

COLUMNS = (("documents_contaminated", "documents"), ("paragraph_spans", "paragraphs"),
           ("paragraph_characters", "paragraph chars"), ("ngram_spans", "n-gram spans"),
           ("ngram_characters", "n-gram chars"), ("eval_paragraphs_indexed", "eval paragraphs indexed"),
           ("eval_ngrams_indexed", "eval n-grams indexed"))


def examples(config: Any, limit: int = 8, width: int = 160) -> list[tuple[str, str, str]]:
    """(document id, attribute key, flagged text) of the first `limit` flagged spans, in input order."""
    plan = make_plan(config, claim=False)
    keys = [c.attribute_name for c in (config.dedupe.paragraphs, config.dedupe.ngrams) if c is not None]
    out: list[tuple[str, str, str]] = []
    for doc_path, attr_path in zip(plan.files, plan.attribute_files):
        if not io.exists(attr_path):
            continue
        rows = (json.loads(line) for line in io.iter_raw_lines(attr_path) if line)
        for doc, row in zip(read_documents(doc_path), rows):
            for key in keys:
                for start, end, _ in row["attributes"].get(key, [])[:1]:
                    text = doc.text[start:end].strip()
                    out.append((doc.id, key, text if len(text) <= width else text[: width - 1] + "…"))
            if len(out) >= limit:
                return out[:limit]
    return out


def section(stage_config: dict[str, Any]) -> str:
    """HTML: per evaluation set counts from the run's summary, how exact they are, and examples."""
    try:
        config = from_dict(Config, stage_config)
        plan = make_plan(config, claim=False)
    except DolmaError as e:  # inputs moved or removed since the run: say so instead of failing the report
        return f"<p>Decontamination inputs not available: {html.escape(str(e))}</p>"
    path = os.path.join(plan.attribute_root, SUMMARY_NAME)
    try:
        with open(path) as fh:
            summary = json.load(fh)["summary"]
    except (OSError, ValueError):
        return f"<p>No decontamination summary at <code>{html.escape(path)}</code>.</p>"
    report = summary["extra"]["decontamination"]
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label in COLUMNS)
    body = "".join(f"<tr><td>{html.escape(name)}</td>" + "".join(f"<td>{row.get(key, '')!s}</td>" for key, _ in COLUMNS)
                   + "</tr>" for name, row in report["per_set"].items())
    exactness = report["exactness"]
    if exactness["index"] == "exact":
        exact = "Exact index: every hit was verified against the evaluation text (no false positives)."
    else:
        rates = ", ".join(f"{k}: rate {v['false_positive_rate']:.3g}, expected false hits "
                          f"{v['expected_false_positives']:.3g}" for k, v in exactness.items() if isinstance(v, dict))
        exact = f"Bloom filters (not exact): {rates}."
    sample = "".join(f"<tr><td>{html.escape(doc_id)}</td><td>{html.escape(key)}</td><td>{html.escape(text)}</td></tr>"
                     for doc_id, key, text in examples(config))
    found = (f"<table><tr><th>document</th><th>attribute</th><th>text found in an evaluation set</th></tr>{sample}"
             "</table>") if sample else "<p>Nothing in the training documents matched an evaluation set.</p>"
    return (f"<p>{report['documents_checked']:,} training documents checked against "
            f"{len(report['per_set']) - 1} evaluation set(s). {html.escape(exact)} N-grams ignored as too "
            f"frequent: {report.get('ngrams_ignored_as_frequent', 0):,}.</p>"
            f"<table><tr><th>evaluation set</th>{head}</tr>{body}</table>{found}")
