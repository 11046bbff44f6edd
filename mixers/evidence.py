"""What each rule of a mix stream did, summarised in fixed size while the stream is mixed: the data
behind the report's rule plots and examples.

Per typed rule (and dedupe flag): the rule's value over the documents finally kept and finally dropped
(:class:`LogHistogram`), per source; how many documents it would drop alone and how many it dropped
after the rules before it; a deterministic sample of the documents it removed (the smallest hashes of
their ids) and of the kept documents closest to its threshold; for MinHash flags, samples chosen by a
hash of the cluster id, so that after merging a removed copy meets its cluster's kept copy. Per Dolma
filter expression and the other drop reasons: a sample of removed documents. Excerpts hold the text
around the spans that explain the decision (the rule's own spans, and the stream's span replacements:
PII, duplicate paragraphs), cut to ``EXCERPT`` characters.
"""

from __future__ import annotations

import hashlib
from typing import Any

from dolma_pipeline.sketches import BottomK, LogHistogram
from mixers.rules import DedupeFlag, Rule, reduce_spans

SAMPLES = 3
EXCERPT = 480
CONTEXT = 120


def id_hash(text: str) -> float:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") / 2.0**64


def _spans_of(attributes: dict, keys: list[str], text_length: int) -> list[tuple[int, int, str]]:
    out = []
    for key in keys:
        spans = attributes.get(key)
        if type(spans) is not list:
            continue
        for s in spans:
            if type(s) is list and len(s) >= 2 and isinstance(s[0], int) and isinstance(s[1], int):
                if not (s[0] == 0 and s[1] == text_length):  # a document-level value explains nothing
                    out.append((s[0], s[1], key.rsplit("__", 1)[-1]))
    return sorted(out)


def excerpt(doc, attributes: dict, keys: list[str], value: float | None) -> dict[str, Any]:
    text = doc.text
    spans = _spans_of(attributes, keys, len(text))
    start = max(0, spans[0][0] - CONTEXT) if spans else 0
    end = min(len(text), start + EXCERPT)
    shown = [(max(s, start) - start, min(e, end) - start, label) for s, e, label in spans if s < end and e > start]
    return {"id": doc.id, "line": doc.line, "source": doc.raw.get("source") if type(doc.raw.get("source")) is str
            else "", "value": value, "offset": start, "length": len(text), "text": text[start:end],
            "spans": [list(s) for s in shown[:50]]}


class RuleEvidence:
    def __init__(self, check: Rule | DedupeFlag) -> None:
        self.check = check
        self.label = check.label
        self.key = check.key
        self.threshold = check.value if isinstance(check, Rule) else 0.5
        self.op = "ge" if isinstance(check, DedupeFlag) else check.op_name
        self.kept = LogHistogram()
        self.dropped = LogHistogram()
        self.by_source: dict[str, list[int]] = {}  # source -> [documents, fired alone]
        self.fired = 0
        self.removed = BottomK(SAMPLES)
        self.near = BottomK(SAMPLES)
        self.minhash = isinstance(check, DedupeFlag) and "minhash" in check.key
        self.kept_copies = BottomK(SAMPLES) if self.minhash else None

    def to_json(self, file: str) -> dict[str, Any]:
        def samples(b: BottomK | None) -> list:
            return [[k, t, {**item, "file": item.get("file", file)}] for k, t, item in (b.to_json() if b else [])]

        return {"label": self.label, "key": self.key, "threshold": self.threshold, "op": self.op,
                "kept": self.kept.to_json(), "dropped": self.dropped.to_json(), "by_source": self.by_source,
                "fired": self.fired, "removed": samples(self.removed), "near": samples(self.near),
                "kept_copies": samples(self.kept_copies), "minhash": self.minhash}


