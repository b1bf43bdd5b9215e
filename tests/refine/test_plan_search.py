"""Plan search (`refine_plan`): its promises on the tiny random Llama, and on a scripted scorer for exact control."""

from __future__ import annotations

import json

import pytest
import torch
from refine_trajectory import APP, PLAN, PLAN_RECORD, UTIL, make_trajectory
from test_plan_proposers import ORDER, entries

from retrace.data import Trajectory, read_documents, trajectory_to_document
from retrace.data.export import export_repository
from retrace.data.viewer.load import StepView
from retrace.data.viewer.page import render_step
from retrace.llm.hf_engine import HFEngine
from retrace.llm.scoring import TargetScore
from retrace.refine import (
    PlanScorer,
    RefineArguments,
    StepScorer,
    StructuralProposer,
    collect_refine_stats,
    no_search_trajectory,
    plan_block,
    plot_refine_stats,
    refine_trajectories,
)

TARGET_TOKENS = 24


@pytest.fixture(scope="module")
def tiny_scorer(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32).eval()
    return HFEngine(model, AutoTokenizer.from_pretrained(tiny_llama_dir), max_context_tokens=128,
                    max_chunk_tokens=1, batch_size=3)


def args(**kw) -> RefineArguments:
    return RefineArguments(**{"refine": True, "refine_max_context_tokens": 128, "refine_plan": True,
                              "refine_plan_target_tokens": TARGET_TOKENS, **kw})


@pytest.fixture(scope="module")
def refined(tiny_scorer):
    """Two repositories: plans, then Thinks, refined with the structural proposer and the tiny model."""
    trajectories = [make_trajectory("calc"), make_trajectory("calc2")]
    scorer = StepScorer(tiny_scorer, max_context_tokens=128)
    out, stats = refine_trajectories(trajectories, args(), StructuralProposer(), scorer)
    return out, stats, scorer


def plan_step(traj):
    [plan] = [s for s in traj.steps if s.kind == "plan"]
    return plan


def test_plan_incumbent_never_rises_accepted_is_argmin_and_files_stay(refined):
    trajectories, stats, _ = refined
    assert stats.plan.steps == 2 and stats.summary.steps == 6  # plans counted apart from Thinks
    assert stats.plan.scored > 0 and stats.plan.accepted > 0
    for traj in trajectories:
        plan = plan_step(traj)
        log = plan.search
        assert log.kind == "plan" and log.original == PLAN and log.original_plan == PLAN_RECORD
        assert log.target_files == ORDER and log.target_tokens == 2 * TARGET_TOKENS
        nll = log.incumbent_nll
        assert len(nll) == 4 and all(b <= a for a, b in zip(nll, nll[1:]))
        for it in range(3):
            scored = [c for c in log.candidates if c.iteration == it and c.nll is not None]
            assert scored, it  # the structural proposer still has new plans at the third iteration
            accepted = [c for c in scored if c.accepted]
            assert len(accepted) <= 1
            if accepted:
                assert accepted[0].nll == min(c.nll for c in scored)
                assert accepted[0].nll < nll[it] and nll[it + 1] == accepted[0].nll
            else:
                assert nll[it + 1] == nll[it] and all(c.nll >= nll[it] for c in scored)
        accepted = [c.text for c in log.candidates if c.accepted]
        assert plan.content == (accepted[-1] if accepted else PLAN) == plan.plan.render()  # record and text agree
        assert plan.plan.paths == traj.order and [e.needs for e in plan.plan.entries] == [(), ("util.py",)]
        for text in [plan.content] + [c.text for c in log.candidates]:
            assert entries(text) == traj.order  # the graph's file list, in development order, always
        assert isinstance(log.baseline_nll, float) and log.unhelpful == (not nll[-1] < log.baseline_nll)


def test_thinks_are_searched_after_the_refined_plan(refined, tiny_scorer):
    """The first Think's prefix holds the refined plan: its logged incumbent NLL is recomputed with it."""
    trajectories, _, _ = refined
    traj = trajectories[0]
    think = traj.steps[3]
    text = trajectory_to_document(traj).text
    prefix = text[:text.index("<think>\n" + think.content)]
    assert plan_block(plan_step(traj).content) in prefix
    scorer = StepScorer(tiny_scorer, max_context_tokens=128)
    step = scorer.begin(prefix, "util.py", UTIL, think.content)
    [score] = scorer.score(step, [think.content])
    assert score.mean == pytest.approx(think.search.incumbent_nll[-1], rel=1e-5)


