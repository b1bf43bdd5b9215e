"""Model-backed policies: retry-then-fallback, and the openai policy end to end over real HTTP."""

from __future__ import annotations

import json
import re
import sys
from collections import Counter

import pytest
from openai_server import FakeChatServer, grounded_reply
from retrace_testing import ScriptedEngine, run_script
from test_simulate import make_repo

from retrace.agents import SimulationArguments, StructuralPolicy, build_policy, simulate_repositories
from retrace.agents.policies import SENTENCE_STOPS, ChatPolicy, PolicyRequest
from retrace.data.layout import artifact_path
from retrace.llm import RequestsFailed
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
    # what the prompts show of the file (a validator keeps sentences that name some of it)
    fields = {"repo": "proj", "languages": "Python", "path": "", "deps": "d", "delegation": "t",
              "facts": "Functions: parse_config, register_handlers, run_loop",
              "requirements": "Reads settings files, registers handlers and loops over events.",
              "read": "- settings.py: parses the settings records into a search index.", "code": "SETTINGS = {}",
              "number": "1", "total": "1", "plan": "p", "after": "a", "audience": "a"}
    return [PolicyRequest(kind, {**fields, "path": f"mod{i}.py"}, f"structural {i}", anchors=[f"mod{i}"])
            for i in range(n)]


def test_malformed_replies_are_retried_with_sampling_then_recovered():
    """Greedy answers paste a code block; the sampled retry is usable: every request recovers."""

    def reply(body):
        return grounded_reply(body) if body["temperature"] > 0 else "Here it is:\n```py\nx = 1\n```"

    with FakeChatServer(reply=reply) as server:
        policy = openai_policy(server, retries=1, retry_temperature=0.8, seed=3)
        replies = policy.write(requests_for(4))
        assert [r.source for r in replies] == ["openai"] * 4
        assert all(f"mod{i}.py" in r.text for i, r in enumerate(replies))
        assert policy.counts == Counter({"openai": 4, "retry": 4, "retry:code_block": 4, "recovered": 4})
        retries = server.chat_requests[4:]
        assert len(retries) == 4 and all((b["temperature"], b["seed"]) == (0.8, 4) for b in retries)
        assert policy.usage["requests"] == 8 and policy.usage["finish:stop"] == 8


def test_retries_exhausted_fall_back_to_structural_and_count_the_reason():
    with FakeChatServer(reply=lambda body: "too short") as server:
        policy = openai_policy(server, retries=2)
        replies = policy.write(requests_for(3) + requests_for(1, kind="purpose"))
        assert [(r.source, r.fallback_reason) for r in replies[:3]] == [("structural", "too_short")] * 3
        assert [r.text for r in replies] == ["structural 0", "structural 1", "structural 2", "structural 0"]
        assert policy.counts == Counter({"fallback:too_short": 4, "retry": 8, "retry:too_short": 8})
        assert len(server.chat_requests) == 12  # 4 requests x (1 + 2 retries)


GREEDY_FAULTS = {  # what the model says at temperature 0 (max_tokens 24: the server cuts at 24 words)
    "mod0.py": "mod0.py begins with the reader, which turns raw bytes into tokens for the parser, which builds the "
               "tree that the printer walks while it writes",                        # cut mid-sentence
    "mod1.py": "mod1.py parses the settings records. " * 3,                             # a loop
    "mod2.py": "I think aloud in two sentences, starting with the words To write mod2.py as asked.",  # restated
    "mod3.py": "<think> The user asks about mod3.py. I should recall what the parser needs first, then decide "
               "which of its helpers to write before the rest",                      # a scratchpad, never closed
    "mod4.py": "<think>Name the file.</think> ",                                     # + a grounded answer: kept
    "mod5.py": "mod5.py reads the settings file first and checks every key. Then it builds the search index from "
               "the parsed records. Finally it writes the",                          # cut, two whole sentences
}