class StreamEvidence:
    """Collects one document file's evidence; ``to_json`` goes into the shard's stats."""

    def __init__(self, checks: list, highlight_keys: list[str]) -> None:
        self.rules = [RuleEvidence(c) for c in checks]
        self.highlight = highlight_keys
        self.other: dict[str, BottomK] = {}  # drop reasons that are not typed rules (filter, sample, length)

    def values(self, attributes: dict, text_length: int) -> list[tuple[float | None, bool]]:
        """(value, fires) for every rule, all evaluated (the report shows each rule's effect alone)."""
        out = []
        for ev in self.rules:
            c = ev.check
            if isinstance(c, DedupeFlag):
                spans = attributes.get(c.key)
                value = max((s[2] for s in spans), default=0.0) if spans else 0.0
                out.append((float(value), c.drops(attributes, text_length)))
            else:
                v = reduce_spans(attributes.get(c.key), c.reduce, c.key, text_length)
                v = c.default if v is None else v
                out.append((None if v is None else float(v), c.drops(attributes, text_length)))
        return out

    def record(self, doc, attributes: dict, values: list[tuple[float | None, bool]], reason: str | None) -> None:
        source = doc.raw.get("source") if type(doc.raw.get("source")) is str else ""
        h = id_hash(doc.id)
        for ev, (value, fires) in zip(self.rules, values, strict=True):
            per = ev.by_source.setdefault(source, [0, 0])
            per[0] += 1
            if fires:
                ev.fired += 1
                per[1] += 1
            if value is not None:
                (ev.dropped if reason is not None else ev.kept).add(value)
            keys = [ev.key, *self.highlight]
            if ev.minhash:
                cluster = attributes.get(ev.key.replace("__duplicate", "__cluster_id"))
                cid = str(cluster[0][2]) if cluster else ""
                if cid:
                    ch = id_hash(cid)
                    if fires and ev.removed.would_keep(ch, doc.id):
                        ev.removed.add(ch, doc.id, {**excerpt(doc, attributes, keys, value), "cluster": cid})
                    elif not fires and ev.kept_copies.would_keep(ch, doc.id):
                        ev.kept_copies.add(ch, doc.id, {**excerpt(doc, attributes, keys, value), "cluster": cid})
                continue
            if fires and reason == ev.label and ev.removed.would_keep(h, doc.id):
                ev.removed.add(h, doc.id, excerpt(doc, attributes, keys, value))
            elif not fires and value is not None:
                d = abs(value - ev.threshold)
                if ev.near.would_keep(d, doc.id):
                    ev.near.add(d, doc.id, excerpt(doc, attributes, keys, value))
        if reason is not None and not any(reason == ev.label for ev in self.rules):
            b = self.other.setdefault(reason, BottomK(SAMPLES))
            if b.would_keep(h, doc.id):
                b.add(h, doc.id, excerpt(doc, attributes, self.highlight, None))

    def to_json(self, file: str) -> dict[str, Any]:
        return {"rules": [ev.to_json(file) for ev in self.rules],
                "other": {k: [[a, t, {**i, "file": file}] for a, t, i in b.to_json()] for k, b in self.other.items()}}


def merge(evidences: list[dict[str, Any]]) -> dict[str, Any]:
    """One stream's evidence from its shards' (the same sample whatever the sharding)."""
    rules: dict[str, dict] = {}
    sketches: dict[str, dict] = {}
    other: dict[str, BottomK] = {}
    for ev in evidences:
        for r in ev.get("rules", []):
            label = r["label"]
            if label not in rules:
                rules[label] = {k: r[k] for k in ("label", "key", "threshold", "op", "minhash")}
                rules[label].update(fired=0, by_source={})
                sketches[label] = {"kept": LogHistogram(), "dropped": LogHistogram(), "removed": BottomK(SAMPLES),
                                   "near": BottomK(SAMPLES), "kept_copies": BottomK(SAMPLES)}
            agg, sk = rules[label], sketches[label]
            agg["fired"] += r["fired"]
            for src, (n, f) in r["by_source"].items():
                cur = agg["by_source"].setdefault(src, [0, 0])
                cur[0] += n
                cur[1] += f
            for name in ("kept", "dropped"):
                sk[name].merge(LogHistogram.from_json(r[name]))
            for name in ("removed", "near", "kept_copies"):
                sk[name].merge(BottomK.from_json(SAMPLES, r[name]))
        for reason, items in ev.get("other", {}).items():
            other.setdefault(reason, BottomK(SAMPLES)).merge(BottomK.from_json(SAMPLES, items))
    out_rules = []
    for label, agg in rules.items():
        sk = sketches[label]
        out_rules.append({**agg, "kept": sk["kept"].to_json(), "dropped": sk["dropped"].to_json(),
                          **{n: [i for _, _, i in sk[n].items] for n in ("removed", "near", "kept_copies")}})
    return {"rules": out_rules, "other": {k: [i for _, _, i in b.items] for k, b in sorted(other.items())}}
