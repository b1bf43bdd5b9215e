"""APTBench's software-engineering subset (issue-fix locate, env-setup error and action) as the `aptbench` task.

The data is read from a local copy (never fetched); prompts are the published 3-shot templates; answers are
read by the published harness's rules, with log-likelihood scoring of the choices where a prompt does not
fit the model's context (reported apart). `APTBENCH` is the task, `AptbenchOptions` its recipe keys.
"""

from retrace.evaluation.aptbench.data import (
    APTBENCH_REPOSITORY,
    APTBENCH_REVISION,
    SUBTASKS,
    AptbenchDataError,
    Subtask,
    resolve_data_dir,
    select_items,
)
from retrace.evaluation.aptbench.prompts import FittedPrompt, Template, cut_middle, fit_shots
from retrace.evaluation.aptbench.scoring import (
    choice_letters,
    choose_by_loglik,
    extract_choice,
    extract_command,
)
from retrace.evaluation.aptbench.task import APTBENCH, AptbenchOptions

__all__ = [
    "APTBENCH", "APTBENCH_REPOSITORY", "APTBENCH_REVISION", "SUBTASKS", "AptbenchDataError", "AptbenchOptions",
    "FittedPrompt", "Subtask", "Template", "choice_letters", "choose_by_loglik", "cut_middle", "extract_choice",
    "extract_command", "fit_shots", "resolve_data_dir", "select_items",
]
