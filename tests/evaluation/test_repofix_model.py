"""One repo-fix task end to end with a real model: SmolLM2 through the hf engine, the sandbox, scoring.

SmolLM2-135M is not expected to fix anything; the test proves the whole path runs cleanly with a real
chat template and tokenizer and yields a well-formed result.
"""

from __future__ import annotations

import math

from retrace.evaluation.config import EvaluationConfig
from retrace.evaluation.models import ModelUnderTest, parse_model_specs
from retrace.evaluation.repofix import REPO_FIX, RepoFixOptions
from retrace.llm import embedded_model_dir


def test_smollm2_runs_one_task_cleanly(tmp_path):
    config = EvaluationConfig(models=[str(embedded_model_dir())], output_dir=str(tmp_path / "eval"))
    options = RepoFixOptions(repofix_repos=["stdlib:textwrap"], repofix_kinds=["flip_operator"],
                             repofix_tasks_per_kind=1, repofix_max_tasks=1, repofix_max_turns=2,
                             repofix_max_new_tokens=16, repofix_max_observation_chars=1500, repofix_cache_dir=str(tmp_path / "cache"))
    prepared = REPO_FIX.prepare(config, options)
    assert len(prepared.tasks) == 1
    model = ModelUnderTest(parse_model_specs(config.models)[0], config)
    try:
        result = REPO_FIX.run(model, prepared, config, options)
        usage = model.engine.usage
    finally:
        model.close()
    assert set(result.metrics) == {"resolved", "fail_to_pass", "pass_to_pass"}
    assert all(0.0 <= value <= 1.0 and not math.isnan(value) for value in result.metrics.values())
    record = result.records[0]
    assert 1 <= record["turns"] <= 2 and record["end_reason"] in ("done", "max_turns", "context_full")
    assert len(record["replies"]) == record["turns"] and usage.completion_tokens > 0
    assert sum(record["actions"].values()) == record["turns"]
    assert result.details["summary"].startswith(f"{int(result.metrics['resolved'])} of 1 repo-fix tasks resolved")
