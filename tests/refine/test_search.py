"""The search's promises, on the tiny random Llama (real numbers) and on a scripted scorer (exact control)."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from refine_trajectory import APP, UTIL, make_trajectory

from retrace.data import Trajectory, trajectory_to_document
from retrace.llm.hf_engine import HFEngine
from retrace.llm.scoring import TargetScore
from retrace.refine import (
    RefineArguments,
    StepScorer,
    StructuralProposer,
    collect_refine_stats,
    no_search_trajectory,
    plot_refine_stats,
    refine_trajectories,
    searchable_steps,
)
from retrace.refine.step_scorer import think_block, write_header


@pytest.fixture(scope="module")
def tiny_scorer(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    return HFEngine(model, AutoTokenizer.from_pretrained(tiny_llama_dir), max_context_tokens=128,
                    max_chunk_tokens=1, batch_size=3)


def args(**kw) -> RefineArguments:
    return RefineArguments(refine=True, refine_max_context_tokens=128, **kw)


@pytest.fixture(scope="module")
def refined(tiny_scorer):
    """Two repositories refined with the structural proposer and the tiny model as scorer."""
    trajectories = [make_trajectory("calc"), make_trajectory("calc2")]
    scorer = StepScorer(tiny_scorer, max_context_tokens=128)
    out, stats = refine_trajectories(trajectories, args(), StructuralProposer(), scorer)
    return out, stats, scorer


def logs(trajectories):
    return [s.meta["search"] for t in trajectories for s in t.steps if "search" in s.meta]


def test_incumbent_never_rises_and_accepted_is_argmin(refined):
    trajectories, stats, _ = refined
    found = logs(trajectories)
    assert len(found) == 4 and stats.summary.steps == 4
    assert stats.summary.scored > 0
    for log in found:
        nll = log["incumbent_nll"]
        assert len(nll) == 4  # before search + 3 iterations
        assert all(b <= a for a, b in zip(nll, nll[1:]))
        for it in range(3):
            scored = [c for c in log["candidates"] if c["iteration"] == it and c["nll"] is not None]
            accepted = [c for c in scored if c["accepted"]]
            assert len(accepted) <= 1
            if accepted:
                assert accepted[0]["nll"] == min(c["nll"] for c in scored)
                assert accepted[0]["nll"] < nll[it] and nll[it + 1] == accepted[0]["nll"]
            else:
                assert nll[it + 1] == nll[it]
                assert all(c["nll"] >= nll[it] for c in scored)
    # the final Think is the last accepted candidate
    for traj in trajectories:
        for step in traj.steps:
            if "search" in step.meta:
                accepted = [c["text"] for c in step.meta["search"]["candidates"] if c["accepted"]]
                assert step.content == (accepted[-1] if accepted else step.meta["search"]["original"])


def test_logged_nll_equals_a_plain_forward_pass(refined, tiny_scorer):
    """The refined document's payload NLL, recomputed by hand from the model's plain forward pass."""
    trajectories, _, _ = refined
    traj = trajectories[0]
    original = no_search_trajectory(traj)
    index = searchable_steps(original)[1]  # app.py: its prefix holds util.py's refined Think
    log = traj.steps[index].meta["search"]
    text = trajectory_to_document(traj).text
    cut = text.index(think_block(traj.steps[index].content))
    tok = tiny_scorer.tokenizer
    prefix = tok(text[:cut], add_special_tokens=False)["input_ids"][-128:]
    think = tok(think_block(traj.steps[index].content), add_special_tokens=False)["input_ids"]
    header = tok(write_header("app.py"), add_special_tokens=False)["input_ids"]
    target = tok(APP, add_special_tokens=False)["input_ids"]
    ids = prefix + think + header + target
    with torch.no_grad():
        logp = torch.log_softmax(tiny_scorer.model(input_ids=torch.tensor([ids])).logits.float(), -1)[0]
    first = len(ids) - len(target)
    expected = -sum(float(logp[first - 1 + j, t]) for j, t in enumerate(target)) / len(target)
    assert log["target_tokens"] == len(target)
    assert min(log["incumbent_nll"]) == pytest.approx(expected, rel=1e-4)


def test_prefix_reuse_equals_no_reuse(tiny_scorer):
    scorer = StepScorer(tiny_scorer, max_context_tokens=64)
    prefix = "<repository name=\"x\">\n" + UTIL * 2
    step = scorer.begin(prefix, "app.py", APP, "short")
    thinks = ["short", None, "a longer Think about the entry point\nand its loop", "x"]
    reused = scorer.score(step, thinks)
    tok = tiny_scorer.tokenizer
    prefix_ids = tiny_scorer.encode_context(prefix)[-64:]
    pairs = [(prefix_ids + scorer.think_ids(t) + tok(write_header("app.py"), add_special_tokens=False)["input_ids"],
              tok(APP, add_special_tokens=False)["input_ids"]) for t in thinks]
    plain = HFEngine(tiny_scorer.model, tok, max_context_tokens=512, max_chunk_tokens=512).score_ids(pairs)
    for a, b in zip(reused, plain):
        assert a.n_tokens == b.n_tokens
        assert a.nll_sum == pytest.approx(b.nll_sum, rel=1e-4)


def test_cost_accounting(refined):
    _, stats, scorer = refined
    assert stats.tokens_forwarded == stats.unique_tokens > 0  # nothing forwarded twice
    assert stats.forwarded_per_unique == 1.0
    assert scorer.rows_scored == 4 * 2 + stats.summary.scored  # incumbent + baseline per step, then candidates


def test_search_log_structure_and_stats(refined, tmp_path):
    trajectories, stats, _ = refined
    for log in logs(trajectories):
        assert set(log) >= {"original", "baseline_nll", "incumbent_nll", "incumbent_chars", "incumbent_tokens",
                            "candidates", "target_tokens", "unhelpful", "dropped"}
        assert len(log["incumbent_chars"]) == len(log["incumbent_tokens"]) == 4
        for entry in log["candidates"]:
            assert set(entry) >= {"iteration", "text", "chars", "nll", "n_tokens", "leak", "accepted"}
    assert set(stats.per_repo) == {"calc", "calc2"}
    assert trajectories[0].meta["refine"]["stats"]["steps"] == 2
    summary = stats.summary
    assert len(summary.nll) == len(summary.think_tokens) == 4
    assert summary.nll[-1] <= summary.nll[0] and summary.think_chars[-1] >= summary.think_chars[0]
    path = plot_refine_stats(stats, tmp_path / "refine.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stats.to_dict()["summary"]["acceptance_rate"] == summary.acceptance_rate


def test_no_search_variant_is_the_original(refined):
    trajectories, _, _ = refined
    restored = no_search_trajectory(trajectories[0])
    assert restored.to_dict() == make_trajectory("calc").to_dict()
    assert "search" in trajectories[0].steps[3].meta  # the refined one is untouched


class ScriptedScorer:
    """A StepScorer stand-in: NLL = 1.0 without Think, else 3.0 - 0.1 per line of the Think (never below 1.0 here)."""

    def __init__(self):
        self.tokens_forwarded = self.unique_tokens = 0
        self.seconds = 0.0

    def begin(self, prefix_text, path, payload, incumbent):
        return type("Step", (), {"target_ids": [0] * 10, "token_lines": [], "payload": payload})()

    def fits(self, step, think):
        return True

    def think_ids(self, text):
        return [] if text is None else text.split()

    def score(self, step, thinks):
        return [TargetScore(10 * (1.0 if t is None else 3.0 - 0.1 * len(t.splitlines())), 10) for t in thinks]


@pytest.mark.parametrize("keep", [True, False])
def test_unhelpful_thinks_are_flagged_then_kept_or_dropped(keep):
    trajectory = make_trajectory()
    n_steps = len(trajectory.steps)
    out, stats = refine_trajectories([trajectory], args(refine_keep_unhelpful=keep), StructuralProposer(),
                                     ScriptedScorer())
    assert stats.summary.unhelpful == 2  # a few added lines never reach the no-Think 1.0
    assert stats.summary.dropped == (0 if keep else 2)
    traj = out[0]
    assert len(traj.steps) == n_steps - (0 if keep else 2)
    again = collect_refine_stats([Trajectory.from_dict(json.loads(json.dumps(traj.to_dict())))])
    assert again.summary.to_dict() == stats.summary.to_dict()  # recomputable from the artifact on disk
    if not keep:
        assert [r["index"] for r in traj.meta["refine"]["dropped"]] == [3, 9]
        assert "Now I write" not in trajectory_to_document(traj).text
    assert no_search_trajectory(traj).to_dict() == make_trajectory().to_dict()


def test_pasting_proposer_is_stopped_by_the_guard():
    class Paster:
        name = "paster"

        def propose(self, requests):
            return [["Here is the file:\n" + (UTIL if r.path == "util.py" else APP), "I will write it."]
                    for r in requests]

    out, stats = refine_trajectories([make_trajectory()], args(refine_iterations=1), Paster(), ScriptedScorer())
    assert sum(stats.summary.leaks.values()) == 2  # util.py by the n-gram rule; app.py's facts split it: lines
    assert stats.summary.scored == 2
    for log in logs(out):
        pasted = [c for c in log["candidates"] if c["text"].startswith("Here is")]
        assert pasted[0]["leak"] in ("ngram", "lines") and pasted[0]["nll"] is None and not pasted[0]["accepted"]


def test_step_budget_and_in_place_update():
    trajectory = make_trajectory()
    before = copy.deepcopy(trajectory.to_dict())
    out, stats = refine_trajectories([trajectory], args(refine_max_steps_per_repo=1, refine_iterations=1),
                                     StructuralProposer(), ScriptedScorer())
    assert out[0] is trajectory and stats.summary.steps == 1
    assert "search" in trajectory.steps[3].meta and "search" not in trajectory.steps[9].meta
    assert no_search_trajectory(trajectory).to_dict() == before


def test_surprisal_guided_search_points_at_high_loss_definitions(tiny_scorer):
    scorer = StepScorer(tiny_scorer, max_context_tokens=128)
    out, stats = refine_trajectories([make_trajectory()], args(refine_surprisal_guided=True, refine_iterations=1,
                                                               refine_candidates=1), StructuralProposer(), scorer)
    for log in logs(out):
        [candidate] = log["candidates"]
        assert candidate["text"].split("\n\n")[1].startswith("Parts that need the most care:")
        assert "near line" in candidate["text"]
    assert scorer.rows_scored == 2 * 2 + 2  # incumbent and baseline first, then one candidate per step


def test_hot_lines_rank_payload_lines_by_loss(tiny_scorer):
    from retrace.refine.step_scorer import hot_lines

    scorer = StepScorer(tiny_scorer, max_context_tokens=64)
    step = scorer.begin("<repository>\n", "util.py", UTIL, "x")
    [score] = scorer.score(step, ["x"])
    lines = hot_lines(step, score, 3)
    assert len(lines) == 3 and lines[0][2] >= lines[1][2] >= lines[2][2]
    for number, text, _ in lines:
        assert UTIL.splitlines()[number - 1].strip()[:120] == text
    by_line = {}
    for line, nll in zip(step.token_lines, score.token_nlls):
        by_line[line] = by_line.get(line, 0.0) + nll
    assert lines[0][2] == pytest.approx(max(v for k, v in by_line.items() if UTIL.splitlines()[k - 1].strip()))
