"""The `ruler` task: metrics from scripted answers, skips, sample reuse, and one real SmolLM2 run."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from retrace.evaluation.config import EvaluationConfig
from retrace.evaluation.models import ModelUnderTest, parse_model_specs
from retrace.evaluation.ruler import RULER, PromptFormat, RulerOptions, build_samples, load_sources
from retrace.llm import Reply, Usage, embedded_model_dir


class ScriptedEngine:
    """A double for the model's words only: `answer(prompt)` says what it writes; the replies are real `Reply`s."""

    backend = "scripted"

    def __init__(self, tokenizer, answer, max_model_len=None):
        self.name, self.tokenizer, self.max_model_len = "scripted", tokenizer, max_model_len
        self.answer = answer
        self.usage = Usage()
        self.calls = []

    def complete(self, prompts, params, desc="generating"):
        self.calls.append((len(prompts), params))
        return [Reply((self.answer(p),) * params.n, ("stop",) * params.n) for p in prompts]


class FakeModel:
    def __init__(self, engine):
        self.name, self.engine = "scripted", engine


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(embedded_model_dir())


OPTIONS = RulerOptions(ruler_tasks=["niah_single_2", "vt", "fwe", "cwe"], ruler_lengths=[512, 1024], ruler_samples=2)


def test_metrics_follow_the_scripted_answers(tokenizer):
    config = EvaluationConfig()
    samples, _ = build_samples(OPTIONS, load_sources(), PromptFormat.for_tokenizer(tokenizer), config.seed)
    by_prompt = {s.prompt: s for s in samples}

    def answer(prompt):
        sample = by_prompt[prompt]
        if sample.task == "niah_single_2":
            return f" {sample.answers[0]}.\x00"
        if sample.task == "vt":
            return " ".join(sample.answers[:2]) + " and that is all"
        return "I cannot tell."

    engine = ScriptedEngine(tokenizer, answer)
    data = RULER.prepare(config, OPTIONS)
    result = RULER.run(FakeModel(engine), data, config, OPTIONS)
    m = result.metrics
    assert m["niah_single_2@512"] == m["niah_single_2@1024"] == 100.0
    assert m["vt@512"] == pytest.approx(40.0) and m["fwe@1024"] == 0.0 and m["cwe@1024"] == 0.0
    assert "cwe@512" not in m  # too short for cwe's fixed text: skipped and said so
    assert result.details["skipped"] == [{"task": "cwe", "length": 512, "reason": result.details["skipped"][0]["reason"]}]
    assert "needs at least" in result.details["skipped"][0]["reason"]
    assert m["mean@512"] == pytest.approx((100 + 40 + 0) / 3)
    assert m["mean@1024"] == pytest.approx((100 + 40 + 0 + 0) / 4)
    assert m["mean"] == pytest.approx((m["mean@512"] + m["mean@1024"]) / 2)
    charted = RULER.chart_metrics(config, OPTIONS)  # the chart reads as score against length
    assert charted == ["mean@512", "mean@1024", "mean"] and set(charted) <= set(m)
    assert RULER.chart_metrics(config, RulerOptions(ruler_lengths=[1024])) == ["mean"]  # one length: one number
    assert [(n, p.max_new_tokens, p.temperature) for n, p in engine.calls] == [
        (4, 128, 0.0), (4, 30, 0.0), (4, 50, 0.0), (2, 120, 0.0)]  # RULER's budgets, greedy
    assert len(result.records) == 14 and result.details["counts"]["samples_scored"] == 14
    record = next(r for r in result.records if r["task"] == "niah_single_2")
    assert record["score"] == 1.0 and record["prediction"] == f"{record['answers'][0]}."
    assert record["total_tokens"] <= record["length"] and record["prompt_tokens"] == record["total_tokens"] - 128

    # A second model with the same tokenizer reads the very same prompts (built once).
    seen = []
    RULER.run(FakeModel(ScriptedEngine(tokenizer, lambda p: seen.append(p) or "")), data, config, OPTIONS)
    assert sorted(seen) == sorted(by_prompt) and len(data.built) == 1


def test_lengths_beyond_the_model_context_are_skipped_and_counted(tokenizer):
    config = EvaluationConfig()
    options = RulerOptions(ruler_tasks=["niah_single_1"], ruler_lengths=[512, 1024], ruler_samples=1)
    engine = ScriptedEngine(tokenizer, lambda p: "", max_model_len=600)
    result = RULER.run(FakeModel(engine), RULER.prepare(config, options), config, options)
    assert set(result.metrics) == {"niah_single_1@512", "mean@512", "mean"}
    assert result.details["skipped"][0]["length"] == 1024 and "600-token context" in result.details["skipped"][0]["reason"]


def test_smollm2_finds_a_single_needle_end_to_end():
    """The real hf engine on the embedded SmolLM2: the prompt the fitter measured is what the model read."""
    config = EvaluationConfig(models=[str(embedded_model_dir())])
    options = RulerOptions(ruler_tasks=["niah_single_2"], ruler_lengths=[512], ruler_samples=1)
    model = ModelUnderTest(parse_model_specs(config.models)[0], config)
    try:
        result = RULER.run(model, RULER.prepare(config, options), config, options)
        (record,) = result.records
        assert model.engine.backend == "hf" and model.engine.usage.prompt_tokens == record["prompt_tokens"]
        assert 0.98 * 512 <= record["total_tokens"] <= 512
        assert record["score"] == 1.0, record["prediction"]  # greedy, fixed seed: SmolLM2 finds it at 0.5k
        assert result.metrics["mean"] == 100.0
    finally:
        model.close()
