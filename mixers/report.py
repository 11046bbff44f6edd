"""The per-stream report of `dolma mix`: documents and bytes in and out, drops per rule, spans replaced."""

from __future__ import annotations

from typing import Any

from mixers.evidence import merge as merge_evidence

REPORT_FIELDS = ("documents", "bytes", "documents_out", "bytes_out", "compressed_bytes_out", "copies_added")


def merge_unit_stats(units: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum the stats of a stream's work units (one per document file)."""
    total: dict[str, Any] = {key: 0 for key in REPORT_FIELDS}
    total.update(dropped={}, spans_replaced={}, seconds=0.0)
    for stats in units:
        for key in REPORT_FIELDS:
            total[key] += int(stats.get(key, 0))
        total["seconds"] += float(stats.get("seconds", 0.0))
        for bucket in ("dropped", "spans_replaced"):
            for label, n in stats.get(bucket, {}).items():
                total[bucket][label] = total[bucket].get(label, 0) + n
    for bucket in ("dropped", "spans_replaced"):
        total[bucket] = dict(sorted(total[bucket].items(), key=lambda kv: (-kv[1], kv[0])))
    total["evidence"] = merge_evidence([s["evidence"] for s in units if "evidence" in s])
    return total


def stream_report(name: str, files: int, totals: dict[str, Any], shards: list[str]) -> dict[str, Any]:
    return {
        "stream": name,
        "files": files,
        "documents_in": totals["documents"],
        "bytes_in": totals["bytes"],
        "documents_out": totals["documents_out"],
        "bytes_out": totals["bytes_out"],
        "compressed_bytes_out": totals["compressed_bytes_out"],
        "copies_added": totals["copies_added"],
        "dropped": totals["dropped"],
        "spans_replaced": totals["spans_replaced"],
        "worker_seconds": round(totals["seconds"], 3),
        "evidence": totals.get("evidence", {}),
        "shards": shards,
    }


def _pct(n: int, of: int) -> str:
    return f"{100.0 * n / of:5.1f}%" if of else "    -"


def render(reports: list[dict[str, Any]]) -> str:
    lines = []
    for r in reports:
        docs_in = r["documents_in"]
        lines.append(f"stream {r['stream']}: {r['files']} file(s) -> {len(r['shards'])} shard(s)")
        lines.append(f"  {'':<52} {'documents':>12} {'MB':>10}")
        lines.append(f"  {'in':<52} {docs_in:>12,} {r['bytes_in'] / 1e6:>10.2f}")
        lines.append(f"  {'out':<52} {r['documents_out']:>12,} {r['bytes_out'] / 1e6:>10.2f}"
                     f"  ({r['compressed_bytes_out'] / 1e6:.2f} MB compressed)")
        if r["copies_added"]:
            lines.append(f"  {'  of which up-sampled copies':<52} {r['copies_added']:>12,}")
        for label, n in r["dropped"].items():
            shown = label if len(label) <= 50 else label[:47] + "..."
            lines.append(f"  dropped: {shown:<43} {n:>12,} {_pct(n, docs_in):>10}")
        for label, n in r["spans_replaced"].items():
            lines.append(f"  spans replaced: {label:<36} {n:>12,}")
    return "\n".join(lines)