def test_plan_nll_equals_a_plain_forward_pass(refined, tiny_scorer):
    """The documented target, by hand: the first tokens of each file after the plan, given the whole prefix."""
    trajectories, _, _ = refined
    traj = trajectories[0]
    scored_with = no_search_trajectory(traj)  # the Thinks as they were while the plan was searched
    plan_step(scored_with).content = plan_step(traj).content
    segments = trajectory_to_document(scored_with).segments
    at = next(i for i, s in enumerate(segments) if s.kind == "plan")
    tok = tiny_scorer.tokenizer

    def ids(text):
        return tok(text, add_special_tokens=False)["input_ids"]

    prefix = tiny_scorer.encode_context("".join(s.text for s in segments[:at]))[-128:]
    sequence = list(tiny_scorer.special_prefix) + prefix + ids(segments[at].text)
    positions = []
    for seg in segments[at + 1:]:
        seg_ids = ids(seg.text)
        if seg.kind == "payload":
            positions += range(len(sequence), len(sequence) + TARGET_TOKENS)
        sequence += seg_ids
        if seg.kind == "payload" and seg.path == "app.py":
            break
    with torch.no_grad():
        logp = torch.log_softmax(tiny_scorer.model(input_ids=torch.tensor([sequence])).logits.float(), -1)[0]
    expected = -sum(float(logp[p - 1, sequence[p]]) for p in positions) / len(positions)
    assert min(plan_step(traj).search.incumbent_nll) == pytest.approx(expected, rel=1e-4)


def test_plan_stats_recomputed_from_disk_plot_and_viewer(refined, tmp_path):
    trajectories, stats, _ = refined
    again = collect_refine_stats([Trajectory.from_dict(json.loads(json.dumps(t.to_dict()))) for t in trajectories])
    assert again.plan.to_dict() == stats.plan.to_dict() and again.summary.to_dict() == stats.summary.to_dict()
    assert set(again.plan_per_repo) == {"calc", "calc2"} and again.to_dict()["plan"]["steps"] == 2
    assert trajectories[0].meta["refine"]["plan_stats"]["steps"] == 1
    assert stats.plan.nll[-1] <= stats.plan.nll[0] and stats.plan.think_chars[-1] > stats.plan.think_chars[0]
    path = plot_refine_stats(stats, tmp_path / "refine.png")
    width = int.from_bytes(path.read_bytes()[16:20], "big")
    assert width == int(13.5 * 120)  # three panels: Think NLL, Think length, plan NLL
    view = StepView(plan_step(trajectories[0]), [])
    page = render_step(view)
    log = plan_step(trajectories[0]).search
    assert f"search log: {len(log.candidates)} candidates" in page and "kind: plan" in page


def test_export_keeps_the_original_plan_in_the_no_search_baseline(refined, tmp_path):
    trajectories, _, _ = refined
    traj = trajectories[0]
    export_repository(tmp_path, "train", traj, {"util.py": UTIL, "app.py": APP}, raw_baseline=False,
                      no_search=no_search_trajectory(traj))
    [baseline] = read_documents(tmp_path / "baselines" / "no_search")
    [document] = read_documents(tmp_path / "documents")
    plans = [[s.text for s in d.segments if s.kind == "plan"] for d in (baseline, document)]
    assert plans[0] == [plan_block(PLAN)] and plans[1] == [plan_block(plan_step(traj).content)] != plans[0]
    assert no_search_trajectory(traj).to_dict() == make_trajectory("calc").to_dict()


class ScriptedPlanScorer:
    """A PlanScorer stand-in: NLL 2.0 without a plan, else 3.0 - 0.01 per clause (';') of the plan, exactly."""

    def __init__(self):
        self.scored = []

    def begin(self, prefix_text, after, incumbent):
        return type("Scoring", (), {"target_positions": [0] * 8, "target_paths": ["util.py", "app.py"],
                                    "context_tokens": 0})()

    def fits(self, scoring, plan):
        return True

    def think_ids(self, text):
        return [] if text is None else text.split()

    def score(self, scoring, plans):
        self.scored += plans
        return [TargetScore(8 * (2.0 if p is None else 3.0 - 0.01 * p.count(";")), 8) for p in plans]


class SteppedScorer(ScriptedPlanScorer):
    """Every candidate ties with the incumbent: nothing may be accepted."""

    def score(self, scoring, plans):
        self.scored += plans
        return [TargetScore(8 * (2.0 if p is None else 3.0), 8) for p in plans]


