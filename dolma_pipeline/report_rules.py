"""The report's rule sections: for every rule of every mix stream, the rule's attribute plotted as kept
vs dropped with its threshold and the share it removes (alone, and after the rules before it), its
effect per source, and examples: removed documents and kept ones just past the threshold, as escaped
excerpts with the explaining spans highlighted, each linked to its file and line. MinHash flags show a
removed copy beside its cluster's kept copy; other drop reasons show removed documents."""

from __future__ import annotations

import html
import zlib
from typing import Any

from dolma_pipeline.report_plots import histogram_png
from dolma_pipeline.sketches import LogHistogram

OP_WORDS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
MARK_COLOURS = ("#a5d6a7", "#ce93d8", "#ffab91", "#80deea")


def _colour(label: str) -> str:
    """The same colour for a kind of span on the whole page: PII yellow, duplicates blue, the rest by name."""
    if label.isupper():  # PII entity types (EMAIL_ADDRESS, ...)
        return "#ffd54f"
    if "contamin" in label:
        return "#f48fb1"
    if "duplicate" in label:
        return "#90caf9"
    return MARK_COLOURS[zlib.crc32(label.encode()) % len(MARK_COLOURS)]


def excerpt_html(item: dict[str, Any]) -> str:
    """The excerpt, escaped, with its spans in <mark> (overlaps merged), and where it comes from."""
    text, spans = item.get("text", ""), sorted(tuple(s) for s in item.get("spans", []))
    kinds = sorted({str(label) for *_, label in spans})  # each kind of span its colour, named in a legend
    parts, pos = [], 0
    for start, end, label in spans:
        start, end = max(start, pos), max(end, pos)
        if end <= start:
            continue
        parts.append(html.escape(text[pos:start]))
        parts.append(f'<mark style="background:{_colour(str(label))}" title="{html.escape(str(label))}">'
                     f'{html.escape(text[start:end])}</mark>')
        pos = end
    parts.append(html.escape(text[pos:]))
    more = "…" if item.get("offset", 0) + len(text) < item.get("length", 0) else ""
    lead = "…" if item.get("offset", 0) else ""
    value = item.get("value")
    where = f"{item.get('file', '')}:{item.get('line', '')}"
    href = "file://" + where.split(":")[0] if where.startswith("/") else ""
    loc = (f'<a href="{html.escape(href)}">{html.escape(where)}</a>' if href else html.escape(where))
    meta = f"{loc} · id {html.escape(str(item.get('id', '')))}" + (
        f" · value {value:g}" if isinstance(value, (int, float)) else "") + (
        f" · source {html.escape(item['source'])}" if item.get("source") else "")
    if kinds:
        meta += " · highlighted: " + ", ".join(
            f'<mark style="background:{_colour(k)}">{html.escape(k)}</mark>' for k in kinds)
    return f'<div class="ex"><div class="meta">{meta}</div><pre>{lead}{"".join(parts)}{more}</pre></div>'


def _examples(title: str, items: list[dict]) -> str:
    if not items:
        return f"<p class=none>{html.escape(title)}: none.</p>"
    return f"<h4>{html.escape(title)}</h4>" + "".join(excerpt_html(i) for i in items)


def _per_source(rule: dict) -> str:
    rows = sorted(rule.get("by_source", {}).items())
    if len(rows) < 2:
        return ""
    cells = "".join(f"<tr><td>{html.escape(src or '(none)')}</td><td>{n:,}</td><td>{100 * f / n:.1f}%</td></tr>"
                    for src, (n, f) in rows if n)
    return f"<table class=small><tr><th>source</th><th>documents</th><th>rule fires</th></tr>{cells}</table>"


def rule_sections(reports: list[dict[str, Any]], out_dir: str) -> list[tuple[str, str]]:
    sections = []
    for r in reports:
        ev = r.get("evidence") or {}
        docs_in = r.get("documents_in", 0) or 0
        stream = r.get("stream", "")
        blocks = []
        for i, rule in enumerate(ev.get("rules", [])):
            kept, dropped = LogHistogram.from_json(rule["kept"]), LogHistogram.from_json(rule["dropped"])
            alone = rule["fired"] / docs_in if docs_in else 0.0
            after = r.get("dropped", {}).get(rule["label"], 0) / docs_in if docs_in else 0.0
            words = f"{OP_WORDS.get(rule['op'], rule['op'])} {rule['threshold']:g}"
            img, note = None, ""
            if kept.count + dropped.count:
                img, note = histogram_png(out_dir, f"rule_{stream}_{i}.png", rule["key"],
                                          {"kept": kept, "dropped": dropped}, rule["threshold"], words)
            head = (f"<h3>{html.escape(rule['label'])}</h3><p>Removes <b>{100 * alone:.1f}%</b> of the stream's "
                    f"documents alone, <b>{100 * after:.1f}%</b> after the rules before it "
                    f"({r.get('dropped', {}).get(rule['label'], 0):,} of {docs_in:,}). "
                    f"<small>{html.escape(note)}</small></p>")
            plot = f'<img class=rule src="{img}" alt="{html.escape(rule["key"])}">' if img else ""
            if rule.get("minhash"):
                kept_by_cluster = {i["cluster"]: i for i in rule.get("kept_copies", [])}
                pairs = []
                for item in rule.get("removed", []):
                    twin = kept_by_cluster.get(item.get("cluster"))
                    pairs.append('<div class="pair"><div><b>kept copy</b>' + (excerpt_html(twin) if twin else
                                 "<p class=none>(kept copy not sampled)</p>") + "</div><div><b>removed</b>"
                                 + excerpt_html(item) + "</div></div>")
                examples = "<h4>Near-duplicate clusters: kept copy beside a removed one</h4>" + (
                    "".join(pairs) or "<p class=none>none.</p>")
            else:
                examples = (_examples("Removed by this rule", rule.get("removed", []))
                            + _examples("Kept, closest to the threshold", rule.get("near", [])))
            blocks.append(f'<div class="rule">{head}{plot}{_per_source(rule)}{examples}</div>')
        for reason, items in ev.get("other", {}).items():
            n = r.get("dropped", {}).get(reason, 0)
            blocks.append(f'<div class="rule"><h3>{html.escape(reason)}</h3><p>{n:,} documents removed.</p>'
                          f'{_examples("Removed", items)}</div>')
        if blocks:
            sections.append((f"What each rule removed: stream {stream}", "".join(blocks)))
    return sections


STYLE = """.rule{border-top:1px solid #ddd;margin:1em 0;padding-top:.5em}img.rule{max-width:560px}
.ex{margin:.4em 0 .8em 0}.ex pre{white-space:pre-wrap;background:#f7f7f7;padding:6px;max-height:12em;overflow:auto;
font-size:12px}.meta{font-size:11px;color:#555}mark{background:#ffd54f}.pair{display:grid;grid-template-columns:1fr 1fr;
gap:1em}.none{color:#888}table.small td,table.small th{font-size:12px}"""
