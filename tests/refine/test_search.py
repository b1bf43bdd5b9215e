"""The search's promises, on the tiny random Llama (real numbers) and on a scripted scorer (exact control)."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from refine_trajectory import APP, UTIL, UTIL_FACTS, ScriptedScorer, make_trajectory

from retrace.data import Candidate, SearchLog, Step, Trajectory, trajectory_to_document
from retrace.llm.hf_engine import HFEngine
from retrace.refine import (
    RefineArguments,
    StepScorer,
    StructuralProposer,
    collect_refine_stats,
    no_search_trajectory,
    plot_refine_stats,
    refine_trajectories,
    search_targets,
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


def logs(trajectories) -> list[SearchLog]:
    return [s.search for t in trajectories for s in t.steps if s.search is not None]


def test_every_think_of_a_writing_sub_agent_is_searched_against_its_file():
    traj = make_trajectory()
    assert search_targets(traj) == [(3, 4), (7, 10), (9, 10)]  # app.py's Think before its Read, and before its Write
    assert searchable_steps(traj) == [3, 7, 9]


def test_incumbent_never_rises_and_accepted_is_argmin(refined):
    trajectories, stats, _ = refined
    found = logs(trajectories)
    assert len(found) == 6 and stats.summary.steps == 6
    assert [log.kind for log in found[:3]] == ["think", "think_read", "think"]
    assert [log.target_path for log in found[:3]] == ["util.py", "app.py", "app.py"]
    assert stats.by_kind["think_read"].steps == 2 and stats.by_kind["think"].steps == 4
    assert stats.summary.scored > 0
    for log in found:
        nll = log.incumbent_nll
        assert len(nll) == 4  # before search + 3 iterations
        assert all(b <= a for a, b in zip(nll, nll[1:]))
        for it in range(3):
            scored = [c for c in log.candidates if c.iteration == it and c.nll is not None]
            accepted = [c for c in scored if c.accepted]
            assert len(accepted) <= 1
            if accepted:
                assert accepted[0].nll == min(c.nll for c in scored)
                assert accepted[0].nll < nll[it] and nll[it + 1] == accepted[0].nll
            else:
                assert nll[it + 1] == nll[it]
                assert all(c.nll >= nll[it] for c in scored)
    # the final Think is the last accepted candidate
    for traj in trajectories:
        for step in traj.steps:
            if step.search is not None:
                accepted = [c.text for c in step.search.candidates if c.accepted]
                assert step.content == (accepted[-1] if accepted else step.search.original)


def test_logged_nll_equals_a_plain_forward_pass(refined, tiny_scorer):
    """The refined document's payload NLL, recomputed by hand from the model's plain forward pass."""
    trajectories, _, _ = refined
    traj = trajectories[0]
    original = no_search_trajectory(traj)
    index = searchable_steps(original)[2]  # app.py's Think before its Write: its prefix holds refined Thinks
    log = traj.steps[index].search
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
    assert log.target_tokens == len(target) and log.context_tokens == len(prefix)
    assert min(log.incumbent_nll) == pytest.approx(expected, rel=1e-4)


def test_the_think_before_the_reads_is_scored_through_them(refined, tiny_scorer):
    """By hand: the Think before app.py's Read, then the Read, the observation, the next Think, the payload."""
    trajectories, _, _ = refined
    traj = no_search_trajectory(trajectories[0])
    for i in (3, 7):  # the refined Thinks at the time app.py's first Think was searched
        traj.steps[i].content = trajectories[0].steps[i].content
    log = trajectories[0].steps[7].search
    segments = trajectory_to_document(traj).segments
    think_at = [i for i, s in enumerate(segments) if s.kind == "think"][1]
    payload_at = [i for i, s in enumerate(segments) if s.kind == "payload"][1]
    assert segments[think_at].text == think_block(traj.steps[7].content)
    tok = tiny_scorer.tokenizer

    def ids(text):
        return tok(text, add_special_tokens=False)["input_ids"]

    prefix = ids("".join(s.text for s in segments[:think_at]))[-128:]
    between = ids("".join(s.text for s in segments[think_at + 1:payload_at]))
    target = ids(APP)
    sequence = prefix + ids(segments[think_at].text) + between + target
    with torch.no_grad():
        logp = torch.log_softmax(tiny_scorer.model(input_ids=torch.tensor([sequence])).logits.float(), -1)[0]
    first = len(sequence) - len(target)
    expected = -sum(float(logp[first - 1 + j, t]) for j, t in enumerate(target)) / len(target)
    assert log.kind == "think_read" and log.target_path == "app.py"
    assert log.incumbent_nll[-1] == pytest.approx(expected, rel=1e-4)


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
    assert scorer.rows_scored == 6 * 2 + stats.summary.scored  # incumbent + baseline per step, then candidates


