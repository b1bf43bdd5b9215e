"""Read what the replication's stages wrote into the numbers the report shows, each with the file it came from.

Nothing here computes a result anew: loss curves are the Trainer's `trainer_state.json` log history, the
search curve is synthesis' `refine_stats.json`, document lengths are the budget records' measured token
counts (the same records stats.json's figures come from), benchmark numbers and their 95% intervals are
`results.json`'s. The only new arithmetic is the paired difference between two trained arms, done by
`retrace.evaluation`'s own bootstrap on the per-sample records the evaluation saved, and the combination
of per-seed differences by its Student-t interval.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrace.data.layout import BUDGET_RECORDS, DOCUMENTS, artifact_files, artifact_path, split_dir
from retrace.replication.pipeline import ARMS, BASE, Arm, model_name


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def loss_history(model_dir: Path) -> list[tuple[int, float]]:
    """(step, training loss) pairs logged by the Trainer, from `<model_dir>/trainer_state.json`; [] without one."""
    path = model_dir / "trainer_state.json"
    if not path.is_file():
        return []
    return [(int(e["step"]), float(e["loss"])) for e in read_json(path).get("log_history", []) if "loss" in e]


def document_tokens(synth_dir: Path, split: str = "train") -> dict[str, list[int]]:
    """Tokens per written document of each corpus (`documents`, `no_search`, `raw_repos`), from the budget
    records (`budget/<xx>/<name>.json`: the recipe's tokenizer, each segment counted alone)."""
    base = split_dir(synth_dir, split)
    tokens: dict[str, list[int]] = {arm.corpus: [] for arm in ARMS}
    for path in artifact_files(base / BUDGET_RECORDS, ".json"):
        record = read_json(path)
        for part in record.get("parts", []):
            measured = record.get("documents", {}).get(part["name"])
            if not measured or measured.get("over_budget") or not artifact_path(base, DOCUMENTS, part["name"]).is_file():
                continue
            for key in tokens:
                if measured.get(key) is not None:
                    tokens[key].append(int(measured[key]))
    return tokens


def mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


@dataclass(frozen=True)
class MetricValue:
    estimate: float
    interval: tuple[float, float] | None  # the 95% interval results.json holds, None where it holds none


def metric_value(task_entry: dict[str, Any], metric: str) -> MetricValue | None:
    """A metric with its interval: `intervals[metric]`, or a `<metric>_ci` beside it; None if not measured."""
    metrics = task_entry.get("metrics", {})
    if metric not in metrics or metrics[metric] is None:
        return None
    bounds = task_entry.get("intervals", {}).get(metric) or metrics.get(f"{metric}_ci")
    interval = (float(bounds[0]), float(bounds[1])) if bounds and None not in bounds else None
    if interval and not all(math.isfinite(b) for b in interval):
        interval = None
    return MetricValue(float(metrics[metric]), interval)


def headline_metrics(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(task, metric, chart label) for every metric the evaluation charted, in task order."""
    charts = results.get("charts", {})
    return [(task, metric, charts[task].get("label", task)) for task in results.get("tasks", [])
            if task in charts for metric in charts[task].get("metrics", [])]


@dataclass(frozen=True)
class Difference:
    """`later - earlier` on one metric: per seed (each with its paired bootstrap interval) and over seeds."""

    later: str
    earlier: str
    task: str
    metric: str
    per_seed: dict[int, dict[str, Any]]   # seed -> {difference, interval, excludes_zero, paired}
    over_seeds: tuple[float, float, float] | None  # (mean, low, high): Student-t over the per-seed differences


# Every arm against the untrained base, then the arms against each other (the paper's comparisons).
COMPARISONS = ((ARMS[0], None), (ARMS[1], None), (ARMS[2], None),
               (ARMS[1], ARMS[0]), (ARMS[2], ARMS[0]), (ARMS[2], ARMS[1]))


def arm_differences(eval_dir: Path, seeds: list[int]) -> list[Difference]:
    """Paired differences between arms (and from the base), per seed, for every charted metric.

    Per seed, both models were scored on the same held-out files / samples in one run, so the bootstrap
    draws the same units for both (`retrace.evaluation.intervals.difference_entry`); the per-seed
    differences are then combined by a t-interval over seeds (none with one seed).
    """
    from retrace.evaluation.compare import EvaluationRun, run_units
    from retrace.evaluation.intervals import difference_entry

    results = read_json(eval_dir / "results.json")
    run = EvaluationRun("replication", eval_dir, results)
    resamples = int(results.get("settings", {}).get("bootstrap_resamples") or 0)
    seed_of_draw = int(results.get("settings", {}).get("seed") or 0)
    models = results.get("models", {})
    out = []
    for later, earlier in COMPARISONS:
        for task, metric, _ in headline_metrics(results):
            per_seed = {}
            for seed in seeds:
                names = (model_name(later, seed), BASE if earlier is None else model_name(earlier, seed))
                entries = [models.get(n, {}).get("tasks", {}).get(task, {}) for n in names]
                if not all(e.get("metrics", {}).get(metric) is not None for e in entries):
                    continue
                units = [run_units(run, n, task) if resamples else None for n in names]
                found = difference_entry(units[1], units[0], {metric: entries[1]["metrics"][metric]},
                                         {metric: entries[0]["metrics"][metric]}, resamples, seed_of_draw)
                per_seed[seed] = found[metric]
            if per_seed:
                out.append(Difference(later.name, BASE if earlier is None else earlier.name, task, metric, per_seed,
                                      _over_seeds([d["difference"] for d in per_seed.values()])))
    return out


def _over_seeds(values: list[float]) -> tuple[float, float, float] | None:
    from retrace.evaluation.intervals import combine_seeds

    if len(values) < 2:
        return None
    combined = combine_seeds(values)
    return combined.estimate, combined.low, combined.high


def arm_of(model: str) -> Arm | None:
    return next((arm for arm in ARMS if model.rsplit("-s", 1)[0] == arm.name), None)