def test_truncated_looping_restating_and_thinking_replies_are_caught_retried_and_counted_by_reason():
    """Over real HTTP: each fault is caught; mod0 and mod1 recover on the sampled retry, mod2 and mod3 fall back,
    mod4 keeps its answer without the scratchpad and mod5 its two complete sentences."""

    def reply(body):
        path = re.search(r"mod\d\.py", body["messages"][-1]["content"]).group(0)
        if body["temperature"] > 0 and path in ("mod0.py", "mod1.py"):
            return grounded_reply(body)
        return GREEDY_FAULTS[path] + (grounded_reply(body) if path == "mod4.py" else "")

    with FakeChatServer(reply=reply) as server:
        policy = openai_policy(server, max_new_tokens=24)
        replies = policy.write(requests_for(6))
    assert [(r.source, r.fallback_reason) for r in replies] == [
        ("openai", None), ("openai", None), ("structural", "restates_prompt"), ("structural", "thinking"),
        ("openai", None), ("openai", None)]
    assert replies[0].text.startswith("The server's note: mod0.py") and "<think>" not in replies[4].text
    assert replies[4].text.startswith("The server's note: mod4.py") and replies[4].repairs == ("scratchpad_stripped",)
    assert replies[5].text == GREEDY_FAULTS["mod5.py"].rsplit(" Finally", 1)[0] and replies[5].repairs == ("trimmed",)
    assert policy.counts == Counter({
        "openai": 4, "retry": 4, "recovered": 2, "scratchpad_stripped": 1, "trimmed": 1,
        "retry:truncated": 1, "retry:repetition": 1, "retry:restates_prompt": 1, "retry:thinking": 1,
        "fallback:restates_prompt": 1, "fallback:thinking": 1})
    assert [b["temperature"] for b in server.chat_requests] == [0.0] * 6 + [0.7] * 4
    usage = policy.usage
    assert (usage["finish:length"], usage["finish:stop"]) == (4, 6)  # mod0, mod3 (twice), mod5 hit the limit
    assert usage["policy:fallback:thinking"] == 1 and usage["policy:retry:truncated"] == 1


def test_a_retry_samples_several_replies_in_one_request_and_keeps_the_usable_one_with_fewest_repairs():
    """Over real HTTP: the retry asks for `n` replies at once; of three samples, a loop, a usable reply with a
    sentence to drop and a clean one, the clean one is kept."""
    samples = iter(["mod0.py parses the settings records. " * 3,
                    "mod0.py parses the settings records. The code meets the requirements.",
                    "mod0.py keeps each of the settings records in a search index by its key."])

    def reply(body):
        return "Here:\n```py\nx = 1\n```" if body["temperature"] == 0 else next(samples)

    with FakeChatServer(reply=reply) as server:
        args = dict(retries=1, retry_temperature=0.9)
        policy = openai_policy(server, **args)
        policy.retry_samples = 3
        [answer] = policy.write(requests_for(1))
    assert (answer.source, answer.text, answer.repairs) == (
        "openai", "mod0.py keeps each of the settings records in a search index by its key.", ())
    assert [b.get("n", 1) for b in server.chat_requests] == [1, 3]
    assert policy.counts == Counter({"openai": 1, "retry": 1, "retry:code_block": 1, "recovered": 1})
    with pytest.raises(ValueError, match="policy_retry_samples"):
        SimulationArguments(policy_retry_samples=0)


def test_a_one_sentence_request_stops_at_the_sentence_end_and_keeps_its_full_stop():
    """Over real HTTP: the request carries the sentence stops, the server's text is cut at the first, the full stop
    is put back; a two-sentence request has no stop and is cut after its second sentence."""
    said = "mod{0}.py registers the handlers. Then it loops. Then it loops again."
    with FakeChatServer(reply=lambda body: said.format(re.search(r"mod(\d)", body["messages"][-1]["content"])[1])) \
            as server:
        policy = openai_policy(server)
        one, two = requests_for(2, kind="purpose")
        one.sentences, two.sentences, one.stop = 1, 2, SENTENCE_STOPS
        replies = policy.write([one, two])
    assert [r.text for r in replies] == ["mod0.py registers the handlers.",
                                         "mod1.py registers the handlers. Then it loops."]
    assert sorted(tuple(b.get("stop", ())) for b in server.chat_requests) == [(), (". ", ".\n")]
    # "Then it loops again." names nothing the sentences before it did not: dropped before the cut
    assert policy.counts == Counter({"openai": 2, "said_again_dropped": 1})


def test_openai_policy_survives_500s_and_timeouts_and_stops_on_a_request_lost_for_good():
    with FakeChatServer(slow_s=1.0) as server:
        # request A: 500, timeout, then fine; request B: three malformed bodies -> the transport gives up
        server.faults.extend(["500", "slow", "ok", "malformed", "malformed", "malformed"])
        policy = openai_policy(server, timeout_s=0.4, max_retries=2, concurrency=1, retries=1)
        # a lost request is never replaced by structural text: the batch fails, naming the server
        with pytest.raises(RequestsFailed, match=f"policy: 1 of 2 requests to {server.base_url}.*malformed_json"):
            policy.write(requests_for(2))
        assert not any(k.startswith("fallback:") for k in policy.counts)
        usage = policy.usage
        assert (usage["retry:http_500"], usage["retry:timeout"], usage["retry:malformed_json"]) == (1, 1, 2)
        assert usage["failed:malformed_json"] == 1 and usage["requests"] == 1
        server.faults.clear()  # the server is back: the same requests are written by the model
        assert [r.source for r in policy.write(requests_for(2))] == ["openai", "openai"]


