"""The `repo_fix` evaluation task: recipe keys, prepare (generate or read the tasks), run and score.

Scores, over the selected tasks: `resolved` (share of tasks whose every FAIL_TO_PASS and PASS_TO_PASS
test passes after the model's episode), `fail_to_pass` and `pass_to_pass` (mean share of each task's
FAIL_TO_PASS / PASS_TO_PASS tests passing). A do-nothing agent scores 0 resolved and 0 fail_to_pass
by construction (every task has a failing test), and 1.0 pass_to_pass.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from retrace.evaluation.intervals import Resampling
from retrace.evaluation.repofix.agent import LoopSettings, run_episodes, score_episode, start_episode
from retrace.evaluation.repofix.generate import GenerationSettings, RepoFixTask, generate_tasks
from retrace.evaluation.repofix.mutations import MUTATION_KINDS
from retrace.evaluation.repofix.repos import DEFAULT_REPOS, FRAMEWORKS, Repository, load_repository
from retrace.evaluation.tasks import Task, TaskResult
from retrace.llm import SamplingParams
from retrace.llm.embedded import cache_root

if TYPE_CHECKING:
    from retrace.evaluation.config import EvaluationConfig
    from retrace.evaluation.models import ModelUnderTest
    from retrace.llm.engine import Engine

logger = logging.getLogger(__name__)


@dataclass
class RepoFixOptions:
    """Recipe keys of the `repo_fix` task."""

    repofix_repos: list[str] = field(default_factory=lambda: list(DEFAULT_REPOS), metadata={
        "help": "repositories to mutate: stdlib:NAME (a stdlib module and its Lib/test tests) or dir:PATH"})
    repofix_kinds: list[str] = field(default_factory=lambda: list(MUTATION_KINDS), metadata={
        "help": f"mutation kinds (SWE-smith's): {', '.join(MUTATION_KINDS)}"})
    repofix_tasks_per_kind: int = field(default=1, metadata={
        "help": "kept mutants per kind and repository"})
    repofix_max_attempts_per_kind: int = field(default=20, metadata={
        "help": "mutants run through the tests per kind and repository before giving up on the kind"})
    repofix_max_tasks: int = field(default=0, metadata={
        "help": "evaluate at most N of the generated tasks, dealt round-robin over kinds (0: all)"})
    repofix_test_framework: str = field(default="auto", metadata={
        "help": "auto (stdlib: unittest, dir: pytest), unittest or pytest", "choices": ["auto", *FRAMEWORKS]})
    repofix_max_turns: int = field(default=8, metadata={"help": "model replies per task"})
    repofix_max_new_tokens: int = field(default=1024, metadata={"help": "tokens per reply"})
    repofix_temperature: float = field(default=0.0, metadata={"help": "sampling temperature (0: greedy)"})
    repofix_test_timeout_s: float = field(default=5.0, metadata={"help": "wall-clock limit of one test run"})
    repofix_max_observation_chars: int = field(default=6000, metadata={
        "help": "longest tool result shown to the model (longer ones are clipped, saying so)"})
    repofix_cache_dir: str = field(default="", metadata={
        "help": "where generated task sets are cached (empty: $RETRACE_CACHE/repofix)"})

    def __post_init__(self) -> None:
        if not self.repofix_repos:
            raise ValueError("key 'repofix_repos': give at least one repository")
        for spec in self.repofix_repos:
            kind, _, value = spec.partition(":")
            if kind not in ("stdlib", "dir") or not value:
                raise ValueError(f"key 'repofix_repos': {spec!r} is not stdlib:NAME or dir:PATH")
        unknown = [k for k in self.repofix_kinds if k not in MUTATION_KINDS]
        if unknown or not self.repofix_kinds:
            raise ValueError(f"key 'repofix_kinds': unknown kinds {unknown}; known: {', '.join(MUTATION_KINDS)}")
        if self.repofix_test_framework not in ("auto", *FRAMEWORKS):
            raise ValueError(f"key 'repofix_test_framework': expected auto, unittest or pytest, "
                             f"got {self.repofix_test_framework!r}")
        for key in ("repofix_tasks_per_kind", "repofix_max_attempts_per_kind", "repofix_max_turns",
                    "repofix_max_new_tokens", "repofix_max_observation_chars"):
            if getattr(self, key) < 1:
                raise ValueError(f"key '{key}' must be at least 1, got {getattr(self, key)}")
        if self.repofix_max_tasks < 0:
            raise ValueError(f"key 'repofix_max_tasks' must be 0 (all) or more, got {self.repofix_max_tasks}")
        if self.repofix_temperature < 0:
            raise ValueError(f"key 'repofix_temperature' must be 0 or more, got {self.repofix_temperature}")
        if self.repofix_test_timeout_s <= 0:
            raise ValueError(f"key 'repofix_test_timeout_s' must be positive, got {self.repofix_test_timeout_s}")

    def generation(self, seed: int) -> GenerationSettings:
        return GenerationSettings(kinds=tuple(self.repofix_kinds), tasks_per_kind=self.repofix_tasks_per_kind,
                                  max_attempts_per_kind=self.repofix_max_attempts_per_kind, seed=seed,
                                  test_timeout_s=self.repofix_test_timeout_s)

    def loop(self, seed: int) -> LoopSettings:
        params = SamplingParams(max_new_tokens=self.repofix_max_new_tokens, temperature=self.repofix_temperature,
                                seed=seed)
        return LoopSettings(max_turns=self.repofix_max_turns, max_observation_chars=self.repofix_max_observation_chars,
                            test_timeout_s=self.repofix_test_timeout_s, params=params)


@dataclass
class PreparedRepoFix:
    repos: dict[str, Repository]
    tasks: list[RepoFixTask]          # the selected tasks, in a fixed order
    counts: dict[str, Any]
    cache_path: str
    from_cache: bool


def select_tasks(tasks: list[RepoFixTask], max_tasks: int) -> list[RepoFixTask]:
    """At most `max_tasks`, dealt round-robin over kinds (each kind's tasks in generation order)."""
    if not max_tasks or len(tasks) <= max_tasks:
        return list(tasks)
    by_kind: dict[str, list[RepoFixTask]] = defaultdict(list)
    for task in tasks:
        by_kind[task.kind].append(task)
    chosen: list[RepoFixTask] = []
    while len(chosen) < max_tasks:
        for queue in by_kind.values():
            if queue and len(chosen) < max_tasks:
                chosen.append(queue.pop(0))
    order = {task.task_id: i for i, task in enumerate(tasks)}
    return sorted(chosen, key=lambda t: order[t.task_id])


def prepare_tasks(options: RepoFixOptions, seed: int) -> PreparedRepoFix:
    """Load the repositories and generate (or read from the cache) the task set; shared by every model."""
    repos = [load_repository(spec, options.repofix_test_framework) for spec in options.repofix_repos]
    cache_dir = Path(options.repofix_cache_dir).expanduser() if options.repofix_cache_dir else cache_root() / "repofix"
    task_set = generate_tasks(repos, options.generation(seed), cache_dir)
    if not task_set.tasks:
        raise ValueError(f"repo_fix: no valid mutant in {options.repofix_repos} for kinds {options.repofix_kinds}; "
                         f"candidates by outcome: {task_set.counts}")
    chosen = select_tasks(task_set.tasks, options.repofix_max_tasks)
    counts = {"generated": len(task_set.tasks), "selected": len(chosen),
              "generated_per_kind": dict(Counter(t.kind for t in task_set.tasks)), "repositories": task_set.counts}
    return PreparedRepoFix({r.name: r for r in repos}, chosen, counts, task_set.cache_path, task_set.from_cache)


def evaluate_tasks(engine: Engine, prepared: PreparedRepoFix, options: RepoFixOptions, seed: int,
                   desc: str = "repo_fix") -> TaskResult:
    """Run an episode per task with `engine` and score it."""
    settings = options.loop(seed)
    episodes = [start_episode(task, prepared.repos[task.repo], settings) for task in prepared.tasks]
    run_episodes(engine, episodes, settings, desc)
    records = [score_episode(e, settings) for e in tqdm(episodes, desc=f"{desc}: scoring", unit="task",
                                                        disable=len(episodes) < 4)]
    return summarize(records, prepared, settings)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def repofix_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    """The three shares over tasks, each task weighing the same."""
    return {
        "resolved": _mean([float(r["resolved"]) for r in records]),
        "fail_to_pass": _mean([r["fail_to_pass_passed"] / r["fail_to_pass_total"] for r in records]),
        "pass_to_pass": _mean([r["pass_to_pass_passed"] / r["pass_to_pass_total"] for r in records]),
    }


def summarize(records: list[dict[str, Any]], prepared: PreparedRepoFix, settings: LoopSettings) -> TaskResult:
    metrics = repofix_metrics(records)
    per_kind: dict[str, dict[str, int]] = defaultdict(lambda: {"tasks": 0, "resolved": 0})
    for record in records:
        per_kind[record["kind"]]["tasks"] += 1
        per_kind[record["kind"]]["resolved"] += int(record["resolved"])
    actions: Counter = Counter()
    for record in records:
        actions.update(record["actions"])
    resolved = sum(r["resolved"] for r in records)
    details = {
        "per_kind": dict(per_kind), "actions": dict(actions),
        "end_reasons": dict(Counter(r["end_reason"] for r in records)),
        "mean_turns": _mean([r["turns"] for r in records]),
        "counts": prepared.counts, "task_cache": prepared.cache_path, "from_cache": prepared.from_cache,
        "sampling": settings.params.to_dict(),
        "settings": {"max_turns": settings.max_turns, "max_observation_chars": settings.max_observation_chars,
                     "test_timeout_s": settings.test_timeout_s},
        "summary": (f"{resolved} of {len(records)} repo-fix tasks resolved ({len(per_kind)} mutation kinds, "
                    f"{len(prepared.repos)} repositories, at most {settings.max_turns} turns each)"),
    }
    return TaskResult(metrics=metrics, details=details, records=records)


def prepare(config: EvaluationConfig, options: RepoFixOptions | None) -> PreparedRepoFix:
    return prepare_tasks(options or RepoFixOptions(), config.seed)


def run(model: ModelUnderTest, prepared: PreparedRepoFix, config: EvaluationConfig,
        options: RepoFixOptions | None) -> TaskResult:
    return evaluate_tasks(model.engine, prepared, options or RepoFixOptions(), config.seed,
                          desc=f"{model.name}: repo_fix")


REPO_FIX = Task(
    name="repo_fix",
    description="fix procedurally mutated real repositories in a Read/Edit/Write/RunTests loop, scored by "
                "FAIL_TO_PASS and PASS_TO_PASS tests",
    prepare=prepare,
    run=run,
    chart_metrics=lambda config, options: ["resolved"],
    chart_label="repo-fix tasks resolved (share)",
    options=RepoFixOptions,
    resampling=Resampling(unit=lambda r: r["task_id"], unit_name="tasks",
                          metrics=lambda tasks, options: repofix_metrics([r for task in tasks for r in task])),
)
