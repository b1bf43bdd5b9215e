"""The `bfcl` task: options, the evenly spread slice, BFCL's prompt, metrics from scripted replies, one real run."""

from __future__ import annotations

import json
import math

import pytest
from transformers import AutoTokenizer

from retrace.evaluation.bfcl import (
    BFCL,
    CATEGORIES,
    BFCLOptions,
    aggregate,
    conversation,
    load_category,
    oracle_reply,
    score_reply,
    spread_sample,
)
from retrace.evaluation.bfcl.prompting import system_template
from retrace.evaluation.config import EvaluationConfig
from retrace.evaluation.models import ModelUnderTest, parse_model_specs
from retrace.llm import Reply, Usage, embedded_model_dir


@pytest.mark.parametrize("bad, key", [
    ({"bfcl_categories": ["simple", "live_simple"]}, "bfcl_categories"),
    ({"bfcl_categories": []}, "bfcl_categories"),
    ({"bfcl_categories": ["simple", "simple"]}, "bfcl_categories"),
    ({"bfcl_samples": -1}, "bfcl_samples"),
    ({"bfcl_max_new_tokens": 0}, "bfcl_max_new_tokens"),
])
def test_bad_options_name_their_key(bad, key):
    with pytest.raises(ValueError, match=f"key '{key}'"):
        BFCLOptions(**bad)


