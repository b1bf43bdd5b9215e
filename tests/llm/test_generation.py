"""Benchmark generation: batching does not change greedy text, stops cut exactly, n samples, servers over HTTP."""

from __future__ import annotations

import pytest
import torch
from openai_server import FakeChatServer

from retrace.llm.generation import HFTextGenerator, OpenAITextGenerator, SamplingParams, cut_at_stop

PROMPTS = ["def add(a, b):\n", "Once upon a time there", "import os\nimport sys\n\n\nclass Config:\n    "]


@pytest.fixture(scope="module")
def generator(tiny_llama_dir):
    return HFTextGenerator.from_pretrained(str(tiny_llama_dir), batch_size=3)


def test_cut_at_stop_takes_the_earliest_marker():
    assert cut_at_stop("a\ndef b\nclass c", ("\nclass", "\ndef")) == "a"
    assert cut_at_stop("no markers", ("\nclass",)) == "no markers"
    assert cut_at_stop("x", ()) == "x"


def test_sampling_params_refuse_nonsense():
    with pytest.raises(ValueError):
        SamplingParams(n=0)
    with pytest.raises(ValueError):
        SamplingParams(top_p=0)
    assert SamplingParams(stop=["\n"]).to_dict()["stop"] == ["\n"]


def test_batched_greedy_equals_one_prompt_at_a_time(generator, tiny_llama_dir):
    """Left padding must not change a single token: each batched reply equals the model's own unbatched greedy."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    params = SamplingParams(max_new_tokens=12)
    batched = generator.complete(PROMPTS, params)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    for prompt, [text] in zip(PROMPTS, batched):
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        assert text == tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)


def test_stop_strings_cut_and_n_samples(generator):
    free = generator.complete(PROMPTS[:1], SamplingParams(max_new_tokens=16))[0][0]
    assert len(free) > 2
    marker = free[1:3]  # a stop string the greedy text is known to contain
    [[cut]] = generator.complete(PROMPTS[:1], SamplingParams(max_new_tokens=16, stop=(marker,)))
    assert cut == free[:free.find(marker)] and marker not in cut
    assert generator.complete(PROMPTS[:1], SamplingParams(max_new_tokens=4, n=3))[0] == [
        generator.complete(PROMPTS[:1], SamplingParams(max_new_tokens=4))[0][0]] * 3


def test_n_samples_are_seeded_and_differ(tmp_path):
    from retrace_testing import build_tiny_llama

    flat = HFTextGenerator.from_pretrained(str(build_tiny_llama(tmp_path / "flat")), batch_size=2)
    samples = flat.complete(PROMPTS[:2], SamplingParams(max_new_tokens=6, temperature=1.0, n=4, seed=3))
    assert [len(s) for s in samples] == [4, 4]
    again = flat.complete(PROMPTS[:2], SamplingParams(max_new_tokens=6, temperature=1.0, n=4, seed=3))
    assert samples == again  # seeded
    assert len(set(samples[0])) > 1  # a random model at temperature 1 does not repeat itself 4 times


def test_chat_uses_the_template(generator):
    [[reply]] = generator.chat([[{"role": "user", "content": "hello"}]], SamplingParams(max_new_tokens=5))
    assert isinstance(reply, str)
    assert generator.usage.requests >= 1 and generator.usage.completion_tokens > 0


def test_openai_generator_over_real_http(tiny_llama_dir):
    def reply(body):
        return ("completion of " + body["prompt"]) if "prompt" in body else "chat reply\nSTOP here"

    with FakeChatServer(reply=reply) as server:
        gen = OpenAITextGenerator(server.base_url, "test-model", tokenizer_path=str(tiny_llama_dir), concurrency=2)
        out = gen.complete(["a", "b"], SamplingParams(max_new_tokens=8, temperature=0.5, n=2, seed=1))
        assert out == [["completion of a"] * 2, ["completion of b"] * 2]
        assert gen.chat([[{"role": "user", "content": "q"}]], SamplingParams(stop=("\nSTOP",))) == [["chat reply"]]
        first = server.chat_requests[0]
        assert first["n"] == 2 and first["seed"] == 1 and first["max_tokens"] == 8
        assert gen.usage.requests == 3
        assert len(gen.tokenizer("hello world")["input_ids"]) >= 1
