"""Evaluation on the engine layer: the `eval_*` keys, one engine per model, and a served model's lost requests.

The served model is a real local HTTP server (`FakeChatServer`) speaking the OpenAI protocol; only its words
are scripted. A request that fails for good must never be scored as an empty answer: the task gets no score,
the run stops after writing its reports, and the error names the server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from openai_server import FakeChatServer

from retrace.evaluation import (
    EvaluationConfig,
    ModelSpec,
    ModelUnderTest,
    RequestsFailed,
    get_task,
    task_option_types,
)
from retrace.evaluation.humaneval import HUMANEVAL, HumanEvalOptions, load_problems
from retrace.evaluation.humaneval.task import CODEX_STOP
from retrace.recipe import RecipeError, parse_recipe

ROOT = Path(__file__).resolve().parents[2]
TWO_PROBLEMS = ["HumanEval/53", "HumanEval/2"]


def parse(tmp_path, text: str):
    recipe = tmp_path / "evaluate.yaml"
    recipe.write_text(text)
    return parse_recipe([EvaluationConfig, *task_option_types()], ["--config", str(recipe)])


@pytest.mark.parametrize(("line", "key"), [
    ("eval_temperature: 0.5", "eval_temperature"),        # the tasks set their own sampling
    ("eval_max_new_tokens: 64", "eval_max_new_tokens"),
    ("eval_backend: structural", "eval_backend"),         # writes from facts: cannot answer nor score
    ("eval_backend: tgi", "eval_backend"),
    ("eval_batch_size: 0", "eval_batch_size"),
    ("eval_model: served-id", "eval_model"),              # hf loads each of `models`
    ("eval_backend: openai\neval_model: served-id\nmodels: [a=x, b=y]", "eval_model"),  # one id, two models
])
def test_engine_keys_evaluation_cannot_use_are_refused_at_parse_time(tmp_path, line, key):
    with pytest.raises(RecipeError, match=f"^key '{key}'") as caught:
        parse(tmp_path, f"tasks: [humaneval]\n{line}\n")
    message = str(caught.value)
    assert "\n" not in message and message.endswith(f"(recipe {tmp_path / 'evaluate.yaml'})")


def test_a_served_model_needs_no_engine_key_beyond_the_server(tmp_path):
    """Empty eval_model and eval_tokenizer mean each model's path: its served id and its tokenizer here."""
    config, *_ = parse(tmp_path, "models: [ours=runs/ours/model]\neval_backend: openai\n"
                                 "eval_base_url: http://127.0.0.1:9/v1\n")
    engine = ModelUnderTest(ModelSpec("ours", "runs/ours/model"), config).engine_config()
    assert (engine.backend, engine.model, engine.tokenizer) == ("openai", "runs/ours/model", "runs/ours/model")
    assert engine.base_url == "http://127.0.0.1:9/v1" and engine.max_new_tokens == 96  # sampling keys untouched
    home = ModelUnderTest(ModelSpec("base", "~/m"), EvaluationConfig(models=["base=~/m"])).engine_config()
    assert (home.backend, home.model, home.tokenizer) == ("hf", os.path.expanduser("~/m"), os.path.expanduser("~/m"))


def test_scoring_windows_must_fit_only_when_a_task_scores(tiny_model_dir):
    spec = ModelSpec("tiny", str(tiny_model_dir))  # 1,024 positions; the default windows are 1,024 + 1,024
    with pytest.raises(RecipeError, match="key 'max_context_tokens': tiny: .*exceeds the model's 1024 positions"):
        _ = ModelUnderTest(spec, EvaluationConfig(models=[str(tiny_model_dir)], eval_device="cpu")).engine
    model = ModelUnderTest(spec, EvaluationConfig(models=[str(tiny_model_dir)], tasks=["humaneval"],
                                                  eval_device="cpu"))
    try:
        assert model.engine.max_context_tokens + model.engine.max_chunk_tokens <= 1024
    finally:
        model.close()


def served(server: FakeChatServer, model_dir, **keys) -> EvaluationConfig:
    """A recipe evaluating the tiny model (its tokenizer here) as the server's `test-model`."""
    return EvaluationConfig(models=[f"served={model_dir}"], eval_backend="openai", eval_base_url=server.base_url,
                            eval_model=server.model, eval_max_retries=0, eval_timeout_s=10, **keys)


