"""The request cache: a retried batch is answered from replies already paid for, through engines from
`EnginePool(request_cache=...)`, against the real local OpenAI-compatible server (tests/openai_server.py), which
records every request it receives, and the embedded SmolLM2 in this process."""

from __future__ import annotations

import dataclasses
import logging
import pickle
import shutil
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
from openai_server import FakeChatServer

from retrace.llm import EngineConfig, EnginePool, Reply, RequestCache, SamplingParams, request_key
from retrace.llm.cache import CachedEngine, model_identity


def echo(body: dict) -> str:
    return "echo " + (body["messages"][-1]["content"] if "messages" in body else body["prompt"])


def conversation(text: str) -> list[dict]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


def served(server: FakeChatServer, directory, **keys) -> CachedEngine:
    """A policy engine on `server` from a fresh pool caching in `directory` (a new worker, as after a crash)."""
    keys = {"base_url": server.base_url, "model": server.model, "api_key_env": "", "timeout_s": 2.0,
            "max_retries": 0, "ready_timeout_s": 5.0, "concurrency": 2, **keys}
    config = EngineConfig(backend="openai", **keys)
    engine = EnginePool(seed=1, request_cache=directory).get(config, role="policy")
    assert isinstance(engine, CachedEngine)
    return engine


def asked(server: FakeChatServer) -> list[str]:
    """The user turns of the chat requests the server received, sorted (they arrive concurrently)."""
    return sorted(body["messages"][-1]["content"] for body in server.chat_requests)


QUESTIONS = [conversation(f"question {i}") for i in range(6)]