def test_the_slice_is_spread_evenly_and_seeded():
    questions = load_category("simple")
    picked = spread_sample(questions, 8, seed=3, category="simple")
    assert [q.index // 50 for q in picked] == list(range(8))  # one from each eighth of the file
    assert picked == spread_sample(questions, 8, seed=3, category="simple")
    assert picked != spread_sample(questions, 8, seed=4, category="simple")
    assert spread_sample(questions, 0, 3, "simple") == questions == spread_sample(questions, 999, 3, "simple")


def test_prepare_takes_the_run_seed_unless_the_task_has_one():
    options = BFCLOptions(bfcl_categories=["parallel", "irrelevance"], bfcl_samples=3)
    data = BFCL.prepare(EvaluationConfig(seed=5), options)
    assert [q.category for q in data.questions] == ["parallel"] * 3 + ["irrelevance"] * 3
    assert data.available == {"parallel": 200, "irrelevance": 240} and data.seed == 5
    seeded = BFCL.prepare(EvaluationConfig(seed=5), BFCLOptions(bfcl_samples=3, bfcl_seed=11))
    assert seeded.seed == 11 and len(seeded.questions) == 3 * len(CATEGORIES)


def test_the_conversation_is_bfcl_prompting_mode():
    question = load_category("multiple")[0]
    system, user = conversation(question)
    assert system["role"] == "system" and user == question.question[0][0]
    assert system["content"].startswith("You are an expert in composing functions.You are given a question")
    assert "[func_name1(params_name1=params_value1, params_name2=params_value2...), func_name2(params)]" in \
        system["content"]
    docs = json.loads(system["content"].split("that you can invoke.\n", 1)[1])
    assert [d["name"] for d in docs] == [f["name"] for f in question.functions]
    assert all(d["description"].endswith(" Note that the provided function is in Python 3 syntax.") for d in docs)
    assert "{functions}" in system_template() and question.functions[0]["description"].endswith(".")  # not mutated


def test_averages_follow_bfcl():
    rows = ([{"category": "simple", "correct": c, "decode_error": None, "error_type": ""} for c in (1, 1, 1, 0)]
            + [{"category": "parallel", "correct": c, "decode_error": None, "error_type": "x"} for c in (0, 1)]
            + [{"category": "irrelevance", "correct": True, "decode_error": "bad", "error_type": ""}])
    metrics, per_category = aggregate(rows, ["simple", "multiple", "parallel", "irrelevance"])
    assert metrics["simple"] == 75.0 and metrics["parallel"] == 50.0 and metrics["irrelevance"] == 100.0
    assert "multiple" not in metrics and "multiple" not in per_category
    assert metrics["non_live_ast"] == pytest.approx(62.5)            # unweighted over AST categories run
    assert metrics["overall"] == pytest.approx(225 / 3)               # unweighted over all categories run
    assert metrics["pooled"] == pytest.approx(100 * 5 / 7)
    assert per_category["parallel"]["error_types"] == {"x": 1} and per_category["irrelevance"]["decode_failures"] == 1
    empty, _ = aggregate([], ["simple"])
    assert math.isnan(empty["overall"])


class ScriptedEngine:
    """A double for the model's words only: `answer(question_text)` says what it replies, as real `Reply`s."""

    backend = "scripted"

    def __init__(self, tokenizer, answer, max_model_len=None):
        self.name, self.tokenizer, self.max_model_len = "scripted", tokenizer, max_model_len
        self.answer, self.usage, self.calls = answer, Usage(), []

    def chat(self, conversations, params, desc="generating"):
        self.calls.append((len(conversations), params))
        return [Reply((self.answer(c[-1]["content"]),) * params.n, ("stop",) * params.n) for c in conversations]


class FakeModel:
    def __init__(self, engine):
        self.name, self.engine = "scripted", engine


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(embedded_model_dir())


def test_metrics_follow_the_scripted_replies(tokenizer):
    config, options = EvaluationConfig(), BFCLOptions(bfcl_samples=4)
    data = BFCL.prepare(config, options)
    by_text = {q.question[0][-1]["content"]: q for q in data.questions}
    seen = {c: 0 for c in CATEGORIES}

    def answer(text):
        question = by_text[text]
        seen[question.category] += 1
        rank = seen[question.category]
        if question.category == "irrelevance":
            return "[]" if rank <= 3 else f"[{question.functions[0]['name']}()]"
        right = {"simple": 4, "multiple": 2, "parallel": 0, "parallel_multiple": 1}[question.category]
        return oracle_reply(question, reverse=True) if rank <= right else "I would call the function."

    engine = ScriptedEngine(tokenizer, answer)
    result = BFCL.run(FakeModel(engine), data, config, options)
    m = result.metrics
    assert (m["simple"], m["multiple"], m["parallel"], m["parallel_multiple"], m["irrelevance"]) == \
        (100.0, 50.0, 0.0, 25.0, 75.0)
    assert m["non_live_ast"] == pytest.approx(43.75) and m["overall"] == pytest.approx(50.0)
    (count, params), = engine.calls                          # one batched, greedy request
    assert count == 20 and params.temperature == 0.0 and params.max_new_tokens == options.bfcl_max_new_tokens
    assert result.details["counts"] == {"questions": 20, "correct": 10, "decode_failures": 9, "skipped": 0}
    assert result.details["per_category"]["parallel"]["error_types"] == {"ast_decoder:decoder_failed": 4}
    record = next(r for r in result.records if r["category"] == "parallel_multiple" and r["correct"])
    assert record["decoded_calls"] and record["possible_answer"] and record["prompt_tokens"] > 300
    json.dumps(result.records)
    assert "overall 50.0%" in result.details["summary"]


def test_prompts_beyond_the_context_are_skipped_and_counted(tokenizer):
    config = EvaluationConfig()
    options = BFCLOptions(bfcl_categories=["multiple"], bfcl_samples=10, bfcl_max_new_tokens=64)
    data = BFCL.prepare(config, options)
    lengths = sorted(len(tokenizer.apply_chat_template(conversation(q), add_generation_prompt=True,
                                                       tokenize=True, return_dict=True)["input_ids"])
                     for q in data.questions)
    limit = lengths[4] + 64  # the five shortest fit
    result = BFCL.run(FakeModel(ScriptedEngine(tokenizer, lambda text: "[]", max_model_len=limit)),
                      data, config, options)
    assert result.details["counts"]["questions"] == 5 and result.details["counts"]["skipped"] == 5
    assert all(r["prompt_tokens"] + 64 <= limit for r in result.records)


def test_one_real_run_on_smollm2():
    """The real hf engine on the embedded SmolLM2: two questions, the reply scored as recorded."""
    config = EvaluationConfig(models=[str(embedded_model_dir())])
    options = BFCLOptions(bfcl_categories=["simple", "irrelevance"], bfcl_samples=1, bfcl_max_new_tokens=16)
    model = ModelUnderTest(parse_model_specs(config.models)[0], config)
    try:
        data = BFCL.prepare(config, options)
        result = BFCL.run(model, data, config, options)
        assert [r["category"] for r in result.records] == ["simple", "irrelevance"]
        assert model.engine.usage.prompt_tokens == sum(r["prompt_tokens"] for r in result.records)
        assert 0 < model.engine.usage.completion_tokens <= 2 * 16
        for question, record in zip(data.questions, result.records):
            assert record["output"].strip()
            assert score_reply(question, record["output"])["correct"] == record["correct"]
        assert set(result.metrics) == {"simple", "irrelevance", "non_live_ast", "overall", "pooled"}
    finally:
        model.close()
