"""The openai engine scores over real HTTP from a server's prompt log-probabilities, with the hf engine's numbers.

The local server (tests/openai_server.py) answers scoring requests in vLLM's format, its log-probabilities from
one plain forward pass of the tiny Llama per request; the hf engine scores the same model in this process
with its own batching, windows and key/value cache. Both in float32, so they agree to float32 rounding: the
tolerance is 1e-5 relative (or 1e-5 nats absolute near zero). Measured: sums equal or within 1.2e-5 nats of
~1,570 nats, per-token NLLs (~30 nats each on this sharpened model) within 1.2e-5 nats, a few float32 ulps.
"""

from __future__ import annotations

import pytest
import torch
from openai_server import FakeChatServer

from retrace.llm import EngineConfig, ScoreRequest
from retrace.llm.hf_engine import HFEngine
from retrace.llm.openai_engine import OpenAIEngine, ScoringFailed

CONTEXT = "def add(a, b):\n    \"\"\"Return the sum.\"\"\"\n    return a + b\n\n"
TARGET = "def mul(a, b):\n    return a * b\n\nprint(add(2, 3), mul(4, 5))\n"
REQUESTS = [(CONTEXT, TARGET), ("x = 1\n", TARGET), (CONTEXT * 3, "y = 2\n"), ("", "import os\n"), (TARGET, CONTEXT)]
TOL = {"rel": 1e-5, "abs": 1e-5}


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(tiny_llama_dir)


def plain_prompt_logprobs(model):
    """What a vLLM server computes for `prompt_logprobs`: log p(ids[p] | ids[:p]) for p >= 1, one forward pass."""

    def score(ids: list[int]) -> list[float]:
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits.float(), dim=-1)[0]
        return logp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].tolist()

    return score


def served(server: FakeChatServer, tiny_llama_dir, *, windows: dict | None = None, **keys) -> OpenAIEngine:
    config = {"base_url": server.base_url, "model": server.model, "tokenizer": str(tiny_llama_dir),
              "max_model_len": 1024, "concurrency": 4, "timeout_s": 5.0, "max_retries": 2, "ready_timeout_s": 5.0,
              "api_key_env": "", **keys}
    return OpenAIEngine(EngineConfig(backend="openai", **config), backoff_s=0.01, poll_s=0.05, **(windows or {}))


def assert_same_scores(got, expected) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.n_tokens == b.n_tokens
        assert a.nll_sum == pytest.approx(b.nll_sum, **TOL)


def test_served_scores_equal_the_hf_engine(tiny, tiny_llama_dir):
    """score() and score_ids() with windows that cut contexts and chunk targets: the same tokens, the same NLLs."""
    model, tokenizer = tiny
    enc = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    with FakeChatServer(score=plain_prompt_logprobs(model)) as server:
        for windows in ({"max_context_tokens": 256, "max_chunk_tokens": 256},
                        {"max_context_tokens": 128, "max_chunk_tokens": 32},
                        {"max_context_tokens": 8, "max_chunk_tokens": 4}):
            local = HFEngine(model, tokenizer, batch_size=3, **windows)
            remote = served(server, tiny_llama_dir, windows=windows)
            sent = len(server.scoring_requests)
            scores = remote.score([ScoreRequest(c, t) for c, t in REQUESTS])
            assert_same_scores(scores, local.score(REQUESTS))
            assert all(s.n_tokens > 0 for s in scores) and scores[0].mean > 0.5  # not a degenerate model
            # Every distinct window of the hf engine is one request, identical windows (later chunks that see
            # only target tokens) sent once.
            pairs = [(local.encode_context(c), local.encode_target(t)) for c, t in REQUESTS]
            windows_ids = {tuple(p.input_ids) for i, (c, t) in enumerate(pairs) for p in local._pieces(i, c, t)}
            assert sorted(map(tuple, server.scoring_requests[sent:])) == sorted(windows_ids)
            assert remote.tokens_forwarded == sum(map(len, windows_ids)) <= local.tokens_forwarded
            assert_same_scores(remote.score(REQUESTS, max_target_tokens=7), local.score(REQUESTS, max_target_tokens=7))
            pairs = [(enc(CONTEXT), enc(TARGET)), ([], enc("import os\n")), (enc(TARGET)[:5], enc(CONTEXT))]
            assert_same_scores(remote.score_ids(pairs), local.score_ids(pairs))
        body = server.chat_requests[0]
        assert (body["max_tokens"], body["temperature"], body["prompt_logprobs"]) == (1, 0.0, 0)
        assert body["model"] == "test-model" and all(isinstance(t, int) for t in body["prompt"])
        assert remote.usage.requests > 0 and remote.usage.failed == 0


