"""Run the recipe's tasks on each model in turn and write the reports.

Task data is prepared once and shared; each model is loaded once for all tasks and released before
the next, so peak memory is one model. Everything a result depends on goes into results.json.
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
from retrace.evaluation.models import ModelUnderTest, missing_model_paths, parse_model_specs
from retrace.evaluation.report import json_safe, write_reports
from retrace.evaluation.tasks import get_task
from retrace.evaluation.wheel_data import data_checksums
from retrace.provenance import git_revision, package_versions, save_run_info
from retrace.recipe import Recipe, RecipeError

logger = logging.getLogger(__name__)


def run_evaluation(config: EvaluationConfig, recipe: Recipe, task_options: Sequence[Any] = ()) -> dict[str, Any]:
    """Evaluate every model on every task; write results.json/.md/.png and samples/ under `output_dir`.

    `task_options` are the parsed options sections of the recipe (one instance per task options type);
    a task whose section is absent gets its options' defaults.

    Raises RecipeError (naming the key) for inputs only checkable now: model paths made by earlier
    stages, the held-out set.
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
                     "max_files": config.max_files, "batch_size": config.batch_size, "dtype": config.dtype,
                     "device": config.device, "seed": config.seed, "backend": config.backend,
                     "generation_batch_size": config.generation_batch_size, "max_model_len": config.max_model_len},
        "task_options": {name: dataclasses.asdict(o) for name, o in options.items() if o is not None},
        "models": {},
        "provenance": {"recipe_path": recipe.path, "recipe": recipe.values, "argv": recipe.argv,
                       "git_revision": git_revision(), "packages": package_versions()},
    }
    for spec in specs:
        model = ModelUnderTest(spec, config)
        started = time.perf_counter()
        outcomes = {}
        for task in tasks:
            task_started = time.perf_counter()
            outcome = task.run(model, prepared[task.name], config, options[task.name])
            outcomes[task.name] = {"metrics": outcome.metrics, "details": outcome.details,
                                   "seconds": round(time.perf_counter() - task_started, 2)}
            write_jsonl(output_dir / "samples" / spec.name / f"{task.name}.jsonl", json_safe(outcome.records))
            logger.info("%s %s: %s", spec.name, task.name, outcome.metrics)
        results["models"][spec.name] = {**model.describe(), "tasks": outcomes,
                                        "seconds": round(time.perf_counter() - started, 2)}
        model.close()

    # Fetched by the tasks' prepare/run; recorded so every number traces to the exact data bytes.
    results["provenance"]["data_checksums"] = data_checksums()
    charts = {task.name: (task.chart_metrics(config, options[task.name]), task.chart_label) for task in tasks}
    write_reports(output_dir, results, charts)
    save_run_info(output_dir, recipe, "evaluate")
    return results
