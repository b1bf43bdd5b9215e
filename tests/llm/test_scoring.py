"""The hf engine's scores are the model's own NLLs: checked against a plain forward pass on a tiny random Llama."""

from __future__ import annotations

import math

import pytest
import torch

from retrace.llm import PrefixState, ScoreRequest
from retrace.llm.hf_engine import HFEngine

CONTEXT = "def add(a, b):\n    \"\"\"Return the sum.\"\"\"\n    return a + b\n\n"
TARGET = "def mul(a, b):\n    return a * b\n\nprint(add(2, 3), mul(4, 5))\n"


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    """The shared tiny random Llama (embeddings sharpened so differences would show) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(tiny_llama_dir)


def reference_nll(model, tokenizer, context: str, target: str) -> tuple[float, int]:
    """NLL of the target tokens from one full forward pass over context + target (no window)."""
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    tgt = tokenizer(target, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + tgt])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1)[0]
    positions = torch.arange(len(ctx) - 1, len(ctx) + len(tgt) - 1)
    picked = logp[positions, torch.tensor(tgt)]
    return float(-picked.double().sum()), len(tgt)


def test_matches_plain_forward(tiny):
    model, tokenizer = tiny
    scorer = HFEngine(model, tokenizer, max_context_tokens=256, max_chunk_tokens=256)
    [score] = scorer.score([ScoreRequest(CONTEXT, TARGET)])
    expected, n = reference_nll(model, tokenizer, CONTEXT, TARGET)
    assert score.n_tokens == n
    assert score.nll_sum == pytest.approx(expected, rel=1e-5)
    assert score.mean == pytest.approx(expected / n, rel=1e-5)
    assert score.mean > 0.5  # not a degenerate model


def test_batched_equals_unbatched(tiny):
    model, tokenizer = tiny
    requests = [(CONTEXT, TARGET), ("x = 1\n", TARGET), (CONTEXT * 3, "y = 2\n"), ("", "import os\n"),
                (TARGET, CONTEXT)]
    one = HFEngine(model, tokenizer, max_context_tokens=128, max_chunk_tokens=32, batch_size=1)
    many = HFEngine(model, tokenizer, max_context_tokens=128, max_chunk_tokens=32, batch_size=5)
    for a, b in zip(one.score(requests), many.score(requests)):
        assert a.n_tokens == b.n_tokens
        assert a.nll_sum == pytest.approx(b.nll_sum, rel=1e-4, abs=1e-4)
    assert one.tokens_forwarded == many.tokens_forwarded  # padding is not counted


def test_chunked_equals_unchunked_when_window_covers_all(tiny):
    model, tokenizer = tiny
    whole = HFEngine(model, tokenizer, max_context_tokens=256, max_chunk_tokens=256)
    chunked = HFEngine(model, tokenizer, max_context_tokens=256, max_chunk_tokens=5, batch_size=3)
    [a], [b] = whole.score([(CONTEXT, TARGET)]), chunked.score([(CONTEXT, TARGET)])
    assert a.n_tokens == b.n_tokens > 5
    assert a.nll_sum == pytest.approx(b.nll_sum, rel=1e-4)


def test_window_cuts_context_from_the_left(tiny):
    """With C context tokens, a one-token-chunk score equals the reference on the last C tokens only."""
    model, tokenizer = tiny
    scorer = HFEngine(model, tokenizer, max_context_tokens=8, max_chunk_tokens=4)
    ctx = tokenizer(CONTEXT, add_special_tokens=False)["input_ids"]
    tgt = tokenizer(TARGET, add_special_tokens=False)["input_ids"][:6]
    [score] = scorer.score_ids([(ctx, tgt)])
    expected = 0.0
    for start in (0, 4):  # chunks of 4 target tokens, each seeing the last 8 tokens before it
        seen = (ctx + tgt[:start])[-8:]
        chunk = tgt[start:start + 4]
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([seen + chunk])).logits.float(), -1)[0]
        expected -= sum(float(logp[len(seen) - 1 + j, t]) for j, t in enumerate(chunk))
    assert score.n_tokens == 6
    assert score.nll_sum == pytest.approx(expected, rel=1e-5)


def test_target_tokens_do_not_depend_on_context(tiny):
    model, tokenizer = tiny
    scorer = HFEngine(model, tokenizer, max_context_tokens=64, max_chunk_tokens=64)
    scores = scorer.score([("abc", TARGET), ("def foo", TARGET), ("", TARGET)], max_target_tokens=7)
    assert {s.n_tokens for s in scores} == {7}


def test_empty_target_and_long_context_tail(tiny):
    model, tokenizer = tiny
    scorer = HFEngine(model, tokenizer, max_context_tokens=16, max_chunk_tokens=16)
    [empty] = scorer.score([(CONTEXT, "")])
    assert empty.n_tokens == 0 and math.isnan(empty.mean)
    long_text = CONTEXT * 200  # longer than the tail the scorer tokenises
    assert scorer.encode_context(long_text) == tokenizer(long_text, add_special_tokens=False)["input_ids"][-16:]


def test_window_larger_than_model_is_refused_and_default_windows_fit(tiny):
    model, tokenizer = tiny
    with pytest.raises(ValueError, match="positions"):
        HFEngine(model, tokenizer, max_context_tokens=800, max_chunk_tokens=400)  # > 1024 positions
    default = HFEngine(model, tokenizer)
    assert (default.max_context_tokens, default.max_chunk_tokens) == (512, 512)  # together the 1024 positions


def test_full_logits_path_agrees_and_training_mode_is_restored(tiny):
    """Models with post-processed logits (soft-capping) take the full-forward path: same numbers here."""
    model, tokenizer = tiny
    scorer = HFEngine(model, tokenizer, max_context_tokens=64, max_chunk_tokens=16, batch_size=2)
    requests = [(CONTEXT, TARGET), ("", "x = 1\n")]
    fast = scorer.score(requests)
    scorer._uses_plain_head = lambda: False
    full = scorer.score(requests)
    for a, b in zip(fast, full):
        assert a.nll_sum == pytest.approx(b.nll_sum, rel=1e-5)
    model.train()
    try:
        scorer.score(requests)
        assert model.training
    finally:
        model.eval()


def test_shared_prefix_equals_independent_scores(tiny):
    """One prefix forwarded once, many (middle, target) rows after it: the same numbers as scoring each alone."""
    model, tokenizer = tiny
    enc = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    prefix = enc(CONTEXT)
    rows = [(enc("# next\n"), enc(TARGET)), ([], enc(TARGET)), (enc("# a longer middle part\n" * 3), enc("y = 2\n")),
            (enc("x"), []), (enc("# z\n"), enc(TARGET))]
    scorer = HFEngine(model, tokenizer, max_context_tokens=512, max_chunk_tokens=512, batch_size=2)
    state = scorer.encode_prefix(prefix)
    assert isinstance(state, PrefixState) and state.ids == list(scorer.special_prefix) + prefix
    assert state.cache is not None  # the prefix's keys and values, reused by every row
    assert scorer.tokens_forwarded == len(prefix)
    shared = scorer.score_after_prefix(state, rows, token_nlls=True)
    assert scorer.tokens_forwarded == len(prefix) + sum(len(m) + len(t) for m, t in rows if t)
    alone = scorer.score_ids([(prefix + m, t) for m, t in rows])
    for a, b, (_, target) in zip(shared, alone, rows):
        assert a.n_tokens == b.n_tokens == len(target)
        assert a.nll_sum == pytest.approx(b.nll_sum, rel=1e-5, abs=1e-5)
        assert sum(a.token_nlls) == pytest.approx(a.nll_sum)
    expected, _ = reference_nll(model, tokenizer, CONTEXT, TARGET)
    assert shared[1].nll_sum == pytest.approx(expected, rel=1e-5)  # empty middle: first token from the prefix
    scorer._uses_plain_head = lambda: False  # the full-logits path (soft-capped heads) gives the same numbers
    full = scorer.score_after_prefix(scorer.encode_prefix(prefix), rows)
    for a, b in zip(shared, full):
        assert a.nll_sum == pytest.approx(b.nll_sum, rel=1e-5, abs=1e-5)


def test_shared_prefix_refuses_rows_beyond_the_positions(tiny):
    model, tokenizer = tiny
    scorer = HFEngine(model, tokenizer, max_context_tokens=512, max_chunk_tokens=512)
    state = scorer.encode_prefix([5] * 1000)
    with pytest.raises(ValueError, match="positions"):
        scorer.score_after_prefix(state, [([], [7] * 30)])
