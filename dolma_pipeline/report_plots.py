"""Histograms drawn from :class:`LogHistogram` sketches: the scale chosen from the data (log x for
heavy-tailed non-negative values), the range clipped to the 0.5-99.5% quantiles with the clipped share
stated, several series overlaid (kept vs dropped), and a rule's threshold drawn on the axis."""

from __future__ import annotations

import math
import os

from dolma_pipeline.sketches import LogHistogram

BINS = 40


def plain_title(key: str) -> str:
    """``exp__gopher_v1__word_count`` -> ``gopher_v1: word count``."""
    parts = key.split("__")
    if len(parts) >= 3:
        return f"{parts[-2]}: {parts[-1].replace('_', ' ')}"
    return key.replace("_", " ")


def merged(hists: list[LogHistogram]) -> LogHistogram:
    out = LogHistogram()
    for h in hists:
        out.merge(h)
    return out


def _quantiles(points: list[tuple[float, int]], qs: list[float]) -> list[float]:
    total = sum(n for _, n in points)
    out, seen, it = [], 0, iter(points)
    v = points[0][0]
    for q in qs:
        while seen < q * total:
            v, n = next(it)
            seen += n
        out.append(v)
    return out


def use_log_x(h: LogHistogram) -> bool:
    """Heavy-tailed: non-negative, and the positive values span more than two decades between their 1st
    and 99th percentiles, or the 99th is over 20x their median."""
    if not h.count or h.min < 0:
        return False
    positive = [(v, n) for v, n in h.points() if v > 0]
    if not positive:
        return False
    lo, mid, hi = _quantiles(positive, [0.01, 0.5, 0.99])
    return lo > 0 and (hi / lo > 100 or hi / mid > 20)


def bins_for(h: LogHistogram, log_x: bool) -> tuple[list[float], float]:
    """Bin edges over the 0.5-99.5% range, and the share of values outside it (zeros, on log x)."""
    lo, hi = h.quantile(0.005), h.quantile(0.995)
    if log_x:
        lo = max(lo, min((v for v, _ in h.points() if v > 0), default=1.0))
        hi = max(hi, lo * 1.0001)
        edges = [lo * (hi / lo) ** (i / BINS) for i in range(BINS + 1)]
    else:
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        edges = [lo + (hi - lo) * i / BINS for i in range(BINS + 1)]
    outside = sum(n for v, n in h.points() if v < edges[0] or v > edges[-1])
    return edges, outside / h.count if h.count else 0.0


def counts_in(h: LogHistogram, edges: list[float]) -> list[int]:
    import bisect

    out = [0] * (len(edges) - 1)
    for v, n in h.points():
        if edges[0] <= v <= edges[-1]:
            out[min(len(out) - 1, max(0, bisect.bisect_right(edges, v) - 1))] += n
    return out


def histogram_png(out_dir: str, name: str, key: str, series: dict[str, LogHistogram],
                  threshold: float | None = None, threshold_label: str = "") -> tuple[str, str]:
    """Draw ``series`` (label -> sketch) stacked; returns (file name, a note on scale and clipping)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    whole = merged(list(series.values()))
    log_x = use_log_x(whole)
    edges, clipped = bins_for(whole, log_x)
    fig, ax = plt.subplots(figsize=(5.6, 2.9))
    bottom = [0] * (len(edges) - 1)
    colours = {"kept": "#55a868", "dropped": "#c44e52"}
    for label, h in series.items():
        c = counts_in(h, edges)
        ax.bar(edges[:-1], c, width=[b - a for a, b in zip(edges[:-1], edges[1:])], bottom=bottom, align="edge",
               color=colours.get(label), alpha=0.85, label=f"{label} ({h.count:,})")
        bottom = [b + x for b, x in zip(bottom, c)]
    if log_x:
        ax.set_xscale("log")
    if threshold is not None and math.isfinite(threshold):
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2)
        if threshold_label:
            ax.text(threshold, ax.get_ylim()[1] * 0.95, " " + threshold_label, fontsize=7, va="top")
    ax.set_title(plain_title(key), fontsize=10)
    ax.set_xlabel(key, fontsize=7, color="#555")
    ax.set_ylabel("documents", fontsize=8)
    if len(series) > 1 or threshold is not None:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, name), dpi=80)
    plt.close(fig)
    note = ("log x (heavy-tailed)" if log_x else "linear x") + (
        f"; {100 * clipped:.1f}% of values outside the drawn range" + (" (zeros included)" if log_x and whole.zeros
                                                                       else "") if clipped else "")
    return name, note
