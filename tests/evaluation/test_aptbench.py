"""The `aptbench` task: the published answer rules, the published prompts filled from real items, fitting a
prompt to a window, log-likelihood choice with the real SmolLM2, and `evaluate.py --tasks aptbench`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from retrace.evaluation.aptbench import (
    APTBENCH,
    SUBTASKS,
    AptbenchOptions,
    Template,
    choice_letters,
    choose_by_loglik,
    cut_middle,
    extract_choice,
    extract_command,
    fit_shots,
    resolve_data_dir,
)
from retrace.evaluation.aptbench.data import load_items, subtask_files
from retrace.evaluation.aptbench.prompts import encode
from retrace.evaluation.aptbench.task import PromptRoom, plan_item
from retrace.evaluation.config import EvaluationConfig
from retrace.evaluation.models import ModelUnderTest, parse_model_specs
from retrace.llm import Reply, Usage, embedded_model_dir
from retrace.recipe import RecipeError

ROOT = Path(__file__).resolve().parents[2]
DATA = resolve_data_dir()
needs_data = pytest.mark.skipif(not (DATA / "data").is_dir(), reason=(
    f"APTBench data not at {DATA}: set RETRACE_APTBENCH_DATA or put the offline subset in ../shared/data/aptbench"))


@pytest.mark.parametrize(("reply", "expected"), [
    ("B) the second snippet", "B"),
    ("(B) the second snippet", "B"),           # after the prompt's "(" a model may repeat it
    ("B\nbecause", "B"),
    ("**B**)", "B"),                           # asterisks go before the search
    ("**C**\n", None),                         # stripped first: "**C**" has nothing after the letter
    ("  D)\n", "D"),
    ("The answer is A) obviously", "A"),       # the first letter at a word start followed by ")"
    ("AB) no", None),                          # a letter inside a word is not an answer
    ("B", None),                               # nothing after the letter: no answer, as published
    ("c)", "c"),                               # case kept: "c" is not "C"
    ("", None),
])
def test_choice_extraction_follows_the_published_rule(reply, expected):
    assert extract_choice(reply) == expected


@pytest.mark.parametrize(("reply", "expected"), [
    ("cd SVBench\n```", "cd SVBench"),
    ("cd SVBench; ls\n```", "cd SVBench"),     # after a newline, cut at the first ";"
    ("cd SVBench; ls", "cd SVBench; ls"),      # no newline: the harness keeps the reply whole
    ("  pip install -e .  \n", "pip install -e ."),
    ("\n\nconda activate env\npip install x", "conda activate env"),
    ("pip install x ;\nmore", "pip install x"),
])
def test_command_extraction_follows_the_published_rule(reply, expected):
    assert extract_command(reply) == expected


def test_choice_letters_follow_the_options_in_order():
    assert choice_letters("(A) one\n(B) two\n(C) three") == ["A", "B", "C"]
    assert choice_letters("(A) f(C) = 1\n(B) g(x)") == ["A", "B"]  # "(C)" before "(B)" is code, not an option
    assert choice_letters("no options") == []


@needs_data
@pytest.mark.parametrize("name", list(SUBTASKS))
def test_prompt_filling_matches_the_published_harness_on_a_real_item(name):
    subtask = SUBTASKS[name]
    items_path, template_path = subtask_files(DATA, subtask)
    text = template_path.read_text(encoding="utf-8")
    template = Template.parse(text, subtask)
    item = load_items(items_path)[0]
    published = text
    for placeholder, key in subtask.fields:  # the harness: each field stripped, replaced in order
        published = published.replace(placeholder, item[key].strip())
    assert len(template.shots) == 3 and "".join(template.shots) + template.query == text
    filled = template.prompt(template.fill(item, subtask))
    assert filled == published
    assert not any(placeholder in filled for placeholder, _ in subtask.fields)
    assert filled.endswith("is (" if subtask.multiple_choice else "```bash\n")
    assert template.prompt(template.fill(item, subtask), 1) == template.shots[-1] + template.fill(item, subtask)


@needs_data
def test_every_error_item_and_all_but_ten_locate_items_list_their_answer():
    """docs/evaluation.md states these counts (published locate items with fewer options than their answer)."""
    for name, listed in (("error", 147), ("locate", 273)):
        items = load_items(subtask_files(DATA, SUBTASKS[name])[0])
        assert sum(item["answer"] in choice_letters(item["choices"].strip()) for item in items) == listed


def test_missing_data_is_a_recipe_error_naming_the_key(tmp_path):
    with pytest.raises(RecipeError, match="key 'aptbench_data'.*f944ac1ff6b81e659e1c314c3b1cf6433b560b7a"):
        APTBENCH.prepare(EvaluationConfig(tasks=["aptbench"]), AptbenchOptions(aptbench_data=str(tmp_path)))


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(embedded_model_dir())


@needs_data
def test_fitting_keeps_the_item_and_the_latest_shots_or_cuts_the_middle(tokenizer):
    subtask = SUBTASKS["locate"]
    items_path, template_path = subtask_files(DATA, subtask)
    template = Template.parse(template_path.read_text(encoding="utf-8"), subtask)
    items = load_items(items_path)
    query = template.fill(min(items, key=lambda item: len(item["choices"]) + len(item["issue_statement"])), subtask)
    full = template.prompt(query)
    fitted = fit_shots(tokenizer, template, query, 8000)
    assert 0 < fitted.shots < 3 and fitted.cut_tokens == 0 and len(fitted.ids) <= 8000
    assert fitted.text == template.prompt(query, fitted.shots) and full.endswith(fitted.text)
    assert len(encode(tokenizer, template.prompt(query, fitted.shots + 1))) > 8000  # one more shot would not fit
    alone = fit_shots(tokenizer, template, query, 200)
    assert alone.shots == 0 and len(alone.ids) == 200 and alone.cut_tokens == len(encode(tokenizer, query)) - 200
    cut = cut_middle(tokenizer, full, 300, 3)
    assert len(encode(tokenizer, cut.text)) <= 300 and cut.cut_tokens > 0
    assert cut.text.startswith(full[:40]) and cut.text.endswith(full[-40:])


class ScriptedEngine:
    """A double for the model's words only: it answers what `answer(prompt)` says; its context has no limit."""

    backend = "scripted"
    max_model_len = None

    def __init__(self, tokenizer, answer):
        self.name, self.tokenizer, self.answer, self.usage = "scripted", tokenizer, answer, Usage()

    def complete(self, prompts, params, desc="generating"):
        return [Reply((self.answer(p),), ("stop",)) for p in prompts]


