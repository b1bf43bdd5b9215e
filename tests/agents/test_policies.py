"""Model-backed policies: retry-then-fallback, and the openai policy end to end over real HTTP."""

from __future__ import annotations

import json
import sys
from collections import Counter

import pytest
from openai_server import FakeChatServer, grounded_reply
from retrace_testing import run_script
from test_simulate import make_repo

from retrace.agents import SimulationArguments, build_policy, simulate_repositories
from retrace.agents.policies import POLICIES, ChatPolicy, PolicyRequest
from retrace.llm.chat import GenerationUsage
from retrace.repo import analyze_repository, ingest_local_dir

FAST = {"backoff_s": 0.01, "poll_s": 0.05}


def openai_policy(server: FakeChatServer, **kwargs) -> ChatPolicy:
    options = {"base_url": server.base_url, "api_key_env": "", "timeout_s": 2.0, "max_retries": 2,
               "ready_timeout_s": 5.0, **kwargs}
    policy = build_policy("openai", model_name_or_path=server.model, **options)
    policy.backend.backoff_s, policy.backend.poll_s = FAST["backoff_s"], FAST["poll_s"]
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


def test_builders_ignore_other_backends_keys_and_recipe_keys_are_checked():
    assert {"structural", "hf", "openai", "vllm"} <= set(POLICIES)
    assert build_policy("structural", base_url="x", concurrency=3).name == "structural"
    assert set(SimulationArguments().policy_kwargs()) >= {"base_url", "concurrency", "retries", "max_model_len"}
    with pytest.raises(ValueError, match="policy_concurrency"):
        SimulationArguments(policy_concurrency=0)
    with pytest.raises(ValueError, match="policy_retries"):
        SimulationArguments(policy_retries=-1)


def test_vllm_policy_without_vllm_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed
    with pytest.raises(ImportError, match="requirements-gpu.txt"):
        build_policy("vllm", model_name_or_path="any")


def test_a_request_the_backend_could_not_complete_is_not_asked_again():
    class Backend:
        usage = GenerationUsage()

        def __init__(self):
            self.calls = 0

        def generate(self, conversations, desc="", **sampling):
            self.calls += 1
            return [None for _ in conversations]

    policy = ChatPolicy(Backend(), "hf", retries=3)
    [reply] = policy.write(requests_for(1))
    assert (reply.source, reply.fallback_reason) == ("structural", "request_failed")
    assert policy.backend.calls == 1


def test_synthesize_with_the_openai_policy_end_to_end(tmp_path):
    root = make_repo(tmp_path / "tiny")
    out = tmp_path / "out"
    with FakeChatServer() as server:
        server.faults.extend(["500", "malformed"])  # the run shrugs these off
        run_script("synthesize.py", "--sources", str(root), "--output_dir", str(out), "--policy", "openai",
                   "--policy_base_url", server.base_url, "--policy_model", server.model, "--policy_api_key_env", "",
                   "--policy_concurrency", "2", "--policy_ready_timeout_s", "10", timeout=120)
    traj = json.loads((out / "trajectories" / "tiny.jsonl").read_text())
    texts = [s for s in traj["steps"] if s["kind"] in ("requirements", "think", "report")]
    assert texts and all(s["meta"]["source"] == "openai" and "server's note" in s["content"] for s in texts)
    assert traj["meta"]["text_sources"]["openai"] == len(texts)
    purposes = len(traj["order"])  # purpose texts are asked too; they go into the plan and delegations
    assert len(server.chat_requests) == len(texts) + purposes + 2  # + the two failed tries
    assert (out / "documents" / "tiny.jsonl").exists()
