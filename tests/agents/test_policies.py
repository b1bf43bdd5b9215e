"""Model-backed policies: retry-then-fallback, and the openai policy end to end over real HTTP."""

from __future__ import annotations

import json
import sys
from collections import Counter

import pytest
from openai_server import FakeChatServer, grounded_reply
from retrace_testing import ScriptedEngine, run_script
from test_simulate import make_repo

from retrace.agents import SimulationArguments, StructuralPolicy, build_policy, simulate_repositories
from retrace.agents.policies import ChatPolicy, PolicyRequest
from retrace.repo import analyze_repository, ingest_local_dir


def openai_policy(server: FakeChatServer, *, retries: int = 1, retry_temperature: float = 0.7, seed: int = 0,
                  **engine_keys) -> ChatPolicy:
    """The openai policy as a recipe builds it (`policy_*` keys), with short backoffs for the test."""
    keys = {"base_url": server.base_url, "model": server.model, "api_key_env": "", "timeout_s": 2.0,
            "max_retries": 2, "ready_timeout_s": 5.0, **engine_keys}
    args = SimulationArguments(policy_backend="openai", policy_retries=retries,
                               policy_retry_temperature=retry_temperature, seed=seed,
                               **{f"policy_{k}": v for k, v in keys.items()})
    policy = build_policy(args)
    policy.engine.client.backoff_s, policy.engine.client.poll_s = 0.01, 0.05
    return policy


def requests_for(n: int, kind: str = "think_write") -> list[PolicyRequest]:
    fields = {"repo": "proj", "path": "", "purpose": "p", "facts": "f"}
    return [PolicyRequest(kind, {**fields, "path": f"mod{i}.py"}, f"structural {i}", anchors=[f"mod{i}"])
            for i in range(n)]


def test_malformed_replies_are_retried_with_sampling_then_recovered():
    """Greedy answers paste a code block; the sampled retry is usable: every request recovers."""

    def reply(body):
        return grounded_reply(body) if body["temperature"] > 0 else "```py\nx = 1\n```"

    with FakeChatServer(reply=reply) as server:
        policy = openai_policy(server, retries=1, retry_temperature=0.8, seed=3)
        replies = policy.write(requests_for(4))
        assert [r.source for r in replies] == ["openai"] * 4
        assert all(f"mod{i}.py" in r.text for i, r in enumerate(replies))
        assert policy.counts == Counter({"openai": 4, "retry": 4, "recovered": 4})
        retries = server.chat_requests[4:]
        assert len(retries) == 4 and all((b["temperature"], b["seed"]) == (0.8, 4) for b in retries)
        assert policy.usage["requests"] == 8 and policy.usage["finish:stop"] == 8


def test_retries_exhausted_fall_back_to_structural_and_count_the_reason():
    with FakeChatServer(reply=lambda body: "too short") as server:
        policy = openai_policy(server, retries=2)
        replies = policy.write(requests_for(3) + requests_for(1, kind="purpose"))
        assert [(r.source, r.fallback_reason) for r in replies[:3]] == [("structural", "too_short")] * 3
        assert [r.text for r in replies] == ["structural 0", "structural 1", "structural 2", "structural 0"]
        assert policy.counts == Counter({"fallback:too_short": 4, "retry": 8})
        assert len(server.chat_requests) == 12  # 4 requests x (1 + 2 retries)


def test_openai_policy_survives_500s_timeouts_and_malformed_json_and_counts_the_fallback():
    with FakeChatServer(slow_s=1.0) as server:
        # request A: 500, timeout, then fine; request B: three malformed bodies -> gives up -> fallback
        server.faults.extend(["500", "slow", "ok", "malformed", "malformed", "malformed"])
        policy = openai_policy(server, timeout_s=0.4, max_retries=2, concurrency=1, retries=1)
        replies = policy.write(requests_for(2))
        assert replies[0].source == "openai"
        assert (replies[1].source, replies[1].fallback_reason, replies[1].text) == (
            "structural", "request_failed", "structural 1")
        assert policy.counts == Counter({"openai": 1, "fallback:request_failed": 1})  # no policy retry of it
        usage = policy.usage
        assert (usage["retry:http_500"], usage["retry:timeout"], usage["retry:malformed_json"]) == (1, 1, 2)
        assert usage["failed:malformed_json"] == 1 and usage["requests"] == 1


def test_openai_policy_in_the_simulation_keeps_grounding(tmp_path):
    root = make_repo(tmp_path / "tiny")
    snapshot = ingest_local_dir(root, name="tiny")
    with FakeChatServer() as server:
        policy = openai_policy(server, concurrency=4)
        [traj] = simulate_repositories([(snapshot, analyze_repository(snapshot))], policy)
    thinks = [s for s in traj.steps if s.kind == "think"]
    assert thinks and all(s.meta["source"] == "openai" and "server's note" in s.content for s in thinks)
    assert sum(v for k, v in policy.counts.items() if k not in ("retry", "recovered")) == len(server.chat_requests)
    for step in traj.steps:
        if step.kind == "write":
            assert step.content == (root / step.path).read_bytes().decode()
    assert server.max_in_flight <= 4


def test_policy_keys_are_checked_and_structural_needs_no_model():
    assert isinstance(build_policy(SimulationArguments(policy_backend="structural", policy_concurrency=3)),
                      StructuralPolicy)
    with pytest.raises(ValueError, match="policy_concurrency"):
        SimulationArguments(policy_concurrency=0)
    with pytest.raises(ValueError, match="policy_retries"):
        SimulationArguments(policy_retries=-1)
    with pytest.raises(ValueError, match="key 'policy_backend': unknown engine 'tgi'"):
        SimulationArguments(policy_backend="tgi")


def test_vllm_policy_without_vllm_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed
    with pytest.raises(ImportError, match="requirements-gpu.txt"):
        build_policy(SimulationArguments(policy_backend="vllm", policy_model="any"))


def test_a_request_the_engine_could_not_complete_is_not_asked_again_and_is_counted():
    engine = ScriptedEngine(lambda conversation, params: None)
    policy = ChatPolicy(engine, retries=3)
    [reply] = policy.write(requests_for(1))
    assert (reply.source, reply.fallback_reason) == ("structural", "request_failed")
    assert len(engine.calls) == 1
    assert policy.counts == Counter({"fallback:request_failed": 1})
    assert policy.usage["failed:scripted"] == 1


def test_synthesize_with_the_openai_policy_end_to_end(tmp_path):
    root = make_repo(tmp_path / "tiny")
    out = tmp_path / "out"
    with FakeChatServer() as server:
        server.faults.extend(["500", "malformed"])  # the run shrugs these off
        run_script("synthesize.py", "--sources", str(root), "--output_dir", str(out), "--policy_backend", "openai",
                   "--policy_base_url", server.base_url, "--policy_model", server.model, "--policy_api_key_env", "",
                   "--policy_concurrency", "2", "--policy_ready_timeout_s", "10", timeout=120)
    traj = json.loads((out / "trajectories" / "tiny.jsonl").read_text())
    texts = [s for s in traj["steps"] if s["kind"] in ("requirements", "think", "report")]
    assert texts and all(s["meta"]["source"] == "openai" and "server's note" in s["content"] for s in texts)
    assert traj["meta"]["text_sources"]["openai"] == len(texts)
    purposes = len(traj["order"])  # purpose texts are asked too; they go into the plan and delegations
    assert len(server.chat_requests) == len(texts) + purposes + 2  # + the two failed tries
    assert (out / "documents" / "tiny.jsonl").exists()