def test_a_retried_batch_costs_no_request_and_gets_the_same_replies(tmp_path):
    cache = tmp_path / "cache"
    with FakeChatServer(reply=echo) as server:
        first = served(server, cache).chat(QUESTIONS)
        assert [r.text for r in first] == [f"echo question {i}" for i in range(6)]
        polls = server.model_polls
        again = served(server, cache)
        replies = again.chat(QUESTIONS)
        assert len(server.chat_requests) == 6 and server.model_polls == polls  # not even asked whether it is up
    assert replies == first
    assert again.usage.to_dict() == {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cache:hit": 6}
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_a_fully_cached_batch_needs_no_server_at_all(tmp_path):
    with FakeChatServer(reply=echo) as server:
        first = served(server, tmp_path).chat(QUESTIONS[:2])
    engine = served(server, tmp_path)  # the server is gone: its address refuses connections
    assert engine.chat(QUESTIONS[:2]) == first


def test_only_the_misses_are_sent_and_replies_come_back_in_input_order(tmp_path):
    with FakeChatServer(reply=echo) as server:
        served(server, tmp_path).chat(QUESTIONS[0::2])
        server.chat_requests.clear()
        engine = served(server, tmp_path)
        replies = engine.chat(QUESTIONS)
        assert asked(server) == ["question 1", "question 3", "question 5"]
    assert [r.text for r in replies] == [f"echo question {i}" for i in range(6)]
    assert engine.usage.requests == 3 and engine.usage.counts["cache:hit"] == 3


def test_failed_replies_are_not_kept_and_a_later_run_fetches_them(tmp_path):
    with FakeChatServer(reply=echo) as server:
        engine = served(server, tmp_path)
        engine.chat(QUESTIONS[:1])
        server.faults.extend(["500", "500"])  # the server breaks: the new requests fail for good (no retries)
        replies = engine.chat(QUESTIONS[:3])
        address = server.base_url
    assert not replies[0].failed and [r.error for r in replies[1:]] == ["http_500", "http_500"]
    assert engine.usage.counts["cache:hit"] == 1 and engine.usage.failed == 2
    with FakeChatServer(reply=echo) as replacement:  # back, at another address: the model id is the key
        assert replacement.base_url != address
        again = served(replacement, tmp_path).chat(QUESTIONS[:3])
        assert asked(replacement) == ["question 1", "question 2"]
    assert [r.text for r in again] == ["echo question 0", "echo question 1", "echo question 2"]


@pytest.mark.parametrize("keys", [{"max_new_tokens": 12}, {"temperature": 0.5}, {"top_p": 0.9},
                                  {"enable_thinking": True}])
def test_other_sampling_or_template_keys_miss(tmp_path, keys):
    with FakeChatServer(reply=echo) as server:
        served(server, tmp_path).chat(QUESTIONS[:2])
        server.chat_requests.clear()
        served(server, tmp_path, **keys).chat(QUESTIONS[:2])
        assert asked(server) == ["question 0", "question 1"]


@pytest.mark.parametrize("change", [{"n": 2}, {"stop": ("\n",)}, {"seed": 5}, {"max_new_tokens": 7}])
def test_other_call_parameters_miss_and_the_same_ones_hit(tmp_path, change):
    with FakeChatServer(reply=echo) as server:
        engine = served(server, tmp_path)
        engine.complete(["def f():"])
        params = dataclasses.replace(engine.default_params, **change)  # one parameter from the role's
        engine.complete(["def f():"], params)
        engine.complete(["def f():"], params)
        engine.chat([conversation("def f():")], params)  # chat and completion never share a reply
        assert len(server.chat_requests) == 3 and engine.usage.counts["cache:hit"] == 1


def test_another_model_misses(tmp_path):
    with FakeChatServer(reply=echo) as server, FakeChatServer(reply=echo, model="other-model") as other:
        served(server, tmp_path).chat(QUESTIONS[:2])
        served(other, tmp_path).chat(QUESTIONS[:2])
        assert len(other.chat_requests) == 2


def test_the_key_covers_every_part_of_the_request():
    model = {"engine": "openai", "model": "m", "tokenizer": "m"}
    base = request_key(model, "chat", conversation("q"), SamplingParams(), {"enable_thinking": False})
    assert base == request_key(dict(reversed(model.items())), "chat", conversation("q"), SamplingParams(),
                               {"enable_thinking": False})  # canonical: the order of keys does not matter
    variants = [request_key({**model, "model": "m2"}, "chat", conversation("q"), SamplingParams()),
                request_key({**model, "engine": "vllm"}, "chat", conversation("q"), SamplingParams()),
                request_key(model, "complete", conversation("q"), SamplingParams()),
                request_key(model, "chat", conversation("q2"), SamplingParams()),
                request_key(model, "chat", conversation("q"), SamplingParams(), {"enable_thinking": True}),
                *(request_key(model, "chat", conversation("q"), SamplingParams(**{key: value}))
                  for key, value in (("max_new_tokens", 1), ("temperature", 0.1), ("top_p", 0.5), ("n", 2),
                                     ("stop", ("x",)), ("seed", 1)))]
    assert len({base, *variants}) == len(variants) + 1


def test_a_local_checkpoint_is_known_by_its_files_not_its_path(tmp_path):
    """The same weights at another path (another node) give the same key; other weights at the same path do not."""
    def identity(path):
        return model_identity(SimpleNamespace(backend="hf", config=EngineConfig(model=str(path))))

    first = tmp_path / "node-a" / "ckpt"
    first.mkdir(parents=True)
    (first / "config.json").write_text('{"model_type": "llama"}')
    (first / "model.safetensors").write_bytes(bytes(range(256)) * 20_000)  # over 2 MiB: head and tail read
    copy = shutil.copytree(first, tmp_path / "node-b" / "ckpt")
    assert identity(copy) == identity(first)
    weights = bytearray((copy / "model.safetensors").read_bytes())
    weights[-1] ^= 1
    (copy / "model.safetensors").write_bytes(bytes(weights))
    assert identity(copy) != identity(first)
    assert identity(first) != model_identity(SimpleNamespace(backend="hf", config=EngineConfig(model=str(first),
                                                                                               dtype="bfloat16")))


WRITER = textwrap.dedent("""
    import sys
    from retrace.llm import Reply, RequestCache
    cache = RequestCache(sys.argv[1])
    for start in range(0, 400, 50):  # many transactions, while the other writer writes too
        cache.put_many([(f"{sys.argv[2]}-{i}", Reply((f"text {i}",), ("stop",))) for i in range(start, start + 50)])
""")


def test_every_writer_writes_its_own_file_and_every_file_is_read(tmp_path):
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), name]) for name in ("a", "b")]
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    assert len(list(tmp_path.glob("*.sqlite"))) == 2
    reader = RequestCache(tmp_path)
    keys = [f"{name}-{i}" for name in ("a", "b") for i in range(400)]
    found = reader.get_many(keys)
    assert found.keys() == set(keys) and found["b-7"] == Reply(("text 7",), ("stop",))
    assert reader.writer_path is None  # reading makes no file
    assert pickle.loads(pickle.dumps(reader)).get_many(keys) == found  # the directory travels to a Ray actor
    reader.put_many([("c-0", Reply(("c",), ("stop",))), ("failed", Reply.failure("timeout"))])
    assert len(list(tmp_path.glob("*.sqlite"))) == 3 and RequestCache(tmp_path).get_many(["c-0", "failed"]).keys() \
        == {"c-0"}