def test_search_log_structure_and_stats(refined, tmp_path):
    trajectories, stats, _ = refined
    for log in logs(trajectories):
        assert isinstance(log, SearchLog) and len(log.incumbent_chars) == len(log.incumbent_tokens) == 4
        assert all(isinstance(entry, Candidate) for entry in log.candidates)
        assert 0 < log.context_tokens <= 128
        data = json.loads(json.dumps(log.to_dict()))
        assert SearchLog.from_dict(data) == log  # the JSON of docs/formats.md round-trips
    assert set(stats.per_repo) == {"calc", "calc2"}
    assert trajectories[0].meta["refine"]["stats"]["steps"] == 3
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
    assert trajectories[0].steps[3].search is not None  # the refined one is untouched


@pytest.mark.parametrize("keep", [True, False])
def test_unhelpful_thinks_are_flagged_then_kept_or_dropped(keep):
    trajectory = make_trajectory()
    n_steps = len(trajectory.steps)
    out, stats = refine_trajectories([trajectory], args(refine_keep_unhelpful=keep), StructuralProposer(),
                                     ScriptedScorer())
    assert stats.summary.unhelpful == 3  # a few added lines never reach the no-Think 1.0
    assert stats.summary.dropped == (0 if keep else 3)
    traj = out[0]
    assert len(traj.steps) == n_steps - (0 if keep else 3)
    again = collect_refine_stats([Trajectory.from_dict(json.loads(json.dumps(traj.to_dict())))])
    assert again.summary.to_dict() == stats.summary.to_dict()  # recomputable from the artifact on disk
    if not keep:
        assert [r["index"] for r in traj.meta["refine"]["dropped"]] == [3, 7, 9]
        assert Step.from_dict(traj.meta["refine"]["dropped"][0]["step"]).grounding == UTIL_FACTS
        assert "Now I write" not in trajectory_to_document(traj).text
    assert no_search_trajectory(traj).to_dict() == make_trajectory().to_dict()


def test_pasting_proposer_is_stopped_by_the_guard():
    class Paster:
        name = "paster"
        deterministic = True

        def propose(self, requests):
            return [["Here is the file:\n" + (UTIL if r.path == "util.py" else APP), "I will write it."]
                    for r in requests]

    out, stats = refine_trajectories([make_trajectory()], args(refine_iterations=1), Paster(), ScriptedScorer())
    assert sum(stats.summary.leaks.values()) == 3  # util.py by the n-gram rule; app.py's facts split it: lines
    assert stats.summary.scored == 3
    for log in logs(out):
        pasted = [c for c in log.candidates if c.text.startswith("Here is")]
        assert pasted[0].leak in ("ngram", "lines") and pasted[0].nll is None and not pasted[0].accepted


def test_step_budget_and_in_place_update():
    trajectory = make_trajectory()
    before = copy.deepcopy(trajectory.to_dict())
    out, stats = refine_trajectories([trajectory], args(refine_max_steps_per_repo=1, refine_iterations=1),
                                     StructuralProposer(), ScriptedScorer())
    assert out[0] is trajectory and stats.summary.steps == 1
    assert trajectory.steps[3].search is not None and trajectory.steps[7].search is None
    assert no_search_trajectory(trajectory).to_dict() == before


def test_long_text_between_a_think_and_its_payload_is_skipped_and_not_counted_as_a_step():
    trajectory = make_trajectory()
    thinks = [trajectory.steps[3].content, trajectory.steps[9].content]
    scorer = ScriptedScorer()
    out, stats = refine_trajectories([trajectory], args(refine_max_between_tokens=20, refine_max_steps_per_repo=2,
                                                        refine_iterations=1), StructuralProposer(), scorer)
    # app.py's Think before its Read is scored through util.py's whole text (over 20 words): skipped, so the
    # two steps searched are the two Thinks before the Writes
    assert [b["incumbent"] for b in scorer.begun] == thinks
    assert trajectory.steps[7].search is None and stats.summary.steps == 2
    assert stats.skipped == {"between": 1} and trajectory.meta["refine"]["skipped"] == {"between": 1}
    out, stats = refine_trajectories([make_trajectory()], args(refine_max_between_tokens=10_000, refine_iterations=1),
                                     StructuralProposer(), ScriptedScorer())
    assert stats.summary.steps == 3 and not stats.skipped


