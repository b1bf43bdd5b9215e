"""The `decontamination` task through the real runner: each model's row reports its own training data's
overlap with the evaluation sets (computed once), a model without named documents reports nothing."""

from __future__ import annotations

import json
import math

import pytest
from decontamination_wheels import load_problems, load_questions, wheel_backed_sets

from retrace.evaluation import EvaluationConfig, run_evaluation, tasks
from retrace.evaluation.decontamination import DecontaminationOptions
from retrace.recipe import Recipe, RecipeError


@pytest.fixture
def registered(monkeypatch):
    """The task registered as the lead's registry line will do it, over the wheel-backed sets."""
    monkeypatch.setattr(tasks, "TASK_MODULES", (*tasks.TASK_MODULES,
                                                "retrace.evaluation.decontamination:DECONTAMINATION"))
    wheel_backed_sets(monkeypatch)


@pytest.fixture
def training_documents(tmp_path):
    """A documents dir: one repository pasted a HumanEval solution and a BFCL question, one is clean."""
    solution = next(p for p in load_problems() if p["task_id"] == "HumanEval/1")["canonical_solution"]
    question = load_questions("parallel")[0]["question"][0][0]["content"]
    docs = tmp_path / "documents"
    docs.mkdir()
    for repo, text in (("copied", f"def separate(s):\n{solution}\n# example: {question}\n"),
                       ("clean", "def clamp(x, lo, hi):\n    return max(lo, min(hi, x))\n")):
        record = {"repo": repo, "segments": [{"text": text, "train": True, "kind": "payload", "path": "a.py"}]}
        (docs / f"{repo}.jsonl").write_text(json.dumps(record) + "\n")
    return docs


def test_each_model_row_reports_its_own_training_data(registered, training_documents, tiny_model_dir, tmp_path):
    config = EvaluationConfig(models=[f"base={tiny_model_dir}", f"trained={tiny_model_dir}"],
                              tasks=["decontamination"], output_dir=str(tmp_path / "eval"))
    options = DecontaminationOptions(decontamination_documents=[f"trained={training_documents}"],
                                     decontamination_sets=["humaneval_solutions", "bfcl_parallel", "bfcl_simple"])
    run_evaluation(config, Recipe(None, {}, []), [options])
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    trained = results["models"]["trained"]["tasks"]["decontamination"]
    details = trained["details"]
    testable = details["sets"]["humaneval_solutions"]["items_testable"]
    assert math.isclose(trained["metrics"]["humaneval_solutions/items_hit_share"], 1 / testable)
    assert math.isclose(trained["metrics"]["bfcl_parallel/items_hit_share"], 1 / 200)
    assert trained["metrics"]["bfcl_simple/items_hit_share"] == 0.0
    assert trained["metrics"]["documents_contaminated"] == 1.0 and details["documents_scanned"] == 2
    assert details["sets"]["bfcl_parallel"]["hit_items"] == ["parallel_0"]
    base = results["models"]["base"]["tasks"]["decontamination"]
    assert set(base["metrics"].values()) == {None}  # NaN: no training documents named for the base model
    samples = [json.loads(line) for line in (tmp_path / "eval/samples/trained/decontamination.jsonl").open()]
    assert {(s["set"], s["item"], s["document"]) for s in samples} == {
        ("humaneval_solutions", "HumanEval/1", "copied"), ("bfcl_parallel", "parallel_0", "copied")}
    table = (tmp_path / "eval" / "results.md").read_text()
    assert "1/2 documents" in table and "no training documents named" in table


def test_bad_keys_are_refused(registered, training_documents, tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="key 'decontamination_sets'"):
        DecontaminationOptions(decontamination_sets=["mbpp"])
    with pytest.raises(ValueError, match="two entries"):
        DecontaminationOptions(decontamination_documents=["a=x", "a=y"])
    config = EvaluationConfig(models=[f"base={tiny_model_dir}"], tasks=["decontamination"],
                              output_dir=str(tmp_path / "eval"))
    task = tasks.get_task("decontamination")
    with pytest.raises(RecipeError, match="required by task decontamination"):
        task.prepare(config, DecontaminationOptions())
    with pytest.raises(RecipeError, match=r"no model named \['trained'\]"):
        task.prepare(config, DecontaminationOptions(decontamination_documents=[f"trained={training_documents}"]))
    with pytest.raises(RecipeError, match="does not exist"):
        task.prepare(config, DecontaminationOptions(decontamination_documents=[str(tmp_path / "nowhere")]))
