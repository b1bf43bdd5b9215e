"""One test run of a workspace in the sandbox: per-test outcomes, or why there are none.

The workspace's files and `runner_main.py` go into a fresh `python -I` sandbox; the runner prints one
results line behind a random nonce. A run that times out, crashes or prints no results line has no
outcomes, so every test counts as not passing, and `problems` says why.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources

from retrace.evaluation.repofix.repos import Repository

RUNNER_FILE = "__repofix_runner__.py"
PASSING = "passed"


@dataclass
class TestRun:
    """Outcomes by test id ("passed", "failed", "error", "skipped"), failure texts, and what went wrong."""

    outcomes: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    timed_out: bool = False
    wall_s: float = 0.0

    @property
    def passed(self) -> set[str]:
        return {test for test, outcome in self.outcomes.items() if outcome == PASSING}

    def failing_among(self, tests: list[str] | tuple[str, ...]) -> list[str]:
        """The given tests that did not pass here (missing from the run counts as not passing)."""
        passed = self.passed
        return [test for test in tests if test not in passed]


def runner_source() -> str:
    return resources.files("retrace.evaluation.repofix").joinpath("runner_main.py").read_text(encoding="utf-8")


def run_tests(repo: Repository, files: Mapping[str, str], *, timeout_s: float = 10.0,
              max_output_chars: int = 2000) -> TestRun:
    """Run the repository's tests against `files` (the workspace), the repository's own tests restored."""
    from retrace.evaluation.sandbox import SandboxLimits, run_python

    workspace = {**files, **{path: repo.files[path] for path in repo.test_paths}, RUNNER_FILE: runner_source()}
    nonce = f"@@repofix-results-{secrets.token_hex(8)}@@"
    settings = {"nonce": nonce, "framework": repo.framework, "targets": list(repo.targets),
                "own_modules": list(repo.own_modules), "max_output_chars": max_output_chars}
    limits = SandboxLimits(timeout_s=timeout_s, cpu_s=max(1, int(timeout_s)))
    result = run_python(argv=[RUNNER_FILE], files=workspace, sys_path=(".",), limits=limits,
                        stdin=json.dumps(settings))
    run = TestRun(timed_out=result.timed_out, wall_s=result.wall_s)
    line = next((line for line in reversed(result.stdout.splitlines()) if line.startswith(nonce)), None)
    if line is None:
        why = (f"timed out after {timeout_s:g} s" if result.timed_out else
               f"the test process exited with code {result.returncode} ({result.reason or 'no results'})")
        run.problems.append(f"no test results: {why}\n{result.stderr[-max_output_chars:]}".rstrip())
        return run
    report = json.loads(line[len(nonce):])
    for test, entry in report["tests"].items():
        run.outcomes[test] = entry["outcome"]
        if entry["output"]:
            run.outputs[test] = entry["output"]
    run.problems.extend(report["problems"])
    return run
