"""The openai engine's chat and completion against a real local HTTP server that misbehaves on cue."""

from __future__ import annotations

import threading
import time

import pytest
from openai_server import FakeChatServer

from retrace.llm import EngineConfig, Reply, RequestFailed, SamplingParams, count_failures
from retrace.llm.http_client import ServerNotReady
from retrace.llm.openai_engine import OpenAIEngine


def conversation(text: str) -> list[dict]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


def engine(server: FakeChatServer, *, seed: int = 0, **keys) -> OpenAIEngine:
    """The engine as a recipe's keys build it, with millisecond backoffs and polls for the test."""
    config = {"base_url": server.base_url, "model": server.model, "timeout_s": 2.0, "max_retries": 3,
              "ready_timeout_s": 5.0, "api_key_env": "", **keys}
    return OpenAIEngine(EngineConfig(backend="openai", **config), seed=seed, backoff_s=0.01, max_backoff_s=2.0,
                        poll_s=0.05)


def test_replies_come_back_in_order_with_usage_and_finish_reasons():
    with FakeChatServer(reply=lambda body: "echo " + body["messages"][-1]["content"]) as server:
        model = engine(server, concurrency=4)
        replies = model.chat([conversation(f"question {i}") for i in range(10)])
        assert all(isinstance(r, Reply) and not r.failed for r in replies)
        assert [r.texts for r in replies] == [(f"echo question {i}",) for i in range(10)]
        assert {r.finish_reasons for r in replies} == {("stop",)}
        assert model.usage.requests == 10
        assert model.usage.prompt_tokens == server.prompt_tokens > 0
        assert model.usage.completion_tokens == server.completion_tokens == 30
        assert model.usage.counts == {"finish:stop": 10}
        assert model.usage.to_dict() == {"requests": 10, "prompt_tokens": server.prompt_tokens,
                                         "completion_tokens": 30, "finish:stop": 10}
        first = server.chat_requests[0]
        assert first["model"] == "test-model" and "seed" not in first  # greedy by default: no seed sent
        assert (first["max_tokens"], first["temperature"], first["n"]) == (96, 0.0, 1)  # the role's defaults


def test_survives_500s_timeouts_and_malformed_bodies():
    with FakeChatServer(slow_s=1.0) as server:
        server.faults.extend(["500", "slow", "malformed", "empty_choices", "500"])
        model = engine(server, timeout_s=0.4, max_retries=5, concurrency=1)
        [reply] = model.chat([conversation('In the project "p", write a.py now.')])
        assert not reply.failed and "a.py" in reply.text
        assert model.usage.counts == {"retry:http_500": 2, "retry:timeout": 1, "retry:malformed_json": 2,
                                      "finish:stop": 1}
        assert [fault for _, fault in server.log] == ["500", "slow", "malformed", "empty_choices", "500", "ok"]
        assert model.usage.requests == 1  # only the answered request counts its tokens


def test_gives_up_after_its_retries_and_does_not_retry_client_errors():
    with FakeChatServer() as server:
        server.faults.extend(["500"] * 3 + ["400"])
        model = engine(server, max_retries=2, concurrency=1)
        [one] = model.chat([conversation("one")])  # 3 tries, all 500
        [two] = model.chat([conversation("two")])  # 400: no retry
        [three] = model.chat([conversation("three")])
        assert (one.failed, one.error, one.texts) == (True, "http_500", ())
        assert (two.failed, two.error, two.texts) == (True, "http_400", ())
        assert not three.failed and three.text
        for failed in (one, two):  # a failed request is a Reply, never None, and has no text to read
            with pytest.raises(RequestFailed, match="reply.failed"):
                _ = failed.text
        assert count_failures([one, two, three]) == {"failed:http_500": 1, "failed:http_400": 1}
        assert len(server.chat_requests) == 5
        assert model.usage.counts == {"retry:http_500": 2, "failed:http_500": 1, "failed:http_400": 1,
                                      "finish:stop": 1}
        assert model.usage.failed == 2 and model.usage.requests == 1


