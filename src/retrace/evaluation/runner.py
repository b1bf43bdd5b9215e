"""Run the recipe's tasks on each model in turn and write the reports.

Task data is prepared once and shared; each model is loaded once for all tasks and released before
the next, so peak memory is one model. Everything a result depends on goes into results.json. A task
that declares a `Resampling` gets a 95% bootstrap interval on each metric, and each model a paired
difference from the first model (`differences`), from the per-sample records (see `intervals`).

A task whose requests failed for good (`RequestsFailed`: a server's retries spent) stops the run: the
reports are written with what was done and the failed task's count of lost requests, then the error is
raised again, so a benchmark number is never made from lost requests.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retrace.atomic import write_jsonl
from retrace.evaluation.config import EvaluationConfig
from retrace.evaluation.intervals import UnitSample, differences_from_base, interval_entry, unit_sample
from retrace.evaluation.models import ModelUnderTest, missing_model_paths, parse_model_specs
from retrace.evaluation.report import json_safe, write_reports
from retrace.evaluation.tasks import get_task
from retrace.evaluation.wheel_data import data_checksums
from retrace.llm import RequestsFailed, engine_config
from retrace.llm.config import SAMPLING_KEYS
from retrace.provenance import git_revision, package_versions, save_run_info
from retrace.recipe import Recipe, RecipeError

logger = logging.getLogger(__name__)


def run_evaluation(config: EvaluationConfig, recipe: Recipe, task_options: Sequence[Any] = ()) -> dict[str, Any]:
    """Evaluate every model on every task; write results.json/.md/.png and samples/ under `output_dir`.

    `task_options` are the parsed options sections of the recipe (one instance per task options type);
    a task whose section is absent gets its options' defaults.

    Raises RecipeError (naming the key) for inputs only checkable now: model paths made by earlier
    stages, the held-out set. Raises RequestsFailed, after writing the reports, when a task lost requests.
    """
    import torch

    specs = parse_model_specs(config.models)
    missing = missing_model_paths(specs)
    if missing:
        raise RecipeError(f"key 'models': path does not exist: {', '.join(missing)}")
    tasks = [get_task(name) for name in config.tasks]
    by_type = {type(o): o for o in task_options}
    options = {task.name: (by_type.get(task.options) or task.options()) if task.options else None
               for task in tasks}
    torch.manual_seed(config.seed)
    prepared = {task.name: task.prepare(config, options[task.name]) for task in tasks}

    output_dir = Path(config.output_dir)
    results: dict[str, Any] = {
        "stage": "evaluate",
        "tasks": [task.name for task in tasks],
        "settings": {"contexts": list(config.contexts), "max_context_tokens": config.max_context_tokens,
                     "max_chunk_tokens": config.max_chunk_tokens,
                     "max_target_tokens_per_file": config.max_target_tokens_per_file,
                     "max_files": config.max_files, "seed": config.seed,
                     "bootstrap_resamples": config.bootstrap_resamples, **engine_settings(config)},
        "task_options": {name: dataclasses.asdict(o) for name, o in options.items() if o is not None},
        "models": {},
        "provenance": {"recipe_path": recipe.path, "recipe": recipe.values, "argv": recipe.argv,
                       "git_revision": git_revision(), "packages": package_versions()},
    }
    failure: RequestsFailed | None = None
    units: dict[str, dict[str, UnitSample]] = {}  # {model: {task: its resampling units}}, for the differences
    for spec in specs:
        model = ModelUnderTest(spec, config)
        started = time.perf_counter()
        outcomes = {}
        try:
            for task in tasks:
                task_started = time.perf_counter()
                try:
                    outcome = task.run(model, prepared[task.name], config, options[task.name])
                except RequestsFailed as error:
                    logger.error("%s %s: %s", spec.name, task.name, error)
                    outcomes[task.name] = failed_outcome(error, time.perf_counter() - task_started)
                    results["failed"] = {"model": spec.name, "task": task.name, "failed_requests": error.failed,
                                         "error": str(error)}
                    failure = error
                    break
                outcomes[task.name] = {"metrics": outcome.metrics, "details": outcome.details, "failed_requests": 0,
                                       "seconds": round(time.perf_counter() - task_started, 2)}
                if task.resampling is not None and config.bootstrap_resamples and outcome.records:
                    sample = unit_sample(outcome.records, task.resampling, options[task.name])
                    outcomes[task.name].update(interval_entry(sample, outcome.metrics, config.bootstrap_resamples,
                                                              config.seed))
                    units.setdefault(spec.name, {})[task.name] = sample
                write_jsonl(output_dir / "samples" / spec.name / f"{task.name}.jsonl", json_safe(outcome.records))
                logger.info("%s %s: %s", spec.name, task.name, outcome.metrics)
            results["models"][spec.name] = {**model.describe(), "tasks": outcomes,
                                            "seconds": round(time.perf_counter() - started, 2)}
        finally:
            model.close()
        if failure is not None:
            break

    if config.bootstrap_resamples:
        per_model = {name: {task: o["metrics"] for task, o in entry["tasks"].items()}
                     for name, entry in results["models"].items()}
        results["differences"] = differences_from_base(per_model, units, config.bootstrap_resamples, config.seed)
    # Fetched by the tasks' prepare/run; recorded so every number traces to the exact data bytes.
    results["provenance"]["data_checksums"] = data_checksums()
    charts = {task.name: (task.chart_metrics(config, options[task.name]), task.chart_label) for task in tasks}
    write_reports(output_dir, results, charts)
    save_run_info(output_dir, recipe, "evaluate")
    if failure is not None:
        raise failure
    return results


def engine_settings(config: EvaluationConfig) -> dict[str, Any]:
    """The recipe's `eval_*` engine keys as recorded in results.json (the sampling keys are the tasks')."""
    engine = dataclasses.asdict(engine_config(config, "eval"))
    return {f"eval_{key}": value for key, value in engine.items() if key not in SAMPLING_KEYS}


def failed_outcome(error: RequestsFailed, seconds: float) -> dict[str, Any]:
    """A task that lost requests: no metrics (they would be wrong), the count and the reason instead."""
    return {"metrics": {}, "failed_requests": error.failed, "error": str(error), "seconds": round(seconds, 2),
            "details": {"counts": {"requests": error.requests, "failed_requests": error.failed},
                        "failed": error.reasons, "summary": f"FAILED, no score: {error}"}}
