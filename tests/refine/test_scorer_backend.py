"""The refine scorer's engine keys, and the vllm engine's scoring logic on a stand-in `vllm.LLM` (no vLLM needed).

The stand-in mimics what `vllm.LLM.generate` does with `prompt_logprobs=0`: prefix caching in full blocks
(a hit never covers the last prompt token), log-probabilities only for the positions it computed and
garbage before them, `num_cached_tokens` on each output. Its numbers come from the tiny Llama's plain
forward pass, so VLLMEngine must reproduce HFEngine exactly. The real engine is in
tests/llm/test_vllm_scoring_slow.py.
"""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest
import torch
from refine_trajectory import APP, UTIL, make_trajectory

from retrace.llm.hf_engine import HFEngine
from retrace.refine import (
    RefineArguments,
    StepScorer,
    StructuralProposer,
    build_step_scorer,
    refine_trajectories,
)

BLOCK = 4


class FakeLLM:
    """Just enough of `vllm.LLM` for VLLMEngine's scoring, backed by a transformers model."""

    def __init__(self, model, max_model_len: int):
        self.model = model
        self.llm_engine = SimpleNamespace(model_config=SimpleNamespace(max_model_len=max_model_len, model="fake"))
        self.blocks: set[tuple[int, ...]] = set()
        self.prompt_lengths: list[int] = []

    def generate(self, prompts, params, use_tqdm=False):
        assert params.max_tokens == 1 and params.detokenize is False
        outputs = []
        for prompt in prompts:
            ids = prompt["prompt_token_ids"]
            assert len(ids) < self.llm_engine.model_config.max_model_len
            self.prompt_lengths.append(len(ids))
            hit = 0
            if not params.skip_reading_prefix_cache:
                while hit + BLOCK <= len(ids) - 1 and tuple(ids[:hit + BLOCK]) in self.blocks:
                    hit += BLOCK
            self.blocks.update(tuple(ids[:end]) for end in range(BLOCK, len(ids) + 1, BLOCK))
            plp = None
            if params.prompt_logprobs is not None:
                assert params.prompt_logprobs == 0
                with torch.no_grad():
                    logp = torch.log_softmax(self.model(input_ids=torch.tensor([ids])).logits.float(), -1)[0]
                # Positions the engine did not compute hold garbage, here a plausible-looking entry.
                plp = [None] + [{ids[q]: SimpleNamespace(logprob=float(logp[q - 1, ids[q]]) if q - 1 >= hit
                                                         else -0.25)} for q in range(1, len(ids))]
            outputs.append(SimpleNamespace(prompt_logprobs=plp, num_cached_tokens=hit))
        return outputs


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.SamplingParams = lambda **kw: SimpleNamespace(**{"prompt_logprobs": None,
                                                             "skip_reading_prefix_cache": None, **kw})
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