def test_surprisal_guided_search_points_at_high_loss_definitions(tiny_scorer):
    scorer = StepScorer(tiny_scorer, max_context_tokens=128)
    out, stats = refine_trajectories([make_trajectory()], args(refine_surprisal_guided=True, refine_iterations=1,
                                                               refine_candidates=1), StructuralProposer(), scorer)
    for log in logs(out):
        [candidate] = log.candidates
        assert candidate.text.split("\n\n")[1].startswith("Parts that need the most care:")
        assert "near line" in candidate.text
    assert scorer.rows_scored == 3 * 2 + 3  # incumbent and baseline first, then one candidate per step


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


def test_the_scorer_context_is_the_window_by_default(tiny_scorer):
    """refine_max_context_tokens 0: the prefix fills the scorer's positions left by the Think, B and the payload."""
    from retrace.refine.step_scorer import ROW_SLACK_TOKENS

    assert RefineArguments().refine_max_context_tokens == 0
    scorer = StepScorer(tiny_scorer)
    limit, special = tiny_scorer.max_positions, len(tiny_scorer.special_prefix)
    prefix = "<repository name=\"x\">\n" + UTIL * 40  # far longer than the window
    step = scorer.begin(prefix, "app.py", APP, "short")
    row = len(scorer.think_ids("short")) + len(step.between_ids) + ROW_SLACK_TOKENS
    assert step.target_ids == tiny_scorer.encode_target(APP)  # the whole file, then all the context that fits
    assert step.context_tokens == limit - special - row - len(step.target_ids) > 128
    assert len(step.state.ids) + row + len(step.target_ids) == limit
    # A file longer than the window takes half the room; the prefix keeps the other half.
    room = limit - special - row
    long = scorer.begin(prefix, "app.py", APP * 40, "short")
    assert len(long.target_ids) == room // 2 and long.context_tokens == room - room // 2
    # The search logs the context it used: here every prefix is shorter than the window, so all of it.
    out, _ = refine_trajectories([make_trajectory()], RefineArguments(refine=True, refine_iterations=1),
                                 StructuralProposer(), scorer)
    traj = no_search_trajectory(out[0])
    text = trajectory_to_document(traj).text
    first = traj.steps[3].content
    assert out[0].steps[3].search.context_tokens == len(scorer.encode_tail(text[:text.index(think_block(first))],
                                                                          limit))


def test_a_scorer_without_a_known_window_needs_a_context_cut():
    class Unbounded:
        max_positions = 1 << 30

    with pytest.raises(ValueError, match="scorer_max_model_len"):
        StepScorer(Unbounded())
    assert StepScorer(Unbounded(), max_context_tokens=512).max_context_tokens == 512


@pytest.mark.parametrize("deterministic", [True, False])
def test_a_sampling_proposer_that_gives_nothing_is_asked_again(deterministic):
    """SmolLM2 gave no usable rewrite at the first iteration for 4 of the quickstart's 6 steps; a sampler
    asked again (new angle, new seed) may, a deterministic proposer would only repeat itself."""

    class Late:
        name = "late"

        def __init__(self):
            self.deterministic = deterministic
            self.asked: list[int] = []

        def propose(self, requests):
            self.asked += [r.iteration for r in requests]
            return [["First line.\nSecond line.\nThird line."] if r.iteration == 2 else [] for r in requests]

    proposer = Late()
    out, stats = refine_trajectories([make_trajectory()], args(refine_iterations=3), proposer, ScriptedScorer())
    assert proposer.asked == ([0, 0, 0] if deterministic else [0, 1, 2] * 3)  # three Thinks, one after another
    assert stats.summary.accepted == (0 if deterministic else 3)
    for log in logs(out):  # one incumbent record per iteration (and the start) either way
        assert len(log.incumbent_nll) == 4
        assert log.incumbent_nll[-1] < log.incumbent_nll[0] or deterministic