def test_a_corrupt_or_truncated_file_is_reported_once_and_skipped(tmp_path, caplog):
    with RequestCache(tmp_path) as good:
        good.put_many([(f"k{i}", Reply((f"reply {i} " * 40,), ("stop",))) for i in range(300)])
        written = good.writer_path.read_bytes()
    (tmp_path / "garbage.sqlite").write_bytes(b"not a database " * 100)
    (tmp_path / "truncated.sqlite").write_bytes(written[:len(written) // 2])
    reader = RequestCache(tmp_path)
    with caplog.at_level(logging.WARNING, logger="retrace.llm.cache"):
        for _ in range(2):
            assert len(reader.get_many([f"k{i}" for i in range(300)])) == 300
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 2 and any("garbage.sqlite" in w for w in warned)
    assert any("truncated.sqlite" in w for w in warned)


def test_an_in_process_engine_replays_its_replies_and_keeps_roles_apart(tmp_path):
    """The embedded SmolLM2 on the hf engine: a fresh pool (a reloaded model) answers from the cache; roles
    sharing the loaded model stay views of one copy; sampled replies are keyed by their whole call."""
    policy_config = EngineConfig(backend="hf", dtype="float32", device="cpu", max_new_tokens=6)
    pool = EnginePool(seed=2, request_cache=tmp_path)
    policy = pool.get(policy_config, role="policy")
    proposer = pool.get(EngineConfig(backend="hf", dtype="float32", device="cpu", max_new_tokens=6,
                                     temperature=0.8), role="proposer")
    assert policy.model is proposer.model and policy.default_params.temperature == 0
    prompts = [conversation("Name a colour."), conversation("Name a fruit.")]
    greedy = policy.chat(prompts)
    sampled = proposer.chat(prompts)
    assert policy.usage.requests == 2 and proposer.usage.requests == 2

    fresh = EnginePool(seed=2, request_cache=tmp_path)
    replayed = fresh.get(policy_config, role="policy")
    assert replayed.chat(prompts) == greedy and replayed.usage.requests == 0
    assert replayed.chat(prompts[1:]) == greedy[1:] and replayed.usage.counts["cache:hit"] == 3
    resampled = fresh.get(EngineConfig(backend="hf", dtype="float32", device="cpu", max_new_tokens=6,
                                       temperature=0.8), role="proposer")
    assert resampled.chat(prompts) == sampled and resampled.usage.requests == 0
    resampled.chat(prompts[1:])  # drawn in another batch: its own key, generated
    assert resampled.usage.requests == 1