def test_429_waits_at_least_retry_after():
    with FakeChatServer(retry_after="1") as server:
        server.faults.append("429")
        model = engine(server, concurrency=1)
        assert model.chat([conversation("x")])[0].text
        (t429, first), (t_ok, second) = server.log
        assert (first, second) == ("429", "ok")
        assert t_ok - t429 >= 0.95  # Retry-After, not the 10 ms backoff
        assert model.usage.counts["retry:http_429"] == 1


def test_concurrency_limit_is_respected():
    with FakeChatServer(delay_s=0.15) as server:
        model = engine(server, concurrency=3)
        start = time.monotonic()
        replies = model.chat([conversation(f"q{i}") for i in range(12)])
        assert not any(r.failed for r in replies)
        assert server.max_in_flight == 3  # never more, and the limit was used
        assert time.monotonic() - start >= 4 * 0.15


def test_readiness_wait_before_the_first_request():
    with FakeChatServer(ready_after_s=1.0) as server:
        model = engine(server)
        start = time.monotonic()
        assert model.chat([conversation("x")])[0].text
        assert time.monotonic() - start >= 0.95
        assert server.model_polls >= 2
        first_chat = server.log[0][0]
        assert first_chat - server.started >= 1.0  # no chat request before the server was ready


def test_readiness_times_out_with_an_error_naming_the_url():
    with FakeChatServer(ready_after_s=60) as server:
        model = engine(server, ready_timeout_s=0.5)
        with pytest.raises(ServerNotReady, match=f"{server.base_url}/models.*HTTP 503"):
            model.chat([conversation("x")])
        assert server.chat_requests == []
    closed = OpenAIEngine(EngineConfig(backend="openai", base_url="http://127.0.0.1:9/v1", model="m",
                                       ready_timeout_s=0.3), poll_s=0.1)
    with pytest.raises(ServerNotReady, match="http://127.0.0.1:9/v1/models"):
        closed.wait_until_ready()


def test_model_must_be_served_and_empty_means_the_only_one():
    with FakeChatServer(model="served") as server:
        with pytest.raises(ValueError, match=r"does not serve model 'other'.*\['served'\]"):
            engine(server, model="other").wait_until_ready()
        model = engine(server, model="")
        assert model.wait_until_ready() == ["served"]
        assert model.chat([conversation("x")])[0].text
        assert server.chat_requests[0]["model"] == "served"


def test_api_key_comes_from_the_named_environment_variable(monkeypatch):
    monkeypatch.setenv("RETRACE_TEST_KEY", "sk-local")
    with FakeChatServer() as server:
        engine(server, api_key_env="RETRACE_TEST_KEY").chat([conversation("x")])
        engine(server, api_key_env="").chat([conversation("y")])
        assert server.authorizations == ["Bearer sk-local", None]


def test_role_defaults_and_explicit_sampling_reach_the_server():
    """The role's keys and the recipe's seed are the defaults; explicit `SamplingParams` replace them."""
    with FakeChatServer() as server:
        model = engine(server, seed=5, temperature=0.7, top_p=0.9, max_new_tokens=12)
        model.chat([conversation("x")])
        model.chat([conversation("y")], SamplingParams(max_new_tokens=3, temperature=0.2, n=2, seed=9,
                                                       stop=("\n",)))
        [completion] = model.complete(["z"], SamplingParams(temperature=0.0))
        assert completion.text and model.usage.failed == 0
        default, explicit, greedy = server.chat_requests
        assert {k: default[k] for k in ("temperature", "top_p", "max_tokens", "n", "seed")} == {
            "temperature": 0.7, "top_p": 0.9, "max_tokens": 12, "n": 1, "seed": 5}
        assert {k: explicit[k] for k in ("temperature", "max_tokens", "n", "seed", "stop")} == {
            "temperature": 0.2, "max_tokens": 3, "n": 2, "seed": 9, "stop": ["\n"]}
        assert greedy["prompt"] == "z" and "seed" not in greedy and "messages" not in greedy


def test_threads_share_one_engine_safely():
    """Two role calls at once (e.g. two shards' threads): counts add up exactly."""
    with FakeChatServer(delay_s=0.01) as server:
        model = engine(server, concurrency=4)
        workers = [threading.Thread(target=model.chat, args=([conversation(str(i)) for i in range(20)],))
                   for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert model.usage.requests == 40 and model.usage.counts["finish:stop"] == 40
