"""Several evaluate runs side by side: one table and one grouped bar chart, like the paper's comparison.

Each run is an evaluate output directory (its `results.json`); rows are `run/model`, columns are task
metrics. Numbers only compare when they were measured the same way, so for every task two runs share,
the task's own options and the run settings that change what is measured (all of `settings` except how
the work was spread: device, batch size, parallelism, server address, retries) must agree: otherwise
`compare_runs` refuses, naming each difference, or with `allow_mismatch` marks the task's columns with
a dagger and lists the differences under the table.

Cells carry the runs' 95% intervals; for every pair of rows and every metric both have, the difference
gets its own 95% interval by a paired bootstrap over the per-sample records the runs saved
(`samples/<model>/<task>.jsonl`), marked when it excludes 0 (see `intervals`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrace.atomic import write_json, write_text
from retrace.evaluation.intervals import UnitSample, difference_entry, unit_sample
from retrace.evaluation.report import (
    bar_chart,
    differences_section,
    interval_notes,
    json_safe,
    metric_columns,
    metric_table,
)
from retrace.evaluation.tasks import get_task
from retrace.recipe import RecipeError

# Settings that say how the work was run, not what was measured (the `eval_*` engine keys, and the names
# runs recorded before those keys, so older runs still compare).
EXECUTION_SETTINGS = frozenset({
    "eval_device", "eval_batch_size", "eval_tensor_parallel_size", "eval_gpu_memory_utilization",
    "eval_enforce_eager", "eval_base_url", "eval_api_key_env", "eval_concurrency", "eval_timeout_s",
    "eval_max_retries", "eval_ready_timeout_s",
    "device", "batch_size", "generation_batch_size", "tensor_parallel_size", "gpu_memory_utilization",
    "openai_concurrency", "openai_base_url", "bootstrap_resamples"})
MISMATCH_MARK = " †"
MAX_CHART_METRICS = 4


class SettingsMismatch(RecipeError):
    """Runs that measured a task they share under different settings (evaluate.py: one line, exit 2)."""


@dataclass(frozen=True)
class EvaluationRun:
    label: str
    path: Path
    results: dict[str, Any]


def _labels(paths: list[Path]) -> list[str]:
    """The shortest trailing path parts that tell the runs apart (`runs/raw/eval` -> `raw/eval`)."""
    parts = [p.resolve().parts for p in paths]
    for depth in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    raise RecipeError(f"key 'compare': the same run is given twice: {[str(p) for p in paths]}")


def load_runs(run_dirs: list[str]) -> list[EvaluationRun]:
    """Each `label=dir` or `dir` (labelled by the shortest distinguishing path suffix) with its results."""
    named: list[tuple[str | None, Path]] = []
    for spec in run_dirs:
        label, sep, path = spec.partition("=")
        named.append((label, Path(path)) if sep and label and "/" not in label else (None, Path(spec)))
    defaults = _labels([path for _, path in named]) if named else []
    runs = []
    for (label, path), default in zip(named, defaults):
        results_path = path.expanduser() / "results.json"
        if not results_path.is_file():
            raise RecipeError(f"key 'compare': {path} is not an evaluate output dir (no results.json)")
        runs.append(EvaluationRun(label or default, path, json.loads(results_path.read_text(encoding="utf-8"))))
    labels = [run.label for run in runs]
    if len(set(labels)) != len(labels):
        raise RecipeError(f"key 'compare': run labels must differ, got {labels}")
    return runs


def _task_settings(run: EvaluationRun, task: str) -> dict[str, Any]:
    measured = {k: v for k, v in run.results.get("settings", {}).items() if k not in EXECUTION_SETTINGS}
    return {**measured, **run.results.get("task_options", {}).get(task, {})}


def settings_differences(runs: list[EvaluationRun]) -> dict[str, list[str]]:
    """`{task: ["key: run=value, run=value", ...]}` for each task two or more runs share and measured differently."""
    differences: dict[str, list[str]] = {}
    tasks = list(dict.fromkeys(t for run in runs for t in run.results.get("tasks", [])))
    for task in tasks:
        sharing = [run for run in runs if task in run.results.get("tasks", [])]
        if len(sharing) < 2:
            continue
        settings = {run.label: _task_settings(run, task) for run in sharing}
        keys = list(dict.fromkeys(k for values in settings.values() for k in values))
        for key in keys:
            values = {label: values.get(key) for label, values in settings.items()}
            if len({json.dumps(v, sort_keys=True) for v in values.values()}) > 1:
                differences.setdefault(task, []).append(
                    f"{key}: " + ", ".join(f"{label}={json.dumps(v)}" for label, v in values.items()))
    return differences


def _charts(runs: list[EvaluationRun], rows: dict[str, Any]) -> dict[str, tuple[list[str], str]]:
    """Each task's chart metrics as its runs recorded them (the first that did); else its first few metrics."""
    recorded: dict[str, tuple[list[str], str]] = {}
    for run in runs:
        for task, chart in run.results.get("charts", {}).items():
            recorded.setdefault(task, (list(chart["metrics"]), chart.get("label", "")))
    fallback: dict[str, list[str]] = {}
    for task, metric in metric_columns(rows):
        if task not in recorded and len(fallback.setdefault(task, [])) < MAX_CHART_METRICS:
            fallback[task].append(metric)
    return {task: recorded.get(task) or (fallback[task], "") for task in dict.fromkeys([*fallback, *recorded])}