def test_humaneval_through_a_server_is_scored_on_the_texts_cut_at_its_stop_strings(tiny_model_dir):
    by_prompt = {p["prompt"]: p for p in load_problems()}

    def reply(body):
        return by_prompt[body["prompt"]]["canonical_solution"] + "\ndef helper_the_stop_cuts():\n    return 0\n"

    options = HumanEvalOptions(humaneval_task_ids=TWO_PROBLEMS)
    with FakeChatServer(reply) as server:
        config = served(server, tiny_model_dir, tasks=["humaneval"])
        model = ModelUnderTest(config_spec(config), config)
        try:
            result = HUMANEVAL.run(model, HUMANEVAL.prepare(config, options), config, options)
            described = model.describe()
        finally:
            model.close()
    assert result.metrics == {"pass@1": 1.0}
    assert all("helper_the_stop_cuts" not in r["completion"] for r in result.records)
    assert sorted(b["prompt"] for b in server.chat_requests) == sorted(by_prompt_id(by_prompt, t) for t in TWO_PROBLEMS)
    assert all(b["model"] == "test-model" and b["stop"] == CODEX_STOP and b["temperature"] == 0.0
               for b in server.chat_requests)
    engine = described["engine"]
    assert engine["backend"] == "openai" and engine["base_url"] == server.base_url
    assert engine["usage"]["requests"] == 2 and engine["usage"]["completion_tokens"] == server.completion_tokens


def config_spec(config: EvaluationConfig) -> ModelSpec:
    name, _, path = config.models[0].partition("=")
    return ModelSpec(name, path)


def by_prompt_id(by_prompt: dict, task_id: str) -> str:
    return next(prompt for prompt, problem in by_prompt.items() if problem["task_id"] == task_id)


def test_heldout_scoring_that_loses_requests_fails_naming_the_server(tiny_model_dir, heldout_dir):
    with FakeChatServer() as server:
        server.faults.extend(["500"] * 500)
        config = served(server, tiny_model_dir, heldout=str(heldout_dir), max_context_tokens=64,
                        max_chunk_tokens=32, max_target_tokens_per_file=40, max_files=1)
        task = get_task("heldout_nll")
        model = ModelUnderTest(config_spec(config), config)
        try:
            with pytest.raises(RequestsFailed, match=f"served: heldout_nll scoring on {re.escape(server.base_url)} "
                                                     "failed: .*failed after retries \\(http_500\\)") as caught:
                task.run(model, task.prepare(config), config)
            assert caught.value.failed >= 1 and caught.value.failed == model.engine.usage.to_dict()["failed:http_500"]
        finally:
            model.close()


def test_a_task_that_loses_requests_has_no_score_and_stops_the_run(tmp_path, tiny_model_dir):
    """One of HumanEval's two requests fails for good (HTTP 500, no retries): not scored as an empty completion
    (which would read as pass@1 0.5), but reported, and evaluate.py exits 1 with one line naming the server."""
    by_prompt = {p["prompt"]: p for p in load_problems()}

    def solve(body):
        return by_prompt[body["prompt"]]["canonical_solution"]
    # Both models are the tiny checkpoint, served under its path; the second must never be asked.
    with FakeChatServer(solve, model=str(tiny_model_dir)) as server:
        server.faults.append("500")
        recipe = tmp_path / "evaluate.yaml"
        recipe.write_text(f"models: [served={tiny_model_dir}, second={tiny_model_dir}]\ntasks: [humaneval]\n"
                          f"humaneval_task_ids: {json.dumps(TWO_PROBLEMS)}\neval_backend: openai\n"
                          f"eval_base_url: {server.base_url}\neval_max_retries: 0\n")
        out = tmp_path / "eval"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        proc = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "--config", str(recipe), "--output_dir",
                               str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: served: humaneval: 1 of 2 requests to {server.base_url} failed after retries "
                           "(http_500: 1)"), last
    assert len(server.chat_requests) == 2  # nothing retried, nothing asked of the second model
    results = json.loads((out / "results.json").read_text())
    assert results["failed"]["model"] == "served" and results["failed"]["task"] == "humaneval"
    assert results["failed"]["failed_requests"] == 1 and server.base_url in results["failed"]["error"]
    assert list(results["models"]) == ["served"]
    outcome = results["models"]["served"]["tasks"]["humaneval"]
    assert outcome["metrics"] == {} and outcome["failed_requests"] == 1
    assert outcome["details"]["counts"] == {"requests": 2, "failed_requests": 1}
    assert results["models"]["served"]["engine"]["usage"]["failed:http_500"] == 1
    table = (out / "results.md").read_text()
    assert table.startswith("**Run stopped: humaneval lost 1 request(s) for served")
    assert "- humaneval: FAILED, no score: served: humaneval: 1 of 2 requests" in table
    assert not (out / "samples" / "served" / "humaneval.jsonl").exists()
