"""The registry of evaluation sets: every set the suite ships, read through its loader, failing loudly when a
loader is missing; pasted BFCL questions and essay filler are caught, unrelated text is not."""

from __future__ import annotations

import importlib
import inspect

import pytest
from decontamination_wheels import filler_texts, load_problems, load_questions, wheel_backed_sets

from retrace.data.decontamination import NgramIndex, normalize_tokens
from retrace.evaluation.decontamination import (
    BFCL_CATEGORIES,
    EVALUATION_SETS,
    EvaluationSet,
    EvaluationSetError,
    evaluation_texts,
)


@pytest.fixture(scope="module")
def all_sets() -> dict[str, dict[str, str]]:
    with pytest.MonkeyPatch.context() as patch:
        wheel_backed_sets(patch)
        return evaluation_texts()


def test_the_registry_covers_humaneval_bfcl_and_ruler_filler():
    assert set(EVALUATION_SETS) == {"humaneval_prompts", "humaneval_solutions", "ruler_essays",
                                    *(f"bfcl_{c}" for c in BFCL_CATEGORIES)}


def test_sets_hold_every_item_with_its_id(all_sets):
    assert len(all_sets["humaneval_prompts"]) == len(all_sets["humaneval_solutions"]) == 164
    assert all_sets["humaneval_solutions"]["HumanEval/53"].strip() == "return x + y"
    assert len(all_sets["bfcl_simple"]) == 400 and len(all_sets["bfcl_irrelevance"]) == 240
    assert all_sets["bfcl_simple"]["simple_python_0"].startswith("Find the area of a triangle")
    assert len(all_sets["ruler_essays"]) == 49 and sum(map(len, all_sets["ruler_essays"].values())) > 500_000


def test_a_missing_loader_is_an_error_never_an_empty_set(monkeypatch):
    missing = EvaluationSet("ghost", "a set whose loader is not written", "retrace.evaluation.no_such_module:load",
                            lambda texts: texts)
    with pytest.raises(EvaluationSetError, match="retrace.evaluation.no_such_module:load.*refusing to report it as clean"):
        missing.texts()
    empty = EvaluationSet("empty", "a loader that finds nothing", "decontamination_wheels:load_questions",
                          lambda questions: {}, ("simple",))
    with pytest.raises(EvaluationSetError, match="returned no items"):
        empty.texts()
    with pytest.raises(ValueError, match="unknown evaluation sets"):
        evaluation_texts(["humaneval_tests"])


@pytest.mark.parametrize("name", sorted(EVALUATION_SETS))
def test_the_suites_own_loaders_agree_with_the_wheels(name, all_sets):
    """Once the benchmark modules exist, their loaders must give the same items; until then, a clear error."""
    module = EVALUATION_SETS[name].loader.split(":")[0]
    try:
        importlib.import_module(module)
    except ImportError:
        with pytest.raises(EvaluationSetError, match=module):
            EVALUATION_SETS[name].texts()
        return
    texts = EVALUATION_SETS[name].texts()
    assert sorted(map(normalize_tokens, texts.values())) == sorted(map(normalize_tokens, all_sets[name].values()))


def test_a_pasted_bfcl_question_is_caught(all_sets):
    bfcl = {name: texts for name, texts in all_sets.items() if name.startswith("bfcl_")}
    index = NgramIndex(bfcl)
    [question] = [q["question"][0][0]["content"] for q in load_questions("parallel") if q["id"] == "parallel_0"]
    issue = f"## Bug report\nWhen the user asks: \"{question.lower()}\" the tool call is wrong.\n"
    assert "parallel_0" in index.match("issue", issue).matches["bfcl_parallel"]
    simple = all_sets["bfcl_simple"]["simple_python_0"]  # 17 tokens: five 13-grams, each found
    assert index.match("notes", f"TODO: {simple}").matches["bfcl_simple"]["simple_python_0"] == 5
    assert not index.match("notes", "Find the area of a circle with a radius of 10 units.").contaminated


def test_a_pasted_essay_paragraph_is_caught_and_other_prose_is_not(all_sets):
    index = NgramIndex({"ruler_essays": all_sets["ruler_essays"]})
    paragraph = " ".join(filler_texts()["addiction"].split()[200:260])
    assert set(index.match("blog", f"As someone wrote: {paragraph}").matches["ruler_essays"]) == {"addiction"}
    prose = inspect.getdoc(importlib.import_module("argparse")) + inspect.getdoc(importlib.import_module("json"))
    assert not index.match("docs", prose).contaminated


def test_humaneval_solutions_are_testable_where_long_enough(all_sets):
    index = NgramIndex({"s": all_sets["humaneval_solutions"]})
    lengths = {p["task_id"]: len(normalize_tokens(p["canonical_solution"])) for p in load_problems()}
    testable = {item.item_id for item in index.items if item.ngram_length}
    assert {k for k, n in lengths.items() if n < 8}.isdisjoint(testable)
    assert len(testable) > 120  # most solutions can be checked
