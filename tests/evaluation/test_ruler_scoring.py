"""RULER's pure logic: string-match scoring, the length fitter, aggregation and the recipe keys."""

from __future__ import annotations

import math

import pytest

from retrace.evaluation.ruler import (
    LengthError,
    RulerOptions,
    fit_amount,
    string_match_all,
    string_match_part,
)
from retrace.evaluation.ruler.scoring import clean_prediction
from retrace.evaluation.ruler.task import aggregate
from retrace.recipe import RecipeError, parse_recipe


def test_string_match_all_counts_the_share_of_references_found():
    refs = ["1234567", "7654321", "ABCDE", "fghij"]
    assert string_match_all("1234567, 7654321, abcde and FGHIJ", refs) == 1.0
    assert string_match_all("The numbers are 1234567 and abcde.", refs) == 0.5
    assert string_match_all("I do not know.", refs) == 0.0
    assert string_match_all("123456", ["1234567"]) == 0.0  # a prefix of a reference is not the reference


def test_string_match_part_is_one_when_any_reference_is_found():
    assert string_match_part("Paris, I think", ["paris", "Paris, France"]) == 1.0
    assert string_match_part("London", ["paris", "Paris, France"]) == 0.0
    with pytest.raises(ValueError):
        string_match_part("x", [])
    with pytest.raises(ValueError):
        string_match_all("x", [])


def test_clean_prediction_turns_control_characters_into_newlines():
    assert clean_prediction("  1234567\x00\t 89 \n") == "1234567\n\n 89"


def _words(fixed: int, per_unit: int):
    """A prompt of `fixed` tokens plus `per_unit` tokens per amount unit, counted as words."""
    return (lambda amount: " ".join(["w"] * (fixed + per_unit * amount))), (lambda prompt: len(prompt.split()))


def test_fitter_finds_the_largest_amount_at_or_under_the_target():
    render, count = _words(fixed=30, per_unit=3)
    fit = fit_amount(render, count, target=1000, min_tokens=980, start=1)
    assert (fit.amount, fit.tokens) == (323, 999)
    assert fit.prompt == render(323)
    assert fit_amount(render, count, target=1000, min_tokens=980, start=5000).amount == 323
    assert fit.probes <= 8  # secant steps land next to the answer: few whole-prompt tokenizations
    for target in range(40, 400, 7):  # every target, from below and above, lands on the exact answer
        for start in (1, 10, 10_000):
            assert fit_amount(render, count, target, min_tokens=target - 2, start=start).amount == (target - 30) // 3


def test_fitter_refuses_too_short_targets_coarse_steps_and_exhausted_filler():
    render, count = _words(fixed=300, per_unit=3)
    with pytest.raises(LengthError, match="needs at least 300"):
        fit_amount(render, count, target=299, min_tokens=290)
    render, count = _words(fixed=0, per_unit=50)
    with pytest.raises(LengthError, match="too coarse"):
        fit_amount(render, count, target=1020, min_tokens=1010)
    render, count = _words(fixed=10, per_unit=1)
    with pytest.raises(LengthError, match="ran out"):
        fit_amount(render, count, target=1000, min_tokens=980, limit=100)
    assert fit_amount(render, count, target=1000, min_tokens=100, limit=100).amount == 100


def test_aggregate_means_per_task_per_length_then_over_tasks_then_over_lengths():
    def rows(task, length, scores):
        return [{"task": task, "length": length, "score": s, "prompt_tokens": length - 10 - i,
                 "total_tokens": length - i} for i, s in enumerate(scores)]

    records = rows("vt", 1024, [1.0, 0.4]) + rows("cwe", 1024, [0.0, 0.2]) + rows("vt", 2048, [1.0, 1.0])
    metrics, per_length = aggregate(records, ["vt", "cwe"], [1024, 2048, 4096])
    assert metrics["vt@1024"] == pytest.approx(70.0) and metrics["cwe@1024"] == pytest.approx(10.0)
    assert metrics["mean@1024"] == pytest.approx(40.0) and metrics["mean@2048"] == pytest.approx(100.0)
    assert metrics["mean"] == pytest.approx(70.0)
    assert "cwe@2048" not in metrics and "mean@4096" not in metrics and 4096 not in per_length
    assert per_length[1024]["tasks"]["vt"] == {"score": pytest.approx(70.0), "samples": 2,
                                               "prompt_tokens": [1013, 1014], "total_tokens": [1023, 1024]}
    assert math.isnan(aggregate([], ["vt"], [1024])[0]["mean"])


def test_options_validate_and_name_the_key():
    for bad, key in (({"ruler_tasks": ["niah_single_9"]}, "ruler_tasks"), ({"ruler_tasks": []}, "ruler_tasks"),
                     ({"ruler_lengths": [32]}, "ruler_lengths"), ({"ruler_lengths": [512, 512]}, "ruler_lengths"),
                     ({"ruler_samples": 0}, "ruler_samples"), ({"ruler_max_new_tokens": -1}, "ruler_max_new_tokens"),
                     ({"ruler_prompt_style": "instruct"}, "ruler_prompt_style")):
        with pytest.raises(ValueError, match=key):
            RulerOptions(**bad)


def test_options_parse_as_a_recipe_section(tmp_path):
    recipe = tmp_path / "evaluate.yaml"
    recipe.write_text("ruler_tasks: [niah_single_2, vt]\nruler_lengths: [512, 1024]\nruler_seed: 3\n"
                      "ruler_prompt_style: base\n")
    options = parse_recipe([RulerOptions], ["--config", str(recipe), "--ruler_answer_prefix", "false"])[0]
    assert options.ruler_tasks == ["niah_single_2", "vt"] and options.ruler_lengths == [512, 1024]
    assert options.ruler_seed == 3 and options.ruler_prompt_style == "base" and options.ruler_answer_prefix is False
    defaults = parse_recipe([RulerOptions], [])[0]
    assert defaults.ruler_seed is None and defaults.ruler_max_new_tokens == 0
    recipe.write_text("ruler_tasks: [vt, nope]\n")
    with pytest.raises(RecipeError, match="ruler_tasks"):
        parse_recipe([RulerOptions], ["--config", str(recipe)])
