"""The side-by-side page of an ablation: per run, documents and tokens kept, per-source bits per byte and
downstream scores (the training stage's last in-loop evaluation), each variant's difference from the
baseline and whether it is larger than the seed noise (two standard deviations of the baseline seeds)."""

from __future__ import annotations

import glob
import html
import json
import os
import statistics
from typing import Any

from dolma_pipeline.ablation import Run


def _read_json(path: str) -> Any:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _last_eval(save_folder: str) -> dict[str, float]:
    rows = []
    path = os.path.join(save_folder, "metrics.jsonl")
    if os.path.isfile(path):
        with open(path) as fh:
            rows = [json.loads(line) for line in fh if line.strip()]
    for row in reversed(rows):
        found = {k: v for k, v in row.items() if k.startswith(("eval/ppl/", "eval/task/"))}
        if found:
            return found
    return {}


def run_figures(run: Run) -> dict[str, float]:
    """``documents kept``, ``tokens`` and the eval metrics of one run."""
    out: dict[str, float] = {}
    for s in run.stages:
        if s.command == "mix":
            reports = [r for p in glob.glob(os.path.join(s.output, "**", ".*.mix_report.json"), recursive=True)
                       if (r := _read_json(p))]
            out["documents kept"] = out.get("documents kept", 0) + sum(r.get("documents_out", 0) for r in reports)
        elif s.command == "tokenize":
            summary = _read_json(os.path.join(s.output, "dolma_tokenize.summary.json")) or {}
            out["tokens"] = out.get("tokens", 0) + summary.get("tokens", 0)
        elif s.command == "train":
            folder = (s.config.get("overrides") or {}).get("checkpoint.save_folder") or s.output
            out.update(_last_eval(folder))
    return out