def test_served_prefix_rows_equal_the_hf_engine_token_by_token(tiny, tiny_llama_dir):
    model, tokenizer = tiny
    enc = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    prefix = enc(CONTEXT)
    rows = [(enc("# next\n"), enc(TARGET)), ([], enc(TARGET)), (enc("# a longer middle part\n" * 3), enc("y = 2\n")),
            (enc("x"), []), (enc("# z\n"), enc(TARGET))]
    local = HFEngine(model, tokenizer, max_context_tokens=512, max_chunk_tokens=511, batch_size=2)
    expected = local.score_after_prefix(local.encode_prefix(prefix), rows, token_nlls=True)
    with FakeChatServer(score=plain_prompt_logprobs(model)) as server:
        remote = served(server, tiny_llama_dir, windows={"max_context_tokens": 512, "max_chunk_tokens": 511})
        state = remote.encode_prefix(prefix)
        assert state.ids == local.encode_prefix(prefix).ids and server.chat_requests == []  # nothing sent yet
        got = remote.score_after_prefix(state, rows, token_nlls=True)
        # One request per row with a target, each the whole sequence prefix + middle + target.
        assert sorted(server.scoring_requests) == sorted(state.ids + m + t for m, t in rows if t)
    for a, b, (_, target) in zip(got, expected, rows):
        assert a.n_tokens == b.n_tokens == len(target)
        assert a.nll_sum == pytest.approx(b.nll_sum, **TOL)
        assert len(a.token_nlls) == len(b.token_nlls)
        assert list(a.token_nlls) == pytest.approx(list(b.token_nlls), **TOL)
    assert got[3].token_nlls == () and got[3].nll_sum == 0.0  # an empty target is not sent
    with pytest.raises(ValueError, match="positions"):  # prefix + row must fit the server's max_model_len
        remote.score_after_prefix(remote.encode_prefix([5] * 1000), [([], [7] * 30)])


def test_duplicate_sequences_in_one_call_are_sent_once(tiny, tiny_llama_dir):
    model, tokenizer = tiny
    enc = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    with FakeChatServer(score=plain_prompt_logprobs(model)) as server:
        remote = served(server, tiny_llama_dir, windows={"max_context_tokens": 512, "max_chunk_tokens": 511})
        a, b, c = remote.score([(CONTEXT, TARGET), ("x = 1\n", TARGET), (CONTEXT, TARGET)])
        assert len(server.scoring_requests) == 2 == len({tuple(p) for p in server.scoring_requests})
        assert a == c and a != b
        state = remote.encode_prefix(enc(CONTEXT))
        rows = [(enc("# a\n"), enc(TARGET)), (enc("# b\n"), enc(TARGET)), (enc("# a\n"), enc(TARGET))]
        first, second, third = remote.score_after_prefix(state, rows, token_nlls=True)
        assert len(server.scoring_requests) == 2 + 2
        assert first == third and first.token_nlls == third.token_nlls
        assert remote.tokens_forwarded == sum(len(p) for p in server.scoring_requests)


def test_a_server_without_prompt_logprobs_is_refused_in_one_line(tiny, tiny_llama_dir):
    with FakeChatServer(prompt_logprobs=False) as server:
        remote = served(server, tiny_llama_dir, concurrency=1)
        with pytest.raises(ScoringFailed) as error:
            remote.score(REQUESTS)
        message = str(error.value)
        assert "\n" not in message and "prompt log-probabilities" in message and server.base_url in message
        assert len(server.scoring_requests) <= len(REQUESTS)  # refused, not retried
        assert not any(k.startswith("retry:") for k in remote.usage.counts)


def test_a_scoring_request_that_fails_for_good_raises_rather_than_scoring(tiny, tiny_llama_dir):
    model, _ = tiny
    with FakeChatServer(score=plain_prompt_logprobs(model)) as server:
        remote = served(server, tiny_llama_dir, concurrency=1, max_retries=2)
        server.faults.extend(["500"] * 3)  # every try of the first request
        with pytest.raises(ScoringFailed, match=r"failed after retries \(http_500\)"):
            remote.score([(CONTEXT, TARGET)])
        assert remote.usage.counts["retry:http_500"] == 2 and remote.usage.counts["failed:http_500"] == 1
        server.faults.append("400")  # a client error: no retry, no score
        with pytest.raises(ScoringFailed, match=r"\(http_400\)"):
            remote.score([(CONTEXT, TARGET)])
        server.faults.extend(["malformed", "500"])  # transient faults are retried, then the real number
        [score] = remote.score([(CONTEXT, TARGET)])
        [expected] = HFEngine(model, remote.tokenizer).score([(CONTEXT, TARGET)])
        assert score.nll_sum == pytest.approx(expected.nll_sum, **TOL)
        assert remote.usage.counts["retry:malformed_json"] == 1 and remote.usage.counts["retry:http_500"] == 3
        assert [fault for _, fault in server.log] == ["500"] * 3 + ["400", "malformed", "500", "ok"]


def test_scoring_needs_a_tokenizer_here(tiny_llama_dir):
    with FakeChatServer() as server:
        remote = served(server, tiny_llama_dir, tokenizer="", model="")
        with pytest.raises(ScoringFailed, match="tokenizer"):
            remote.score([(CONTEXT, TARGET)])
        assert server.chat_requests == []
