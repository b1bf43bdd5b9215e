"""Generation: batching does not change greedy text, stops cut exactly, n samples, servers over HTTP, and every
engine answers with the same `Reply` and `Usage` objects."""

from __future__ import annotations

import pytest
import torch
from openai_server import FakeChatServer

from retrace.llm import (
    EngineConfig,
    Reply,
    RequestFailed,
    SamplingParams,
    Usage,
    build_engine,
    count_failures,
    cut_at_stop,
)
from retrace.llm.hf_engine import HFEngine
from retrace.llm.openai_engine import OpenAIEngine

PROMPTS = ["def add(a, b):\n", "Once upon a time there", "import os\nimport sys\n\n\nclass Config:\n    "]


@pytest.fixture(scope="module")
def generator(tiny_llama_dir):
    return build_engine(EngineConfig(backend="hf", model=str(tiny_llama_dir), batch_size=3))


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

    assert isinstance(generator, HFEngine) and generator.batch_size == 3
    params = SamplingParams(max_new_tokens=12)
    batched = generator.complete(PROMPTS, params)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    assert len(batched) == len(PROMPTS)
    for prompt, reply in zip(PROMPTS, batched):
        ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            out = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        assert reply.texts == (tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True),)
        assert len(reply.finish_reasons) == 1


def test_stop_strings_cut_and_n_samples(generator):
    free = generator.complete(PROMPTS[:1], SamplingParams(max_new_tokens=16))[0].text
    assert len(free) > 2
    marker = free[1:3]  # a stop string the greedy text is known to contain
    [cut] = generator.complete(PROMPTS[:1], SamplingParams(max_new_tokens=16, stop=(marker,)))
    assert cut.texts == (free[:free.find(marker)],) and marker not in cut.text
    assert cut.finish_reasons == ("stop",)
    one = generator.complete(PROMPTS[:1], SamplingParams(max_new_tokens=4))[0]
    assert generator.complete(PROMPTS[:1], SamplingParams(max_new_tokens=4, n=3))[0] == Reply(
        (one.text,) * 3, one.finish_reasons * 3)


def test_n_samples_are_seeded_and_differ(tmp_path):
    from retrace_testing import build_tiny_llama

    flat = build_engine(EngineConfig(backend="hf", model=str(build_tiny_llama(tmp_path / "flat")), batch_size=2))
    samples = flat.complete(PROMPTS[:2], SamplingParams(max_new_tokens=6, temperature=1.0, n=4, seed=3))
    assert [len(s.texts) for s in samples] == [4, 4] and [len(s.finish_reasons) for s in samples] == [4, 4]
    again = flat.complete(PROMPTS[:2], SamplingParams(max_new_tokens=6, temperature=1.0, n=4, seed=3))
    assert samples == again  # seeded
    assert len(set(samples[0].texts)) > 1  # a random model at temperature 1 does not repeat itself 4 times


def test_default_params_are_the_roles_keys_and_the_recipes_seed(tiny_llama_dir):
    engine = build_engine(EngineConfig(backend="hf", model=str(tiny_llama_dir), max_new_tokens=3, temperature=0.5,
                                       top_p=0.9), seed=7)
    assert engine.default_params == SamplingParams(max_new_tokens=3, temperature=0.5, top_p=0.9, seed=7)
    [reply] = engine.complete(PROMPTS[:1])  # no params: the defaults
    assert engine.usage.completion_tokens <= 3 and reply == engine.complete(PROMPTS[:1])[0]  # seeded


def test_chat_uses_the_template(generator):
    [reply] = generator.chat([[{"role": "user", "content": "hello"}]], SamplingParams(max_new_tokens=5))
    assert isinstance(reply.text, str) and reply.finish_reason in ("stop", "length")
    assert generator.usage.requests >= 1 and generator.usage.completion_tokens > 0


