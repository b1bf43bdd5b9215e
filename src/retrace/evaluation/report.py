"""What a reader sees of an evaluation: results.json, a markdown table and a bar chart.

Rows are models, columns are `<task> <metric>`; the chart compares models on each task's chosen
metrics. NaN (nothing scored) is written as null in JSON and as "n/a" in the table, a task a row did
not run as "-". A run stopped by lost requests (`results["failed"]`) says so above the table. The table
and chart code is shared with `compare.py` (rows there are run/model).

A metric with a 95% interval (`intervals` beside a task's `metrics`) reads "estimate [low, high]" and
its chart bar carries the interval as an error bar; `differences` (each model minus the first) get
their own tables, a difference whose interval excludes 0 marked with `SIGNIFICANT_MARK`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from retrace.atomic import json_safe, write_json, write_text

LOWER_IS_BETTER_HINT = ("nll", "ppl", "bits_per_byte")
SIGNIFICANT_MARK = "*"
UNPAIRED_MARK = " (unpaired)"

Cell = Callable[[dict[str, Any], str], str]  # (a row's task outcome, metric) -> table cell


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _cell(value: Any, sign: str = "") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:{sign}.4f}" if isinstance(value, float) else str(value)


def value_cell(outcome: dict[str, Any], metric: str) -> str:
    """`estimate` or, with an interval, `estimate [low, high]`."""
    value = outcome["metrics"].get(metric)
    bounds = outcome.get("intervals", {}).get(metric)
    if bounds and _finite(value) and all(_finite(b) for b in bounds):
        return f"{_cell(float(value))} [{_cell(float(bounds[0]))}, {_cell(float(bounds[1]))}]"
    return _cell(value)


def difference_cell(outcome: dict[str, Any], metric: str) -> str:
    """`+d [+low, +high]`, marked when the interval excludes 0 and when the units were not paired."""
    entry = outcome["differences"].get(metric)
    if entry is None:
        return "-"
    difference, bounds = entry["difference"], entry.get("interval")
    if not (bounds and _finite(difference) and all(_finite(b) for b in bounds)):
        return _cell(float(difference) if _finite(difference) else difference, "+")
    text = f"{_cell(float(difference), '+')} [{_cell(float(bounds[0]), '+')}, {_cell(float(bounds[1]), '+')}]"
    return text + (f" {SIGNIFICANT_MARK}" if entry["excludes_zero"] else "") + ("" if entry["paired"] else UNPAIRED_MARK)


def metric_columns(rows: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    """`(task, metric)` columns in order of first appearance over rows (`{row: {"tasks": {...}}}`)."""
    columns: list[tuple[str, str]] = []
    for row in rows.values():
        for task, outcome in row["tasks"].items():
            columns += [(task, m) for m in outcome["metrics"] if (task, m) not in columns]
    return columns


def metric_table(rows: dict[str, dict[str, Any]], first_column: str = "model",
                 marks: dict[str, str] | None = None, cell: Cell = value_cell) -> list[str]:
    """Markdown lines: one row per entry of `rows`, one column per task metric; `marks[task]` tags its columns."""
    marks = marks or {}
    columns = metric_columns(rows)
    header = f"| {first_column} | " + " | ".join(f"{task}{marks.get(task, '')} {metric}" for task, metric in columns)
    lines = [header + " |", "|" + "---|" * (len(columns) + 1)]
    for name, row in rows.items():
        cells = [cell(row["tasks"][task], metric) if task in row["tasks"] else "-" for task, metric in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _only_metrics(rows: dict[str, dict[str, Any]], keep: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """`rows` restricted to the tasks in `keep`, each to the metrics listed for it (all when the list is empty)."""
    out = {}
    for name, row in rows.items():
        tasks = {task: {**outcome, "metrics": {m: v for m, v in outcome["metrics"].items()
                                               if not keep[task] or m in keep[task]}}
                 for task, outcome in row["tasks"].items() if task in keep}
        out[name] = {"tasks": tasks}
    return out


def task_tables(rows: dict[str, dict[str, Any]], tasks: list[str], headline: dict[str, list[str]],
                first_column: str = "model", marks: dict[str, str] | None = None, cell: Cell = value_cell,
                repeat_single: bool = True) -> list[str]:
    """A headline table (each task's charted metrics), then one table per task with metrics not in it (a lone
    task's table repeated under its name unless not `repeat_single`)."""
    lines = metric_table(_only_metrics(rows, headline), first_column, marks, cell) if headline else []
    for task in tasks:
        ran = [m for m in rows.values() if task in m["tasks"]]
        metrics = {k for m in ran for k in m["tasks"][task]["metrics"]}
        if not ran or (set(headline.get(task, [])) >= metrics and (len(tasks) > 1 or not repeat_single)):
            continue  # every metric of this task is in the headline already
        lines += ["", f"### {task}", ""] + metric_table(_only_metrics(rows, {task: []}), first_column, marks, cell)
    return lines


def interval_notes(rows: dict[str, dict[str, Any]], tasks: list[str]) -> list[str]:
    """One line per task with intervals: the confidence, the resamples and how many units each row had."""
    lines = []
    for task in tasks:
        units = {name: row["tasks"][task]["units"] for name, row in rows.items()
                 if "units" in row["tasks"].get(task, {})}
        if not units:
            continue
        first = next(iter(units.values()))
        counts = {u["count"] for u in units.values()}
        how_many = (f"its {counts.pop()} {first['name']}" if len(counts) == 1 else
                    f"its {first['name']} (" + ", ".join(f"{n} {u['count']}" for n, u in units.items()) + ")")
        within = " within their strata" if first.get("strata", 1) > 1 else ""
        lines.append(f"- {task}: [low, high] is a {round(100 * first['confidence'])}% percentile bootstrap interval "
                     f"({first['resamples']} resamples of {how_many}{within})")
    return lines


def differences_rows(differences: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`results["differences"]` as table rows `model - base`, each task's outcome holding its `differences`."""
    base = differences.get("base")
    return {f"{model} - {base}": {"tasks": {task: {"metrics": dict.fromkeys(entries), "differences": entries}
                                            for task, entries in tasks.items()}}
            for model, tasks in differences.get("models", {}).items()}


def differences_section(rows: dict[str, dict[str, Any]], tasks: list[str], headline: dict[str, list[str]],
                        title: str, first_column: str = "model - base") -> list[str]:
    """The differences tables and what their marks mean; nothing when there are no rows."""
    if not rows:
        return []
    lines = ["", f"## {title}", ""]
    lines += task_tables(rows, [t for t in tasks if any(t in r["tasks"] for r in rows.values())],
                         {t: m for t, m in headline.items() if any(t in r["tasks"] for r in rows.values())},
                         first_column, cell=difference_cell, repeat_single=False)
    lines += ["", f"- `{SIGNIFICANT_MARK}`: the difference's 95% interval excludes 0 (larger than its uncertainty); "
              "without it the two cannot be told apart at this sample size. Paired bootstrap over the units both "
              f"measured;{UNPAIRED_MARK}: the units differ, each side resampled on its own. A difference without "
              "an interval had no per-sample records."]
    return lines


def markdown_table(results: dict[str, Any]) -> str:
    """A headline table (each task's charted metrics), one table per task with all its metrics, notes,
    then the differences of each model from the first.

    One wide table of every metric is unreadable once RULER reports a column per task and length.
    """
    charts = results.get("charts", {})
    rows = results["models"]
    headline = {task: list(charts.get(task, {}).get("metrics", [])) for task in results["tasks"]}
    headline = {task: metrics for task, metrics in headline.items() if metrics}
    lines = task_tables(rows, results["tasks"], headline)
    if failed := results.get("failed"):
        lines = [f"**Run stopped: {failed['task']} lost {failed['failed_requests']} request(s) for "
                 f"{failed['model']}; it has no score and later tasks and models did not run.** "
                 f"{failed['error']}", ""] + lines
    lines.append("")
    for task in results["tasks"]:
        summaries = {m["tasks"][task]["details"].get("summary") for m in rows.values() if task in m["tasks"]}
        for summary in sorted(s for s in summaries if s):
            lines.append(f"- {task}: {summary}")
    if "heldout_nll" in results["tasks"]:
        lines.append("- nll: nats per token, token-weighted; ppl = exp(nll); lower is better. "
                     "trajectory_gain = raw nll - trajectory nll (higher: the trajectory helps more).")
    lines += interval_notes(rows, results["tasks"])
    if differences := results.get("differences"):
        lines += differences_section(differences_rows(differences), results["tasks"], headline,
                                     f"Differences from {differences['base']} (the first model)")
    return "\n".join(lines) + "\n"


def _error_bars(values: list[float], bounds: list[Any]) -> list[list[float]] | None:
    """matplotlib's `yerr` ([below], [above]) from [low, high] intervals (0 where a bar has none); None if none has."""
    usable = [b if b and all(_finite(x) for x in b) else None for b in bounds]
    if not any(usable):
        return None
    return [[max(0.0, v - b[0]) if b else 0.0 for v, b in zip(values, usable)],
            [max(0.0, b[1] - v) if b else 0.0 for v, b in zip(values, usable)]]


def bar_chart(results: dict[str, Any], charts: dict[str, tuple[list[str], str]], path: Path) -> None:
    """Grouped bars: one panel per task, one group per metric, one bar per model; 95% intervals as error bars."""
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
            outcome = results["models"][name]["tasks"].get(task, {})
            values = [outcome.get("metrics", {}).get(m) for m in metrics]
            values = [v if _finite(v) else 0.0 for v in values]
            errors = _error_bars(values, [outcome.get("intervals", {}).get(m) for m in metrics])
            xs = [i + (k - (len(models) - 1) / 2) * width for i in range(len(metrics))]
            bars = ax.bar(xs, values, width, label=name, yerr=errors, capsize=3 if errors is not None else 0)
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