def test_ties_are_not_accepted_and_an_unhelpful_plan_is_kept():
    recipe = args(refine_keep_unhelpful=False, refine_iterations=2)
    out, stats = refine_trajectories([make_trajectory()], recipe, StructuralProposer(), _NoThinkScorer(),
                                     plan_scorer=SteppedScorer())
    log = plan_step(out[0]).search
    assert not any(c.accepted for c in log.candidates) and log.incumbent_nll == [3.0, 3.0, 3.0]
    assert log.unhelpful and not log.dropped and plan_step(out[0]).content == PLAN  # flagged, never dropped
    assert stats.plan.unhelpful == 1 and stats.plan.dropped == 0


def test_leaking_plan_is_rejected_before_scoring():
    pasted = " ".join(APP.split("\n", 7)[7].split())  # main's body, on one plan line

    class Paster:
        name = "paster"
        deterministic = True

        def propose(self, requests):
            return [[] for _ in requests]

        def propose_plans(self, requests):
            return [[f"2. app.py: {pasted}", "1. util.py: helpers with a running total; honest prose"]
                    for _ in requests]

    scorer = ScriptedPlanScorer()
    out, stats = refine_trajectories([make_trajectory()], args(refine_iterations=1, refine_leak_ngram=6),
                                     Paster(), _NoThinkScorer(), plan_scorer=scorer)
    log = plan_step(out[0]).search
    [leak] = [c for c in log.candidates if c.leak]
    assert leak.leak == "ngram" and leak.nll is None and not leak.accepted and pasted in leak.text
    assert stats.plan.leaks == {"ngram": 1} and stats.plan.scored == 1
    assert all(pasted not in p for p in scorer.scored if p) and pasted not in plan_step(out[0]).content
    assert plan_step(out[0]).content.splitlines()[1] == "1. util.py: helpers with a running total; honest prose"


def test_unsearchable_plans_are_skipped_counted_and_thinks_still_searched(caplog):
    stale, bare = make_trajectory("stale"), make_trajectory("bare")
    plan_step(stale).content = "1. util.py: helpers.\n2. app.py: entry point."  # edited: not its record's text
    plan_step(bare).plan = None
    out, stats = refine_trajectories([stale, bare], args(refine_iterations=1), StructuralProposer(),
                                     _NoThinkScorer(), plan_scorer=ScriptedPlanScorer())
    assert stats.plan_skipped == {"stale_record": 1, "no_record": 1} and stats.plan.steps == 0
    assert stats.summary.steps == 6
    assert out[0].meta["refine"]["plan_skipped"] == "stale_record" and plan_step(out[0]).search is None
    assert "plan not searched (no_record)" in caplog.text
    assert collect_refine_stats(out).plan_skipped == {"stale_record": 1, "no_record": 1}

    class ThinkOnly:
        name = "think-only"
        deterministic = True

        def propose(self, requests):
            return [[] for _ in requests]

    with pytest.raises(ValueError, match="propose_plans"):
        refine_trajectories([make_trajectory()], args(), ThinkOnly(), _NoThinkScorer())


class _NoThinkScorer:
    """A StepScorer stand-in for the Think side of these tests: a fixed NLL, so only the plan's numbers move."""

    tokens_forwarded = unique_tokens = 0
    seconds = 0.0

    def begin(self, prefix_text, path, payload, incumbent, between=None):
        return type("Step", (), {"target_ids": [0] * 4, "token_lines": [], "payload": payload,
                                 "context_tokens": 0})()

    def fits(self, step, think):
        return True

    def think_ids(self, text):
        return [] if text is None else text.split()

    def score(self, step, thinks):
        return [TargetScore(4.0, 4) for _ in thinks]


def test_plan_scorer_cuts_targets_to_the_window(tiny_scorer):
    segments = trajectory_to_document(make_trajectory()).segments
    at = next(i for i, s in enumerate(segments) if s.kind == "plan")
    before, after = "".join(s.text for s in segments[:at]), segments[at + 1:]
    first_payload = next(i for i, s in enumerate(after) if s.kind == "payload")
    lead = sum(len(tiny_scorer.encode_target(s.text)) for s in after[:first_payload])

    def scorer(window):
        return PlanScorer(StepScorer(tiny_scorer, max_context_tokens=128), target_files=4, target_tokens=64,
                          window_tokens=window)

    scoring = scorer(lead + 10).begin(before, after, PLAN)
    assert scoring.target_paths == ["util.py"] and scoring.target_positions == list(range(lead, lead + 10))
    assert len(scoring.after_ids) == lead + 10  # util.py's head, cut by the window; app.py is out of reach
    assert scorer(lead).begin(before, after, PLAN) is None  # no payload token in reach: no target
    full = scorer(4096).begin(before, after, PLAN)
    assert full.target_paths == ORDER and len(full.target_positions) == 128
