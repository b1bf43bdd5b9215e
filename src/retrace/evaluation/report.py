"""What a reader sees of an evaluation: results.json, a markdown table and a bar chart.

Rows are models, columns are `<task> <metric>`; the chart compares models on each task's chosen
metrics. NaN (nothing scored) is written as null in JSON and as "n/a" in the table, a task a row did
not run as "-". A run stopped by lost requests (`results["failed"]`) says so above the table. The table
and chart code is shared with `compare.py` (rows there are run/model).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from retrace.atomic import json_safe, write_json, write_text

LOWER_IS_BETTER_HINT = ("nll", "ppl", "bits_per_byte")


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def metric_columns(rows: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """`(task, metric)` columns in order of first appearance over rows (`{row: {"tasks": {...}}}`)."""
    columns: list[tuple[str, str]] = []
    for row in rows.values():
        for task, outcome in row["tasks"].items():
            columns += [(task, m) for m in outcome["metrics"] if (task, m) not in columns]
    return columns


def metric_table(rows: dict[str, dict[str, Any]], first_column: str = "model",
                 marks: dict[str, str] | None = None) -> list[str]:
    """Markdown lines: one row per entry of `rows`, one column per task metric; `marks[task]` tags its columns."""
    marks = marks or {}
    columns = metric_columns(rows)
    header = f"| {first_column} | " + " | ".join(f"{task}{marks.get(task, '')} {metric}" for task, metric in columns)
    lines = [header + " |", "|" + "---|" * (len(columns) + 1)]
    for name, row in rows.items():
        cells = [_cell(row["tasks"][task]["metrics"].get(metric)) if task in row["tasks"] else "-"
                 for task, metric in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _only_metrics(rows: dict[str, dict[str, Any]], keep: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """`rows` restricted to the tasks in `keep`, each to the metrics listed for it (all when the list is empty)."""
    out = {}
    for name, row in rows.items():
        tasks = {task: {"metrics": {m: v for m, v in outcome["metrics"].items() if not keep[task] or m in keep[task]}}
                 for task, outcome in row["tasks"].items() if task in keep}
        out[name] = {"tasks": tasks}
    return out


def markdown_table(results: dict[str, Any]) -> str:
    """A headline table (each task's charted metrics), then one table per task with all its metrics.

    One wide table of every metric is unreadable once RULER reports a column per task and length.
    """
    charts = results.get("charts", {})
    rows = results["models"]
    headline = {task: list(charts.get(task, {}).get("metrics", [])) for task in results["tasks"]}
    headline = {task: metrics for task, metrics in headline.items() if metrics}
    lines = metric_table(_only_metrics(rows, headline)) if headline else []
    if failed := results.get("failed"):
        lines = [f"**Run stopped: {failed['task']} lost {failed['failed_requests']} request(s) for "
                 f"{failed['model']}; it has no score and later tasks and models did not run.** "
                 f"{failed['error']}", ""] + lines
    for task in results["tasks"]:
        ran = [m for m in rows.values() if task in m["tasks"]]
        metrics = {k for m in ran for k in m["tasks"][task]["metrics"]}
        if not ran or (set(headline.get(task, [])) >= metrics and len(results["tasks"]) > 1):
            continue  # every metric of this task is in the headline already
        lines += ["", f"### {task}", ""] + metric_table(_only_metrics(rows, {task: []}))
    lines.append("")
    for task in results["tasks"]:
        summaries = {m["tasks"][task]["details"].get("summary") for m in rows.values() if task in m["tasks"]}
        for summary in sorted(s for s in summaries if s):
            lines.append(f"- {task}: {summary}")
    if "heldout_nll" in results["tasks"]:
        lines.append("- nll: nats per token, token-weighted; ppl = exp(nll); lower is better. "
                     "trajectory_gain = raw nll - trajectory nll (higher: the trajectory helps more).")
    return "\n".join(lines) + "\n"


def bar_chart(results: dict[str, Any], charts: dict[str, tuple[list[str], str]], path: Path) -> None:
    """Grouped bars: one panel per task, one group per metric, one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results["models"])
    panels = [(task, metrics, label) for task, (metrics, label) in charts.items() if metrics]
    panel_widths = [1.4 + 0.55 * max(1, len(models)) * len(m) for _, m, _ in panels] or [4.0]
    fig, axes = plt.subplots(1, len(panel_widths), figsize=(sum(panel_widths), 3.8), squeeze=False,
                             gridspec_kw={"width_ratios": panel_widths})
    width = 0.8 / max(1, len(models))
    for ax, (task, metrics, label) in zip(axes[0], panels):
        for k, name in enumerate(models):
            values = [results["models"][name]["tasks"].get(task, {}).get("metrics", {}).get(m) for m in metrics]
            values = [v if isinstance(v, (int, float)) and math.isfinite(v) else 0.0 for v in values]
            xs = [i + (k - (len(models) - 1) / 2) * width for i in range(len(metrics))]
            bars = ax.bar(xs, values, width, label=name)
            ax.bar_label(bars, fmt="%.3f", fontsize=7)
        ax.set_xticks(range(len(metrics)), [m.split("/")[0] for m in metrics])
        ax.set_title(task)
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)


def write_reports(output_dir: str | Path, results: dict[str, Any],
                  charts: dict[str, tuple[list[str], str]]) -> dict[str, Path]:
    """Write results.json, results.md and results.png; returns their paths.

    The chart's metrics per task go into results.json (`charts`), so a comparison of runs charts the same.
    """
    output_dir = Path(output_dir)
    results["charts"] = {task: {"metrics": list(metrics), "label": label} for task, (metrics, label) in charts.items()}
    paths = {"json": output_dir / "results.json", "markdown": output_dir / "results.md",
             "chart": output_dir / "results.png"}
    write_json(paths["json"], json_safe(results))
    write_text(paths["markdown"], markdown_table(results))
    bar_chart(results, charts, paths["chart"])
    return paths
