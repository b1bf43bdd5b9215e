"""Evaluation tasks looked up by name, so a benchmark is one module plus one line in `TASKS`.

A task prepares its data once per run (shared by every model), then runs on each model and returns
flat metrics for the table, details for results.json and per-sample records for inspection (and, when the
task declares a `Resampling`, for the 95% bootstrap intervals of its metrics: see `intervals`). A task's
own recipe keys live in its `options` dataclass (keys prefixed with the task's name, e.g. `ruler_lengths`):
every registered task's options are a section of the evaluate recipe, parsed and checked like the rest.

A request that failed for good (a server's retries spent) is never scored as an empty answer: a task
passes its engine's replies through `reply_texts`, which raises `RequestsFailed`, and the runner records
the task as failed (no metrics, the count of lost requests) and stops the run (see docs/evaluation.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retrace.llm import Reply
from retrace.llm import raise_on_failures as llm_raise_on_failures

if TYPE_CHECKING:
    from retrace.evaluation.config import EvaluationConfig
    from retrace.evaluation.intervals import Resampling
    from retrace.evaluation.models import ModelUnderTest


def raise_on_failures(replies: Sequence[Reply], engine: Any, what: str) -> None:
    """Raise `RequestsFailed`, naming the server and `what` asked, when any of `replies` failed for good."""
    llm_raise_on_failures(replies, engine, what, "a score with lost requests would be wrong: fix the server (or "
                          "raise eval_max_retries / eval_timeout_s) and run again")


def reply_texts(model: ModelUnderTest, replies: Sequence[Reply], task: str) -> list[tuple[str, ...]]:
    """Each reply's texts, in order; raises `RequestsFailed` when any request of the task failed for good."""
    raise_on_failures(replies, model.engine, f"{model.name}: {task}")
    return [reply.texts for reply in replies]


@dataclass
class TaskResult:
    metrics: dict[str, float]                                       # flat, one table column each
    details: dict[str, Any] = field(default_factory=dict)            # counts, breakdowns (results.json)
    records: list[dict[str, Any]] = field(default_factory=list)      # per sample (samples/*.jsonl)


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    prepare: Callable[[EvaluationConfig, Any], Any]                 # (config, options) -> shared data
    run: Callable[[ModelUnderTest, Any, EvaluationConfig, Any], TaskResult]  # (model, prepared, config, options)
    chart_metrics: Callable[[EvaluationConfig, Any], list[str]]  # (config, options) -> the metrics charted
    chart_label: str = ""
    options: type | None = None  # the dataclass of this task's recipe keys
    scores: bool = False         # scores text with the engine (its windows are the recipe's)
    resampling: Resampling | None = None  # how `records` recompute the metrics: 95% bootstrap intervals


# One line per benchmark: "module:attribute" of its Task.
TASK_MODULES = (
    "retrace.evaluation.heldout:HELDOUT_NLL",
    "retrace.evaluation.ruler:RULER",
    "retrace.evaluation.humaneval:HUMANEVAL",
    "retrace.evaluation.bfcl:BFCL",
    "retrace.evaluation.repofix:REPO_FIX",
    "retrace.evaluation.decontamination:DECONTAMINATION",
    "retrace.evaluation.aptbench:APTBENCH",
)


def _registry() -> dict[str, Task]:
    import importlib

    tasks = {}
    for entry in TASK_MODULES:
        module, _, attribute = entry.partition(":")
        task = getattr(importlib.import_module(module), attribute)
        tasks[task.name] = task
    return tasks


def task_option_types() -> list[type]:
    """Every registered task's options dataclass, once each, in registry order (recipe sections)."""
    types: list[type] = []
    for task in _registry().values():
        if task.options is not None and task.options not in types:
            types.append(task.options)
    return types


def task_names() -> list[str]:
    return sorted(_registry())


def get_task(name: str) -> Task:
    """The task called `name`; a ValueError naming the known tasks otherwise."""
    tasks = _registry()
    if name not in tasks:
        raise ValueError(f"key 'tasks': unknown task '{name}'; known tasks: {', '.join(sorted(tasks))}")
    return tasks[name]