class FakeModel:
    def __init__(self, engine):
        self.name, self.engine = "scripted", engine


@needs_data
def test_published_protocol_where_the_prompt_fits_scores_the_extracted_answers(tokenizer):
    config = EvaluationConfig(tasks=["aptbench"])
    options = AptbenchOptions(aptbench_samples=2)
    data = APTBENCH.prepare(config, options)
    answers = {}
    for part in data.subtasks:
        for item, query in zip(part.items, part.queries):
            target = item[part.subtask.answer_key]
            # right on the first item of each subtask, in the shape a base model writes; wrong on the second
            right = item is part.items[0]
            answers[query] = (f"**{target}**) because" if part.subtask.multiple_choice else f"{target}\n```") \
                if right else "Z) no idea\n"
    engine = ScriptedEngine(tokenizer, lambda prompt: next(a for q, a in answers.items() if prompt.endswith(q)))
    result = APTBENCH.run(FakeModel(engine), data, config, options)
    assert result.metrics == {"locate_acc": 50.0, "locate_acc_all": 50.0, "error_acc": 50.0, "error_acc_all": 50.0,
                              "action_acc": 50.0, "action_acc_all": 50.0, "average": 50.0}
    assert result.details["protocol"] == "published" and result.details["counts"]["items_loglik"] == 0
    assert all(r["shots"] == 3 and r["cut_tokens"] == 0 for r in result.records)
    assert {r["predicted"] for r in result.records if not r["correct"]} == {"Z", "Z) no idea"}


@needs_data
def test_loglik_chooses_the_choice_the_engine_scores_highest():
    """The real SmolLM2: the chosen letter is the one whose continuation the same engine, scoring each letter
    apart, finds most likely."""
    config = EvaluationConfig(models=[str(embedded_model_dir())], tasks=["aptbench"])
    options = AptbenchOptions(aptbench_subtasks=["locate"], aptbench_samples=1, aptbench_scoring="loglik",
                              aptbench_context_tokens=300)
    model = ModelUnderTest(parse_model_specs(config.models)[0], config)
    try:
        result = APTBENCH.run(model, APTBENCH.prepare(config, options), config, options)
        (record,) = result.records
        assert record["mode"] == "loglik" and record["prompt_tokens"] <= 300 and record["shots"] == 0
        engine = model.engine
        part = APTBENCH.prepare(config, options).subtasks[0]
        room = PromptRoom.for_subtask(engine, part.subtask, options)
        mode, prompt = plan_item(engine.tokenizer, part, part.queries[0], "loglik", room)
        chosen, nlls = choose_by_loglik(engine, prompt.ids, record["choices"])
        apart = {letter: engine.score_ids([(prompt.ids, engine.encode_target(f"{letter})"))])[0].nll_sum
                 for letter in record["choices"]}
        assert all(abs(nlls[letter] - apart[letter]) < 1e-3 for letter in apart), (nlls, apart)
        assert chosen == min(apart, key=apart.get) == record["predicted"]
        assert result.metrics["locate_acc_loglik"] == 100.0 * (chosen == record["target"])
        assert "locate_acc" not in result.metrics and result.details["protocol"].startswith("deviation: 1 of 1")
    finally:
        model.close()


@needs_data
def test_evaluate_cli_runs_aptbench_on_a_tiny_slice(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "RETRACE_APTBENCH_DATA": str(DATA)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "--tasks", "aptbench", "--models", f"base={embedded_model_dir()}",
         "--aptbench_samples", "2", "--aptbench_context_tokens", "448", "--eval_device", "cpu",
         "--output_dir", str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcome = json.loads((tmp_path / "results.json").read_text())["models"]["base"]["tasks"]["aptbench"]
    details, metrics = outcome["details"], outcome["metrics"]
    assert {f"{name}_acc_all" for name in SUBTASKS} | {"average", "action_acc"} <= set(metrics)
    assert metrics["average"] == pytest.approx(sum(metrics[f"{name}_acc_all"] for name in SUBTASKS) / 3)
    assert details["per_subtask"]["locate"]["items_by_mode"] == {"generate": 0, "loglik": 2}  # 10k-token prompt
    assert details["per_subtask"]["action"]["items_by_mode"] == {"generate": 2, "loglik": 0}
    settings = details["settings"]
    assert settings["revision"] == "f944ac1ff6b81e659e1c314c3b1cf6433b560b7a" and settings["data_dir"] == str(DATA)
    assert settings["generation_context_tokens"] == 448 and len(settings["files_sha256"]) == 6
    records = [json.loads(line) for line in (tmp_path / "samples" / "base" / "aptbench.jsonl").read_text().splitlines()]
    assert len(records) == 6 and all(r["prompt_tokens"] <= 448 for r in records)
    assert {"mode", "prompt_tokens", "predicted", "target", "correct"} <= set(records[0])
    assert "aptbench average" in (tmp_path / "results.md").read_text()
