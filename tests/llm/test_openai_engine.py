"""The OpenAI-compatible backend against a real local HTTP server that misbehaves on cue."""

from __future__ import annotations

import threading
import time

import pytest
from openai_server import FakeChatServer

from retrace.llm.openai_chat import OpenAIChatModel, ServerNotReady


def conversation(text: str) -> list[dict]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


def client(server: FakeChatServer, **kwargs) -> OpenAIChatModel:
    options = {"timeout_s": 2.0, "max_retries": 3, "backoff_s": 0.01, "max_backoff_s": 2.0, "poll_s": 0.05,
               "ready_timeout_s": 5.0, "api_key_env": ""}
    return OpenAIChatModel(server.base_url, server.model, **{**options, **kwargs})


def test_replies_come_back_in_order_with_usage_and_finish_reasons():
    with FakeChatServer(reply=lambda body: "echo " + body["messages"][-1]["content"]) as server:
        model = client(server, concurrency=4)
        replies = model.generate([conversation(f"question {i}") for i in range(10)])
        assert replies == [f"echo question {i}" for i in range(10)]
        assert model.usage.requests == 10
        assert model.usage.prompt_tokens == server.prompt_tokens > 0
        assert model.usage.completion_tokens == server.completion_tokens == 30
        assert model.counts == {"finish:stop": 10}
        assert server.chat_requests[0]["model"] == "test-model" and "seed" not in server.chat_requests[0]


def test_survives_500s_timeouts_and_malformed_bodies():
    with FakeChatServer(slow_s=1.0) as server:
        server.faults.extend(["500", "slow", "malformed", "empty_choices", "500"])
        model = client(server, timeout_s=0.4, max_retries=5, concurrency=1)
        [reply] = model.generate([conversation('In the project "p", write a.py now.')])
        assert reply and "a.py" in reply
        assert model.counts == {"retry:http_500": 2, "retry:timeout": 1, "retry:malformed_json": 2,
                                "finish:stop": 1}
        assert [fault for _, fault in server.log] == ["500", "slow", "malformed", "empty_choices", "500", "ok"]
        assert model.usage.requests == 1  # only the answered request counts its tokens


def test_gives_up_after_its_retries_and_does_not_retry_client_errors():
    with FakeChatServer() as server:
        server.faults.extend(["500"] * 3 + ["400"])
        model = client(server, max_retries=2, concurrency=1)
        assert model.generate([conversation("one")]) == [None]  # 3 tries, all 500
        assert model.generate([conversation("two")]) == [None]  # 400: no retry
        assert model.generate([conversation("three")])[0]
        assert len(server.chat_requests) == 5
        assert model.counts == {"retry:http_500": 2, "failed:http_500": 1, "failed:http_400": 1, "finish:stop": 1}


def test_429_waits_at_least_retry_after():
    with FakeChatServer(retry_after="1") as server:
        server.faults.append("429")
        model = client(server, concurrency=1)
        assert model.generate([conversation("x")])[0]
        (t429, first), (t_ok, second) = server.log
        assert (first, second) == ("429", "ok")
        assert t_ok - t429 >= 0.95  # Retry-After, not the 10 ms backoff
        assert model.counts["retry:http_429"] == 1


def test_concurrency_limit_is_respected():
    with FakeChatServer(delay_s=0.15) as server:
        model = client(server, concurrency=3)
        start = time.monotonic()
        replies = model.generate([conversation(f"q{i}") for i in range(12)])
        assert all(replies)
        assert server.max_in_flight == 3  # never more, and the limit was used
        assert time.monotonic() - start >= 4 * 0.15


def test_readiness_wait_before_the_first_request():
    with FakeChatServer(ready_after_s=1.0) as server:
        model = client(server)
        start = time.monotonic()
        assert model.generate([conversation("x")])[0]
        assert time.monotonic() - start >= 0.95
        assert server.model_polls >= 2
        first_chat = server.log[0][0]
        assert first_chat - server.started >= 1.0  # no chat request before the server was ready


def test_readiness_times_out_with_an_error_naming_the_url():
    with FakeChatServer(ready_after_s=60) as server:
        model = client(server, ready_timeout_s=0.5)
        with pytest.raises(ServerNotReady, match=f"{server.base_url}/models.*HTTP 503"):
            model.generate([conversation("x")])
        assert server.chat_requests == []
    closed = OpenAIChatModel("http://127.0.0.1:9/v1", "m", ready_timeout_s=0.3, poll_s=0.1)
    with pytest.raises(ServerNotReady, match="http://127.0.0.1:9/v1/models"):
        closed.wait_until_ready()


def test_model_must_be_served_and_empty_means_the_only_one():
    with FakeChatServer(model="served") as server:
        with pytest.raises(ValueError, match=r"does not serve model 'other'.*\['served'\]"):
            OpenAIChatModel(server.base_url, "other", poll_s=0.05).wait_until_ready()
        model = OpenAIChatModel(server.base_url, "", poll_s=0.05)
        assert model.generate([conversation("x")])[0]
        assert server.chat_requests[0]["model"] == "served"


def test_api_key_comes_from_the_named_environment_variable(monkeypatch):
    monkeypatch.setenv("RETRACE_TEST_KEY", "sk-local")
    with FakeChatServer() as server:
        client(server, api_key_env="RETRACE_TEST_KEY").generate([conversation("x")])
        client(server, api_key_env="").generate([conversation("y")])
        assert server.authorizations == ["Bearer sk-local", None]


def test_sampling_overrides_reach_the_server():
    with FakeChatServer() as server:
        model = client(server, seed=5)
        model.generate([conversation("x")], temperature=0.7, seed=9)
        assert (server.chat_requests[0]["temperature"], server.chat_requests[0]["seed"]) == (0.7, 9)


def test_threads_share_one_backend_safely():
    """Two policy calls at once (e.g. two shards' threads): counts add up exactly."""
    with FakeChatServer(delay_s=0.01) as server:
        model = client(server, concurrency=4)
        workers = [threading.Thread(target=model.generate, args=([conversation(str(i)) for i in range(20)],))
                   for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert model.usage.requests == 40 and model.counts["finish:stop"] == 40