@pytest.fixture(scope="module")
def tiny(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(tiny_llama_dir)


def vllm_scorer(tiny, **kw):
    from retrace.llm.vllm_engine import VLLMEngine

    model, tokenizer = tiny
    # max_model_len - 1 prompt positions: the same limit as the HF model's positions
    return VLLMEngine(FakeLLM(model, model.config.max_position_embeddings + 1), tokenizer, **kw)


def test_backend_key_default_and_validation():
    assert RefineArguments().scorer_backend == "hf"
    assert RefineArguments(scorer_backend="vllm").scorer_backend == "vllm"
    assert RefineArguments(scorer_backend="openai", scorer_model="", scorer_tokenizer="x").scorer_backend == "openai"
    with pytest.raises(ValueError, match="key 'scorer_backend': unknown engine 'tgi'"):
        RefineArguments(scorer_backend="tgi")
    with pytest.raises(ValueError, match="key 'scorer_tokenizer'"):
        RefineArguments(scorer_backend="openai", scorer_model="")


def test_clear_import_error_without_vllm(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    with pytest.raises(ImportError, match="needs vLLM.*use the openai engine, or use hf"):
        build_step_scorer(RefineArguments(scorer_backend="vllm"))


def test_scores_equal_hf(fake_vllm, tiny):
    model, tokenizer = tiny
    hf = HFEngine(model, tokenizer, max_context_tokens=64, max_chunk_tokens=16, batch_size=3)
    vl = vllm_scorer(tiny, max_context_tokens=64, max_chunk_tokens=16)
    pairs = [(UTIL, APP), ("", "x = 1\n"), ("def f():\n", "    return 2\n"), (UTIL, "")]
    for got, want in zip(vl.score(pairs), hf.score(pairs)):
        assert got.n_tokens == want.n_tokens
        assert got.nll_sum == pytest.approx(want.nll_sum, rel=1e-5, abs=1e-5)


def test_prefix_rows_equal_hf_and_use_the_cache(fake_vllm, tiny):
    model, tokenizer = tiny
    hf = HFEngine(model, tokenizer, max_context_tokens=128, max_chunk_tokens=1, batch_size=2)
    vl = vllm_scorer(tiny, max_context_tokens=128, max_chunk_tokens=1)
    prefix = hf.encode_context(UTIL)[-50:]  # not a multiple of BLOCK: the rows recompute its tail
    target = hf.encode_target(APP)[:40]
    rows = [(hf.encode_target(f"<think>\nidea {i}\n</think>\n"), target) for i in range(3)] + [([], target),
                                                                                                ([5, 6], [])]
    want = hf.score_after_prefix(hf.encode_prefix(prefix), rows, token_nlls=True)
    state = vl.encode_prefix(prefix)
    assert state.ids == list(vl.special_prefix) + prefix
    got = vl.score_after_prefix(state, rows, token_nlls=True)
    for g, w in zip(got, want):
        assert g.n_tokens == w.n_tokens
        assert g.token_nlls == pytest.approx(w.token_nlls, abs=1e-4)
    assert got[-1].n_tokens == 0 and got[-1].token_nlls == ()
    assert vl.tokens_cached >= 4 * 48 and vl.rescored == 0
    lengths = vl.llm.prompt_lengths
    assert vl.tokens_forwarded == sum(lengths) - vl.tokens_cached
    assert vl.tokens_forwarded <= len(state.ids) + sum(n - 48 for n in lengths[1:])
    # The same sequences again: the cache now covers their targets, so they are scored with it off.
    again = vl.score_after_prefix(state, rows[:2] + rows[:1], token_nlls=True)
    assert vl.rescored == 2  # identical rows are sent once
    for a, w in zip(again, [want[0], want[1], want[0]]):
        assert a.token_nlls == pytest.approx(w.token_nlls, abs=1e-4)
    with pytest.raises(ValueError, match="positions"):
        vl.score_after_prefix(state, [([1] * 2000, [2])])


def test_refine_search_on_vllm_backend_equals_hf(fake_vllm, tiny):
    """The whole search with StepScorer on VLLMEngine: the same NLLs, hence the same decisions, as on HF."""
    model, tokenizer = tiny
    args = RefineArguments(refine=True, refine_max_context_tokens=128)
    runs = []
    for scorer in (HFEngine(model, tokenizer, max_context_tokens=128, max_chunk_tokens=1, batch_size=3),
                   vllm_scorer(tiny, max_context_tokens=128, max_chunk_tokens=1)):
        step_scorer = StepScorer(scorer, max_context_tokens=128)
        assert step_scorer.limit == model.config.max_position_embeddings
        out, stats = refine_trajectories([make_trajectory("calc")], args, StructuralProposer(), step_scorer)
        runs.append(([s.search for s in out[0].steps if s.search is not None], stats))
    (hf_logs, hf_stats), (vl_logs, vl_stats) = runs
    assert len(hf_logs) == len(vl_logs) > 0
    for h, v in zip(hf_logs, vl_logs):
        assert v.incumbent_nll == pytest.approx(h.incumbent_nll, abs=1e-4)
        assert [c.accepted for c in v.candidates] == [c.accepted for c in h.candidates]
    assert vl_stats.unique_tokens == hf_stats.unique_tokens