def compare(runs: list[Run]) -> dict[str, Any]:
    figures = {r.name: run_figures(r) for r in runs}
    baseline = [figures[r.name] for r in runs if r.variant == "baseline"]
    metrics = sorted({k for f in figures.values() for k in f})
    stats = {}
    for m in metrics:
        vals = [b[m] for b in baseline if m in b]
        stats[m] = {"mean": statistics.fmean(vals) if vals else None,
                    "std": statistics.stdev(vals) if len(vals) > 1 else None}
    variants = {}
    for r in runs:
        if r.variant == "baseline":
            continue
        rows = {}
        for m in metrics:
            v, mean, std = figures[r.name].get(m), stats[m]["mean"], stats[m]["std"]
            diff = None if v is None or mean is None else v - mean
            rows[m] = {"value": v, "diff": diff,
                       "beyond_noise": None if diff is None or std is None else abs(diff) > 2 * std}
        variants[r.name] = rows
    return {"runs": figures, "baseline": stats, "variants": variants,
            "seeds": [r.seed for r in runs if r.variant == "baseline"]}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_bars(result: dict, keys: list[str], label, ylabel: str, title: str, out: str) -> str | None:
    """Grouped bars: one group per metric, one bar per run."""
    if not keys:
        return None
    plt = _pyplot()
    names = list(result["runs"])
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(keys) * len(names) / 2), 4))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        vals = [result["runs"][name].get(k, float("nan")) for k in keys]
        ax.bar([j + i * width for j in range(len(keys))], vals, width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(keys))])
    ax.set_xticklabels([label(k) for k in keys], rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return os.path.basename(out)


def _plot_differences(result: dict, keys: list[str], out: str) -> str | None:
    """Each variant's difference from the baseline mean per metric, over the band of two baseline-seed
    standard deviations: a bar outside the grey band is larger than the seed noise."""
    variants = list(result["variants"])
    if not keys or not variants:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, max(3, 0.45 * len(keys) * max(1, len(variants)) + 1)))
    height = 0.8 / len(variants)
    for j, key in enumerate(keys):
        std = result["baseline"][key]["std"]
        if std:
            ax.fill_betweenx([j - 0.45, j + 0.45], -2 * std, 2 * std, color="0.85", zorder=0)
    for i, name in enumerate(variants):
        diffs = [(result["variants"][name].get(k) or {}).get("diff") for k in keys]
        ax.barh([j - 0.4 + (i + 0.5) * height for j in range(len(keys))],
                [float("nan") if d is None else d for d in diffs], height, label=name, zorder=2)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(keys)))
    ax.set_yticklabels([k.removeprefix("eval/") for k in keys], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("difference from the baseline mean (grey: ±2 std of the baseline seeds;\n"
                  "bits per byte: lower is better, scores: higher is better)")
    ax.set_title("Variants against the baseline")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return os.path.basename(out)


def _plots(result: dict, out_dir: str) -> list[tuple[str, str]]:
    """The page's figures as (file, alt text): bits per byte per source, downstream scores, differences."""
    metrics = sorted({k for f in result["runs"].values() for k in f})
    bpb = [k for k in metrics if k.startswith("eval/ppl/") and k.endswith("/bits_per_byte")]
    tasks = [k for k in metrics if k.startswith("eval/task/")]
    made = [
        (_plot_bars(result, bpb, lambda k: k.split("/")[2], "bits per byte (lower is better)",
                    "Held-out bits per byte per source", os.path.join(out_dir, "bits_per_byte.png")),
         "bits per byte per source"),
        (_plot_bars(result, tasks, lambda k: k.removeprefix("eval/task/"), "score (higher is better)",
                    "Downstream scores", os.path.join(out_dir, "downstream.png")), "downstream scores"),
        (_plot_differences(result, bpb + tasks, os.path.join(out_dir, "differences.png")),
         "each variant's difference from the baseline"),
    ]
    return [(file, alt) for file, alt in made if file]


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and abs(v) < 1000:
        return f"{v:.4f}"
    return f"{int(v):,}"


def write_report(runs: list[Run], out_dir: str) -> str:
    os.makedirs(out_dir, exist_ok=True)
    result = compare(runs)
    with open(os.path.join(out_dir, "ablation.json.tmp"), "w") as fh:
        json.dump(result, fh, indent=2, sort_keys=True)
    os.replace(os.path.join(out_dir, "ablation.json.tmp"), os.path.join(out_dir, "ablation.json"))
    names = list(result["runs"])
    metrics = sorted({k for f in result["runs"].values() for k in f})
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = []
    for m in metrics:
        cells = []
        for n in names:
            cell = _fmt(result["runs"][n].get(m))
            v = result["variants"].get(n, {}).get(m)
            if v and v["diff"] is not None:
                mark = "" if v["beyond_noise"] is None else (" <b>*</b>" if v["beyond_noise"] else " (noise)")
                cell += f"<br><small>{v['diff']:+.4g}{mark}</small>"
            cells.append(f"<td>{cell}</td>")
        std = result["baseline"][m]["std"]
        body.append(f"<tr><td>{html.escape(m)}</td>{''.join(cells)}<td>{_fmt(std)}</td></tr>")
    plots = _plots(result, out_dir)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Ablation</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
table{{border-collapse:collapse}}td:first-child{{text-align:left}}</style></head><body>
<h1>Data ablation</h1>
<p>Baseline seeds: {html.escape(str(result['seeds']))}. Under each variant's value: its difference from the
baseline mean; <b>*</b> marks a difference larger than two standard deviations of the baseline seeds,
"(noise)" one within them.</p>
{''.join(f'<p><img src="{file}" alt="{alt}"></p>' for file, alt in plots)}
<table><tr><th>metric</th>{head}<th>baseline std</th></tr>{''.join(body)}</table></body></html>"""
    path = os.path.join(out_dir, "index.html")
    with open(path + ".tmp", "w") as fh:
        fh.write(page)
    os.replace(path + ".tmp", path)
    return path
