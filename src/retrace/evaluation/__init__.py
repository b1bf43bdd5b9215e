"""The evaluate stage: models scored on named tasks, reported as JSON, a markdown table and a chart.

Knows models only through `llm` (and may use training's model loading); never synthesizes.
"""

from retrace.evaluation.config import CONTEXT_KINDS, EvaluationConfig
from retrace.evaluation.heldout import HELDOUT_NLL, FileTarget, HeldoutSet, build_heldout_set
from retrace.evaluation.models import ModelSpec, ModelUnderTest, parse_model_specs
from retrace.evaluation.runner import run_evaluation
from retrace.evaluation.tasks import Task, TaskResult, get_task, task_names, task_option_types
from retrace.llm import RequestsFailed

__all__ = [
    "CONTEXT_KINDS", "HELDOUT_NLL", "EvaluationConfig", "FileTarget", "HeldoutSet", "ModelSpec", "ModelUnderTest",
    "RequestsFailed", "Task", "TaskResult", "build_heldout_set", "get_task", "parse_model_specs", "run_evaluation",
    "task_names", "task_option_types",
]