def run_units(run: EvaluationRun, model: str, task: str) -> UnitSample | None:
    """The units of `task` that `model` was scored on in `run`, from its saved records; None when the run kept
    no records, or the task declares no resampling or cannot read the run's options."""
    path = run.path.expanduser() / "samples" / model / f"{task}.jsonl"
    try:
        definition = get_task(task)
        options_type = definition.options
        options = options_type(**run.results.get("task_options", {}).get(task, {})) if options_type else None
    except (ValueError, TypeError):
        return None
    if definition.resampling is None or not path.is_file():
        return None
    with path.open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return unit_sample(records, definition.resampling, options) if records else None


def pair_differences(runs: list[EvaluationRun], resamples: int, seed: int) -> dict[str, dict[str, Any]]:
    """`{"later - earlier": {task: {metric: difference entry}}}` for every pair of run/model rows."""
    rows = [(f"{run.label}/{model}", run, model, entry.get("tasks", {}))
            for run in runs for model, entry in run.results.get("models", {}).items()]
    cache: dict[tuple[str, str], UnitSample | None] = {}

    def units(name: str, run: EvaluationRun, model: str, task: str) -> UnitSample | None:
        if (name, task) not in cache:
            cache[(name, task)] = run_units(run, model, task) if resamples else None
        return cache[(name, task)]

    out: dict[str, dict[str, Any]] = {}
    for i, (base_name, base_run, base_model, base_tasks) in enumerate(rows):
        for name, run, model, tasks in rows[i + 1:]:
            shared = [t for t in tasks if t in base_tasks and tasks[t].get("metrics") and base_tasks[t].get("metrics")]
            out[f"{name} - {base_name}"] = {
                task: difference_entry(units(base_name, base_run, base_model, task), units(name, run, model, task),
                                       base_tasks[task]["metrics"], tasks[task]["metrics"], resamples, seed)
                for task in shared}
    return out


def compare_runs(run_dirs: list[str], output_dir: str | Path, allow_mismatch: bool = False,
                 resamples: int = 1000, seed: int = 0) -> dict[str, Path]:
    """Write comparison.md, comparison.png and comparison.json under `output_dir`; returns their paths.

    Every pair of rows is differenced per metric, with a `resamples`-draw paired bootstrap interval
    (seeded by `seed`) where both rows saved per-sample records.

    Raises SettingsMismatch (every difference listed) when a shared task was measured differently,
    unless `allow_mismatch`, which marks that task's columns instead; RecipeError for unusable run dirs.
    """
    runs = load_runs(run_dirs)
    if len(runs) < 2:
        raise RecipeError(f"key 'compare': give at least two evaluate output dirs, got {len(runs)}")
    differences = settings_differences(runs)
    if differences and not allow_mismatch:
        listed = "; ".join(f"{task}: {'; '.join(diffs)}" for task, diffs in differences.items())
        raise SettingsMismatch(f"key 'compare': runs measured shared tasks under different settings ({listed}); "
                               "compare runs made with the same recipe, or allow the mismatch to mark them")
    rows = {f"{run.label}/{model}": {"tasks": entry.get("tasks", {})}
            for run in runs for model, entry in run.results.get("models", {}).items()}
    lines = ["# Comparison of evaluation runs", ""]
    lines += metric_table(rows, first_column="run/model", marks={task: MISMATCH_MARK for task in differences})
    lines.append("")
    for task, diffs in differences.items():
        lines.append(f"-{MISMATCH_MARK.strip()} {task} measured under different settings: " + "; ".join(diffs))
    lines += ["- '-': the run did not run that task; 'n/a': it ran and scored nothing."]
    lines += interval_notes(rows, list(dict.fromkeys(t for run in runs for t in run.results.get("tasks", []))))
    pairs = pair_differences(runs, resamples, seed)
    charts = _charts(runs, rows)
    lines += differences_section(
        {name: {"tasks": {task: {"metrics": dict.fromkeys(entries), "differences": entries}
                          for task, entries in tasks.items()}} for name, tasks in pairs.items()},
        list(dict.fromkeys(t for tasks in pairs.values() for t in tasks)),
        {task: metrics for task, (metrics, _) in charts.items() if metrics},
        "Differences between rows (later row minus earlier row)", first_column="row - row")
    lines += ["", "Runs:", ""]
    for run in runs:
        models = ", ".join(f"{name}={entry.get('path', '?')}" for name, entry in run.results.get("models", {}).items())
        revision = run.results.get("provenance", {}).get("git_revision", "unknown")
        lines.append(f"- `{run.label}`: {run.path} (retrace `{revision}`; models {models})")
    output_dir = Path(output_dir)
    paths = {"markdown": output_dir / "comparison.md", "chart": output_dir / "comparison.png",
             "json": output_dir / "comparison.json"}
    write_text(paths["markdown"], "\n".join(lines) + "\n")
    write_json(paths["json"], json_safe({
        "runs": [{"label": r.label, "path": str(r.path), "tasks": r.results.get("tasks", [])} for r in runs],
        "rows": {name: {task: o["metrics"] for task, o in row["tasks"].items()} for name, row in rows.items()},
        "intervals": {name: {task: o["intervals"] for task, o in row["tasks"].items() if o.get("intervals")}
                      for name, row in rows.items()},
        "differences": pairs, "resamples": resamples, "seed": seed,
        "settings_differences": differences}))
    bar_chart({"models": rows}, charts, paths["chart"])
    return paths
