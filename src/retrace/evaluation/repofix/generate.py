"""Repo-fix tasks: mutants of real repositories that some tests catch and the rest survive.

For each repository the original tests run twice; the tests that pass both times are the baseline
(a test that fails or flips on the original is never used). Candidate sites are shuffled per kind
with the seed and tried in order until each kind has its quota of kept mutants or its attempts run
out. A mutant is kept when at least one baseline test fails on it (FAIL_TO_PASS) and at least one
still passes (PASS_TO_PASS), within ten times the original run's time (at least 2 s, at most
the test time-out); every other candidate is counted by its reason (no test fails, every
test fails, time-out, the mutation itself not applicable ...). The kept set is cached under a key of
everything that decides it (repository contents, kinds, quotas, seed, Python version), so a second
run, or a second model, reads the same tasks instead of regenerating them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from retrace.atomic import write_json
from retrace.evaluation.repofix.mutations import MUTATION_KINDS, mutant_at, site_count
from retrace.evaluation.repofix.repos import Repository
from retrace.evaluation.repofix.testrun import run_tests

logger = logging.getLogger(__name__)
CACHE_FORMAT = 1
MIN_MUTANT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class RepoFixTask:
    """One bug to fix: the mutated file, the tests it breaks and the tests that must keep passing."""

    task_id: str
    repo: str
    kind: str
    path: str
    site: int
    unit: str
    line: int
    description: str            # what the mutation did (records only; the model never sees it)
    mutated_source: str
    fail_to_pass: tuple[str, ...]
    pass_to_pass: tuple[str, ...]
    failure_outputs: dict[str, str] = field(default_factory=dict)   # the F2P tests' output on the mutant

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RepoFixTask:
        return cls(**{**data, "fail_to_pass": tuple(data["fail_to_pass"]),
                      "pass_to_pass": tuple(data["pass_to_pass"])})

    def workspace(self, repo: Repository) -> dict[str, str]:
        """The repository's files with this task's bug in place."""
        return {**repo.files, self.path: self.mutated_source}


@dataclass(frozen=True)
class GenerationSettings:
    kinds: tuple[str, ...] = MUTATION_KINDS
    tasks_per_kind: int = 1         # kept mutants per kind and repository
    max_attempts_per_kind: int = 20  # mutants run through the tests per kind and repository, at most
    seed: int = 0
    test_timeout_s: float = 5.0
    max_output_chars: int = 2000


@dataclass
class TaskSet:
    tasks: list[RepoFixTask]
    counts: dict[str, Any]          # per repository: baseline sizes and candidates by outcome
    cache_path: str = ""
    from_cache: bool = False


def baseline_tests(repo: Repository, settings: GenerationSettings) -> tuple[list[str], dict[str, int]]:
    """Tests that pass on the unmodified repository in two runs; ValueError when none do."""
    first = run_tests(repo, repo.files, timeout_s=settings.test_timeout_s)
    second = run_tests(repo, repo.files, timeout_s=settings.test_timeout_s)
    if first.problems or second.problems:
        raise ValueError(f"{repo.name}: the original tests could not run: {(first.problems or second.problems)[0]}")
    stable = sorted(first.passed & second.passed)
    counts = {"tests_total": len(first.outcomes), "tests_baseline": len(stable),
              "tests_not_passing_on_original": len(set(first.outcomes) - first.passed),
              "tests_flaky_on_original": len(first.passed ^ second.passed),
              "baseline_wall_s": round(first.wall_s, 3)}
    if not stable:
        raise ValueError(f"{repo.name}: no test passes on the original repository")
    return stable, counts


def _candidates(repo: Repository, kind: str, seed: int) -> list[tuple[str, int]]:
    sites = [(path, site) for path in repo.source_paths for site in range(site_count(repo.files[path], kind))]
    random.Random(f"{seed}:{repo.name}:{kind}").shuffle(sites)
    return sites


def generate_for_repository(repo: Repository, settings: GenerationSettings) -> tuple[list[RepoFixTask], dict]:
    """The kept mutants of one repository, in kind order, and the counts of every candidate's outcome."""
    baseline, counts = baseline_tests(repo, settings)
    # A mutant that loops forever would cost the whole limit: give mutants ten times the original's time.
    timeout_s = min(settings.test_timeout_s, max(MIN_MUTANT_TIMEOUT_S, 10 * counts["baseline_wall_s"]))
    counts["mutant_timeout_s"] = round(timeout_s, 3)
    outcomes: dict[str, Counter] = {}
    kept: list[RepoFixTask] = []
    progress = tqdm(settings.kinds, desc=f"repofix mutants: {repo.name}", unit="kind")
    for kind in progress:
        tally = outcomes.setdefault(kind, Counter())
        found = 0
        for path, site in _candidates(repo, kind, settings.seed):
            if found >= settings.tasks_per_kind or tally["tested"] >= settings.max_attempts_per_kind:
                break
            mutant = mutant_at(repo.files[path], path, kind, site, settings.seed)
            if isinstance(mutant, str):
                tally[mutant] += 1
                continue
            tally["tested"] += 1
            run = run_tests(repo, {**repo.files, path: mutant.source}, timeout_s=timeout_s,
                            max_output_chars=settings.max_output_chars)
            if run.problems:
                tally["timed_out" if run.timed_out else "tests_did_not_run"] += 1
                continue
            fail_to_pass = tuple(run.failing_among(baseline))
            pass_to_pass = tuple(t for t in baseline if t not in set(fail_to_pass))
            if not fail_to_pass:
                tally["no_test_fails"] += 1
                continue
            if not pass_to_pass:
                tally["every_test_fails"] += 1
                continue
            tally["kept"] += 1
            found += 1
            kept.append(RepoFixTask(
                task_id=f"{repo.name}:{kind}:{path}:{site}", repo=repo.name, kind=kind, path=path, site=site,
                unit=mutant.unit, line=mutant.line, description=mutant.description, mutated_source=mutant.source,
                fail_to_pass=fail_to_pass, pass_to_pass=pass_to_pass,
                failure_outputs={t: run.outputs.get(t, "(no output: the test is missing from the run)")
                                 for t in fail_to_pass}))
    counts["candidates"] = {kind: dict(tally) for kind, tally in outcomes.items()}
    return kept, counts


def cache_key(repos: list[Repository], settings: GenerationSettings) -> str:
    payload = json.dumps({"format": CACHE_FORMAT, "repos": [r.fingerprint() for r in repos],
                          "settings": dataclasses.asdict(settings), "python": sys.version})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def generate_tasks(repos: list[Repository], settings: GenerationSettings, cache_dir: Path | None) -> TaskSet:
    """Every repository's kept mutants (read from the cache when the same generation was made before)."""
    cache_path = cache_dir / f"tasks-{cache_key(repos, settings)}.json" if cache_dir else None
    if cache_path is not None and cache_path.is_file():
        data = json.loads(cache_path.read_text(encoding="utf-8"))
        logger.info("repofix: %d tasks read from %s", len(data["tasks"]), cache_path)
        return TaskSet([RepoFixTask.from_dict(t) for t in data["tasks"]], data["counts"], str(cache_path), True)
    tasks: list[RepoFixTask] = []
    counts: dict[str, Any] = {}
    for repo in repos:
        kept, counts[repo.name] = generate_for_repository(repo, settings)
        tasks.extend(kept)
    if cache_path is not None:
        write_json(cache_path, {"format": CACHE_FORMAT, "settings": dataclasses.asdict(settings),
                                "counts": counts, "tasks": [t.to_dict() for t in tasks]})
    return TaskSet(tasks, counts, str(cache_path or ""), False)
