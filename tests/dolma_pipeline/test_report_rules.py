"""The data report's rule sections: thresholds on kept/dropped plots, deterministic and escaped examples,
and streamed statistics (fixed-size sketches)."""

from __future__ import annotations

import json
import math
import random
import re

import yaml

from dolma_pipeline.io import write_jsonl
from dolma_pipeline.pipeline import load_pipeline, run_pipeline
from dolma_pipeline.report_plots import bins_for, use_log_x
from dolma_pipeline.sketches import BottomK, LogHistogram
from tests.conftest import make_docs


def _pipeline(root, processes: int) -> str:
    docs = make_docs("a", 60) + [
        {"id": "evil", "text": "<script>alert('x')</script> short", "source": "web"},
        {"id": "mail", "text": "Write to someone@example.com or to other@example.net " * 3, "source": "web"},
    ]
    write_jsonl(str(root / "corpus" / "documents" / "a.jsonl.gz"), docs[:31])
    write_jsonl(str(root / "corpus" / "documents" / "b.jsonl.gz"), docs[31:])
    stages = [
        {"name": "tag", "command": "tag", "inputs": ["{workdir}/corpus/documents"],
         "output": "{workdir}/corpus/attributes/t",
         "config": {"documents": ["{workdir}/corpus/documents/*.jsonl.gz"], "experiment": "t",
                    "taggers": ["char_length_v1", "pii_regex_with_counts_fast_v2"]}},
        {"name": "mix", "command": "mix", "inputs": ["{workdir}/corpus/attributes/t"], "output": "{workdir}/mixed",
         "config": {"streams": [{
             "name": "s", "documents": ["{workdir}/corpus/documents/*.jsonl.gz"], "attributes": ["t"],
             "rules": [{"attribute": "t__char_length_v1__length", "op": "lt", "value": 100, "name": "short"},
                       {"attribute": "t__pii_regex_with_counts_fast_v2__doc_count", "op": "gt", "value": 1,
                        "name": "pii"}],
             "span_replacement": [{"span": "$.attributes.t__pii_regex_with_counts_fast_v2__EMAIL_ADDRESS",
                                   "min_score": 0.5, "replacement": " |||EMAIL_ADDRESS||| "}],
             "output": {"path": "{workdir}/mixed/s"}}]}},
        {"name": "report", "command": "report", "inputs": ["{workdir}/mixed"], "output": "{workdir}/report",
         "config": {"workdir": "{workdir}", "output": "{workdir}/report"}},
    ]
    path = root / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"workdir": str(root), "processes": processes, "stages": stages}))
    return str(path)


def test_rule_examples_are_deterministic_escaped_and_thresholds_drawn(tmp_path) -> None:
    pages, evidences = [], []
    for processes in (1, 2):
        root = tmp_path / f"p{processes}"
        root.mkdir()
        run_pipeline(load_pipeline(_pipeline(root, processes)))
        page = (root / "report" / "index.html").read_text()
        report = json.loads((root / "mixed" / "s" / ".s.mix_report.json").read_text())
        pages.append(page.replace(str(root), "ROOT"))
        evidences.append(json.loads(json.dumps(report["evidence"]).replace(str(root), "ROOT")))
    assert evidences[0] == evidences[1]  # same samples whatever the number of workers
    assert pages[0] == pages[1]
    page = pages[0]
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page  # shown as text
    rules = {r["label"]: r for r in evidences[0]["rules"]}
    short, pii = rules["short"], rules["pii"]
    assert short["threshold"] == 100 and short["op"] == "lt"
    assert "evil" in [i["id"] for i in short["removed"]]
    assert all(i["value"] < 100 for i in short["removed"]) and all(i["value"] >= 100 for i in short["near"])
    assert [i["id"] for i in pii["removed"]] == ["mail"]
    marks = pii["removed"][0]["spans"]
    assert {m[2] for m in marks} == {"EMAIL_ADDRESS"}  # the PII spans are highlighted
    assert re.search(r'<mark style="background:#[0-9a-f]{6}" title="EMAIL_ADDRESS">\s?someone@example\.com\s?</mark>', page), re.findall("<mark.{0,80}", page)
    assert re.search(r"Removes <b>\d+\.\d%</b> of the stream's documents alone", page)
    assert (tmp_path / "p1" / "report" / "rule_s_0.png").stat().st_size > 1000
    assert "a.jsonl.gz:" in page or "b.jsonl.gz:" in page  # links back to file and line


def test_sketches_merge_to_the_single_pass_result() -> None:
    rng = random.Random(1)
    values = [rng.lognormvariate(3, 2) for _ in range(5000)] + [0.0] * 50
    whole, parts = LogHistogram(), [LogHistogram() for _ in range(3)]
    for i, v in enumerate(values):
        whole.add(v)
        parts[i % 3].add(v)
    merged = LogHistogram()
    for p in parts:
        merged.merge(LogHistogram.from_json(json.loads(json.dumps(p.to_json()))))
    assert merged.to_json() == whole.to_json()
    assert len(whole.buckets) < 1000  # bounded by the dynamic range, not the number of values
    exact = sorted(values)[len(values) // 2]
    assert math.isclose(whole.quantile(0.5), exact, rel_tol=0.03)
    assert use_log_x(whole)  # heavy-tailed counts get a log axis
    uniform = LogHistogram()
    for _ in range(2000):
        uniform.add(rng.random())
    assert not use_log_x(uniform)
    edges, clipped = bins_for(whole, True)
    assert 0 < clipped < 0.03 and edges[0] > 0
    s1, s2 = BottomK(3), BottomK(3)
    for i in range(100):
        (s1 if i % 2 else s2).add(i % 17, str(i), {"i": i})
    both = BottomK(3)
    for i in range(100):
        both.add(i % 17, str(i), {"i": i})
    s1.merge(s2)
    assert s1.items == both.items
