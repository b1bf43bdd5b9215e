"""Evaluation tasks looked up by name, so a benchmark is one module plus one line in `TASKS`.

A task prepares its data once per run (shared by every model), then runs on each model and returns
flat metrics for the table, details for results.json and per-sample records for inspection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrace.evaluation.config import EvaluationConfig
    from retrace.evaluation.models import ModelUnderTest


@dataclass
class TaskResult:
    metrics: dict[str, float]                                       # flat, one table column each
    details: dict[str, Any] = field(default_factory=dict)            # counts, breakdowns (results.json)
    records: list[dict[str, Any]] = field(default_factory=list)      # per sample (samples/*.jsonl)


@dataclass(frozen=True)
class Task:
    name: str
    description: str
    prepare: Callable[[EvaluationConfig], Any]
    run: Callable[[ModelUnderTest, Any, EvaluationConfig], TaskResult]
    chart_metrics: Callable[[EvaluationConfig], list[str]]  # the metrics the bar chart compares
    chart_label: str = ""


def _registry() -> dict[str, Task]:
    from retrace.evaluation.heldout import HELDOUT_NLL

    return {task.name: task for task in (HELDOUT_NLL,)}


def task_names() -> list[str]:
    return sorted(_registry())


def get_task(name: str) -> Task:
    """The task called `name`; a ValueError naming the known tasks otherwise."""
    tasks = _registry()
    if name not in tasks:
        raise ValueError(f"key 'tasks': unknown task '{name}'; known tasks: {', '.join(sorted(tasks))}")
    return tasks[name]