def test_openai_engine_completes_over_real_http(tiny_llama_dir):
    def reply(body):
        return ("completion of " + body["prompt"]) if "prompt" in body else "chat reply\nSTOP here"

    with FakeChatServer(reply=reply) as server:
        gen = OpenAIEngine(EngineConfig(backend="openai", base_url=server.base_url, model="test-model",
                                        tokenizer=str(tiny_llama_dir), concurrency=2, api_key_env=""))
        out = gen.complete(["a", "b"], SamplingParams(max_new_tokens=8, temperature=0.5, n=2, seed=1))
        assert [r.texts for r in out] == [("completion of a",) * 2, ("completion of b",) * 2]
        [chat] = gen.chat([[{"role": "user", "content": "q"}]], SamplingParams(stop=("\nSTOP",)))
        assert chat.texts == ("chat reply",)
        first = server.chat_requests[0]
        assert first["n"] == 2 and first["seed"] == 1 and first["max_tokens"] == 8
        assert gen.usage.requests == 3
        assert len(gen.tokenizer("hello world")["input_ids"]) >= 1


def test_hf_and_openai_engines_answer_with_the_same_objects(generator, tiny_llama_dir):
    """Roles count and test replies without knowing the engine: the same `Reply` and `Usage` types and keys,
    and a request that failed for good is a `Reply` with `error` set (never None) whose text raises."""
    params = SamplingParams(max_new_tokens=4)
    hf_replies = generator.complete(PROMPTS[:2], params)
    with FakeChatServer(reply=lambda body: "served words") as server:
        server.faults.extend(["400"])  # the first request fails for good (no retry on a client error)
        served = OpenAIEngine(EngineConfig(backend="openai", base_url=server.base_url, model=server.model,
                                           concurrency=1, max_retries=1, api_key_env=""), backoff_s=0.01)
        openai_replies = served.complete(PROMPTS[:2], params)
    for replies in (hf_replies, openai_replies):
        assert all(type(r) is Reply for r in replies)
    assert not any(r.failed for r in hf_replies)
    failed, answered = openai_replies
    assert failed.failed and failed.error == "http_400" and failed.texts == () and failed.finish_reason is None
    with pytest.raises(RequestFailed):
        _ = failed.text
    assert answered.text == "served words" and answered.finish_reasons == ("stop",)
    assert count_failures(hf_replies) == {} and count_failures(openai_replies) == {"failed:http_400": 1}
    assert type(generator.usage) is Usage and type(served.usage) is Usage
    hf_counts, openai_counts = generator.usage.to_dict(), served.usage.to_dict()
    assert {"requests", "prompt_tokens", "completion_tokens"} <= set(hf_counts) & set(openai_counts)
    assert all(isinstance(v, int) for v in (*hf_counts.values(), *openai_counts.values()))  # flat
    assert openai_counts["failed:http_400"] == 1 and served.usage.failed == 1 and generator.usage.failed == 0
    assert sum(v for k, v in openai_counts.items() if k.startswith("finish:")) == 1


def test_a_conversation_ending_with_the_assistants_opener_is_continued(generator, monkeypatch):
    """The chat template's continue_final_message: the prompt ends with the opener itself, with no new
    assistant turn after it, and the reply is only what follows the opener."""
    seen = []
    generate = generator._generate
    monkeypatch.setattr(generator, "_generate", lambda encoded, *a: seen.extend(encoded) or generate(encoded, *a))
    user = [{"role": "user", "content": "Why read util.py first?"}]
    opener = "I read util.py first because"
    [plain, prefilled] = generator.chat([user, [*user, {"role": "assistant", "content": opener}]],
                                        SamplingParams(max_new_tokens=4))
    plain_prompt, prefilled_prompt = (generator.tokenizer.decode(ids) for ids in seen)
    assert prefilled_prompt.rstrip().endswith(opener) and opener not in plain_prompt
    assert prefilled_prompt.startswith(plain_prompt.rstrip()[:len(plain_prompt) // 2])
    assert isinstance(prefilled.text, str) and not prefilled.text.startswith(opener)