def test_openai_policy_in_the_simulation_keeps_grounding(tmp_path):
    root = make_repo(tmp_path / "tiny")
    snapshot = ingest_local_dir(root, name="tiny")
    with FakeChatServer() as server:
        policy = openai_policy(server, concurrency=4)
        [traj] = simulate_repositories([(snapshot, analyze_repository(snapshot))], policy)
    thinks = [s for s in traj.steps if s.kind == "think"]
    assert thinks and all(s.meta["source"] == "openai" and "server's note" in s.content for s in thinks)
    assert sum(policy.outcomes().values()) == len(server.chat_requests)
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
    with pytest.raises(ValueError, match="key 'prompt_code_chars': must be >= 0"):
        SimulationArguments(prompt_code_chars=-1)
    options = SimulationArguments(prompt_code_chars=900, prompt_context_chars=300, read_budget_chars=5).options()
    assert (options.prompt_code_chars, options.prompt_context_chars, options.read_budget_chars) == (900, 300, 5)


def test_vllm_policy_without_vllm_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as if not installed
    with pytest.raises(ImportError, match="requirements-gpu.txt"):
        build_policy(SimulationArguments(policy_backend="vllm", policy_model="any"))


def test_a_request_the_engine_could_not_complete_is_not_asked_again_and_stops_the_batch():
    engine = ScriptedEngine(lambda conversation, params: None)
    policy = ChatPolicy(engine, retries=3)
    with pytest.raises(RequestsFailed, match="policy: 1 of 1 requests .* failed after retries .*not written"):
        policy.write(requests_for(1))
    assert len(engine.calls) == 1 and not policy.counts
    assert policy.usage["failed:scripted"] == 1


def test_synthesize_with_the_openai_policy_end_to_end(tmp_path):
    root = make_repo(tmp_path / "tiny")
    out = tmp_path / "out"
    with FakeChatServer() as server:
        server.faults.extend(["500", "malformed"])  # the run shrugs these off
        run_script("synthesize.py", "--sources", str(root), "--output_dir", str(out), "--policy_backend", "openai",
                   "--policy_base_url", server.base_url, "--policy_model", server.model, "--policy_api_key_env", "",
                   "--policy_concurrency", "2", "--policy_ready_timeout_s", "10", timeout=120)
    traj = json.loads(artifact_path(out, "trajectories", "tiny").read_text())
    texts = [s for s in traj["steps"] if s["kind"] in ("requirements", "think", "report")]
    assert texts and all(s["meta"]["source"] == "openai" and "server's note" in s["content"] for s in texts)
    # the plan and the delegations carry the model's plan descriptions: theirs too
    assert traj["meta"]["text_sources"] == {"openai": len([s for s in traj["steps"] if s["kind"] not in ("read",
                                                                                                        "write")])}
    purposes = len(traj["order"])  # purpose texts are asked too; they go into the plan and delegations
    assert len(server.chat_requests) == len(texts) + purposes + 2  # + the two failed tries
    assert artifact_path(out, "documents", "tiny").exists()


def test_a_prefilled_opener_is_sent_for_the_server_to_continue_and_kept_as_the_replys_start():
    """Over real HTTP, as vLLM's server takes it: the conversation ends with the opener the instruction asks
    for, the body asks to continue it (`continue_final_message`, no new generation prompt), and the reply is
    the opener followed by the server's continuation."""
    continuation = " keep the settings records of parse_config in a search index."
    with FakeChatServer(reply=lambda body: continuation) as server:
        policy = openai_policy(server)
        policy.prefill = True
        [think] = policy.write(requests_for(1))
        [body] = server.chat_requests
    assert body["messages"][-1] == {"role": "assistant", "content": "To write mod0.py, I"}
    assert (body["continue_final_message"], body["add_generation_prompt"]) == (True, False)
    assert (think.source, think.text) == ("openai", "To write mod0.py, I" + continuation)
    assert build_policy(SimulationArguments(policy_backend="openai", policy_base_url=server.base_url,
                                            policy_prefill_opener=True, policy_api_key_env="")).prefill
