"""The search: rewrite each Think before a Write until the real code that follows is more likely.

For every Think step directly followed by a Write (the one carrying `meta.facts`), in document order:
the incumbent is the current text; for `refine_iterations` iterations the proposer gives up to
`refine_candidates` rewrites, each checked by the leakage guard, the rest scored with the incumbent's
prefix (one batch per iteration: candidates, plus the incumbent and the no-Think baseline at the start);
the best candidate replaces the incumbent only if its mean payload NLL is strictly lower, so the
incumbent's NLL never rises. A step whose final Think does not beat the no-Think baseline is flagged
`unhelpful`, and dropped unless `refine_keep_unhelpful`.

Steps of one repository are searched in order, each conditioned on the already refined (or dropped) Thinks
before it. Steps of different repositories are searched side by side ("waves": the next step of every
repository at once), so a model proposer generates for many steps per call.

Log per step, in `step.meta["search"]`: `original`, `baseline_nll`, `incumbent_nll` and `incumbent_chars` /
`incumbent_tokens` per iteration (index 0: before search), `candidates` (iteration, text, chars, nll,
n_tokens, leak, accepted), `target_tokens`, `unhelpful`. A dropped step's whole record goes to
`trajectory.meta["refine"]["dropped"]` with its original index (see `no_search_trajectory`).

With `refine_plan`, the main agent's plan is searched first (it comes first in the document, so every
Think is then searched after the refined plan), all repositories' plans in one wave, by the same loop:
candidates come from `proposer.propose_plans` and are rendered through the plan's skeleton (only the
per-file descriptions change, see `plan`), the guard checks them against the target files' code, and
`plan_scorer` scores the pooled NLL of the first tokens of the files after the plan (see `plan_scorer`).
Its log (`kind: "plan"`, plus `target_files`) sits in the plan step's `meta.search`; the no-plan
`baseline_nll` is recorded and `unhelpful` flagged, but the plan is never dropped (it is the document's
table of contents). A repository whose plan cannot be searched is skipped, with the reason in
`meta.refine.plan_skipped` and a log line.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from retrace.data import Trajectory, trajectory_to_document
from retrace.refine.config import RefineArguments
from retrace.refine.leakage import LeakGuard
from retrace.refine.plan import PlanParseError, PlanSkeleton, plan_block
from retrace.refine.plan_scorer import PlanScorer, split_at_plan
from retrace.refine.proposers import HotSpan, PlanRequest, ProposalRequest, Proposer
from retrace.refine.stats import RefineStats, summarize_steps
from retrace.refine.step_scorer import StepScorer, hot_lines, think_block
from retrace.refine.structural import fit

logger = logging.getLogger(__name__)


def searchable_steps(traj: Trajectory) -> list[int]:
    """Indices of Think steps directly followed by a non-empty Write of the same agent."""
    steps = traj.steps
    return [i for i in range(len(steps) - 1) if steps[i].kind == "think" and steps[i + 1].kind == "write"
            and steps[i + 1].agent == steps[i].agent and steps[i + 1].content.strip()]


@dataclass
class _RepoSearch:
    """One trajectory under search: its document segments (updated as Thinks change) and its cursor."""

    traj: Trajectory
    segment_texts: list[str]
    think_segments: dict[int, int]        # step index -> segment index of its think block
    targets: list[int]
    cursor: int = 0
    logs: list[dict[str, Any]] = field(default_factory=list)
    plan_log: dict[str, Any] | None = None
    plan_skipped: str = ""
    plan_segment: int = -1

    @classmethod
    def build(cls, traj: Trajectory, max_steps: int = 0) -> _RepoSearch:
        doc = trajectory_to_document(traj)
        think_steps = [i for i, s in enumerate(traj.steps) if s.kind == "think"]
        think_segs = [j for j, s in enumerate(doc.segments) if s.kind == "think"]
        if len(think_steps) != len(think_segs):
            raise ValueError(f"{traj.repo}: {len(think_steps)} think steps but {len(think_segs)} think segments")
        return cls(traj, [s.text for s in doc.segments], dict(zip(think_steps, think_segs)),
                   searchable_steps(traj)[:max_steps or None])

    def prefix(self, step_index: int) -> str:
        return "".join(self.segment_texts[:self.think_segments[step_index]])


@dataclass
class _StepSearch:
    """The state of one step (a Think, or the plan) during its search."""

    repo: _RepoSearch
    index: int
    guard: LeakGuard
    scoring: Any                  # StepScoring (Think) or PlanScoring (plan)
    incumbent: str
    scorer: Any                   # StepScorer (Think) or PlanScorer (plan)
    facts: Any                    # what the guard lets a candidate copy: the Think's facts, or every file's
    skeleton: PlanSkeleton | None = None  # the plan's (None for a Think)
    incumbent_score: Any = None
    tried: set[str] = field(default_factory=set)
    log: dict[str, Any] = field(default_factory=dict)
    done: bool = False


def refine_trajectories(trajectories: list[Trajectory], args: RefineArguments, proposer: Proposer,
                        scorer: StepScorer, plan_scorer: PlanScorer | None = None,
                        ) -> tuple[list[Trajectory], RefineStats]:
    """Search the Thinks (and with `refine_plan` first the plans) of `trajectories` in place (also returned).

    With `refine_max_steps_per_repo`, only the first N searchable Thinks of each repository are searched.
    `plan_scorer` defaults to one built on `scorer` from the recipe's `refine_plan_*` keys.
    Raises ValueError when `refine_plan` is set and the proposer has no `propose_plans`.
    """
    if args.refine_plan and not hasattr(proposer, "propose_plans"):
        raise ValueError(f"refine_plan: proposer {getattr(proposer, 'name', proposer)!r} cannot rewrite plans "
                         "(it has no propose_plans)")
    start = time.perf_counter()
    forwarded_before, unique_before = scorer.tokens_forwarded, scorer.unique_tokens
    seconds_before = scorer.seconds
    repos = [_RepoSearch.build(t, args.refine_max_steps_per_repo) for t in trajectories]
    if args.refine_plan:
        _search_plans(repos, args, proposer, plan_scorer or PlanScorer(
            scorer, target_files=args.refine_plan_target_files, target_tokens=args.refine_plan_target_tokens,
            window_tokens=args.refine_plan_window_tokens))
    while True:
        wave = [r for r in repos if r.cursor < len(r.targets)]
        if not wave:
            break
        steps = [_begin(r, r.targets[r.cursor], args, scorer) for r in wave]
        _search_wave(steps, args, proposer.propose, guided=args.refine_surprisal_guided)
        for step in steps:
            _finish(step, args)
            step.repo.cursor += 1
    stats = RefineStats(iterations=args.refine_iterations)
    all_logs = []
    for repo in repos:
        repo_summary = summarize_steps(repo.logs, args.refine_iterations)
        _drop_unhelpful(repo)
        refine_meta = {**repo.traj.meta.get("refine", {}), "stats": repo_summary.to_dict()}
        if repo.plan_log is not None:
            plan_summary = summarize_steps([repo.plan_log], args.refine_iterations)
            refine_meta["plan_stats"] = plan_summary.to_dict()
            stats.plan_per_repo[repo.traj.repo] = plan_summary
        if repo.plan_skipped:
            refine_meta["plan_skipped"] = repo.plan_skipped
            stats.plan_skipped[repo.plan_skipped] = stats.plan_skipped.get(repo.plan_skipped, 0) + 1
        repo.traj.meta["refine"] = refine_meta
        stats.per_repo[repo.traj.repo] = repo_summary
        all_logs += repo.logs
    stats.summary = summarize_steps(all_logs, args.refine_iterations)
    stats.plan = summarize_steps([r.plan_log for r in repos if r.plan_log is not None], args.refine_iterations)
    stats.seconds = time.perf_counter() - start
    stats.scoring_seconds = scorer.seconds - seconds_before
    stats.tokens_forwarded = scorer.tokens_forwarded - forwarded_before
    stats.unique_tokens = scorer.unique_tokens - unique_before
    return trajectories, stats


def _begin(repo: _RepoSearch, index: int, args: RefineArguments, scorer: StepScorer) -> _StepSearch:
    think, write = repo.traj.steps[index], repo.traj.steps[index + 1]
    scoring = scorer.begin(repo.prefix(index), write.path or "", write.content, think.content)
    guard = LeakGuard(write.content, ngram=args.refine_leak_ngram, line_share=args.refine_leak_line_share)
    log = {"original": think.content, "target_tokens": len(scoring.target_ids), "candidates": [],
           "incumbent_nll": [], "incumbent_chars": [], "incumbent_tokens": []}
    return _StepSearch(repo, index, guard, scoring, think.content, scorer, think.meta.get("facts") or {},
                       tried={think.content}, log=log)


def _search_plans(repos: list[_RepoSearch], args: RefineArguments, proposer: Proposer,
                  plan_scorer: PlanScorer) -> None:
    """One wave over every repository's plan; the winners go into the document text later Thinks see."""
    steps = [s for s in (_begin_plan(r, args, plan_scorer) for r in repos) if s is not None]
    _search_wave(steps, args, proposer.propose_plans, guided=False)
    for step in steps:
        repo, plan = step.repo, step.repo.traj.steps[step.index]
        step.log["unhelpful"] = not step.incumbent_score.mean < step.log["baseline_nll"]
        step.log["dropped"] = False
        plan.content = step.incumbent
        plan.meta["search"] = step.log
        repo.segment_texts[repo.plan_segment] = plan_block(step.incumbent)
        repo.plan_log = step.log


def _skip_plan(repo: _RepoSearch, reason: str, detail: str) -> None:
    repo.plan_skipped = reason
    logger.warning("refine_plan: %s: plan not searched (%s): %s", repo.traj.repo, reason, detail)


def _begin_plan(repo: _RepoSearch, args: RefineArguments, plan_scorer: PlanScorer) -> _StepSearch | None:
    traj = repo.traj
    plans = [i for i, s in enumerate(traj.steps) if s.kind == "plan"]
    if len(plans) != 1:
        _skip_plan(repo, "no_plan" if not plans else "several_plans", f"{len(plans)} plan steps")
        return None
    plan = traj.steps[plans[0]]
    try:
        skeleton = PlanSkeleton.parse(plan.content, traj.order)
    except PlanParseError as error:
        _skip_plan(repo, "unparsed", str(error))
        return None
    repo.plan_segment, before, after = split_at_plan(trajectory_to_document(traj).segments)
    scoring = plan_scorer.begin(before, after, plan.content)
    if scoring is None:
        _skip_plan(repo, "no_target", "no payload token fits the plan window")
        return None
    write_facts = {traj.steps[i + 1].path: traj.steps[i].meta.get("facts") or {} for i in searchable_steps(traj)}
    payloads = {s.path: s.content for s in traj.steps if s.kind == "write"}
    guard = LeakGuard("\n".join(payloads[p] for p in scoring.target_paths), ngram=args.refine_leak_ngram,
                      line_share=args.refine_leak_line_share)
    log = {"kind": "plan", "original": plan.content, "target_tokens": len(scoring.target_positions),
           "target_files": scoring.target_paths, "candidates": [], "incumbent_nll": [], "incumbent_chars": [],
           "incumbent_tokens": []}
    return _StepSearch(repo, plans[0], guard, scoring, plan.content, plan_scorer, list(write_facts.values()),
                       skeleton=skeleton, tried={plan.content}, log=log)


def _search_wave(steps: list[_StepSearch], args: RefineArguments, propose, *, guided: bool) -> None:
    """All iterations for a batch of steps (one per repository), one `propose` call per iteration.

    The incumbent and the no-Think baseline are scored in one batch with the first candidates, or before
    them when surprisal guidance (`guided`) needs the incumbent's per-token losses for the first proposals.
    """
    if guided:
        for step in steps:
            _score_batch(step, [])
    for iteration in range(args.refine_iterations):
        active = [s for s in steps if not s.done]
        requests = [_request(s, iteration, args) for s in active]
        proposals = propose(requests) if requests else []
        for step, texts in zip(active, proposals):
            _score_candidates(step, iteration, texts, args)
        for step in steps:
            if step.done:
                _record_incumbent(step)  # nothing left to propose: the incumbent carries over


def _score_batch(step: _StepSearch, texts: list[str]) -> list:
    """Score `texts` (plus the incumbent and baseline, the first time) in one batch; the texts' scores."""
    start = [step.incumbent, None] if step.incumbent_score is None else []
    if not start and not texts:
        return []
    scores = step.scorer.score(step.scoring, start + texts)
    if start:
        step.incumbent_score = scores[0]
        step.log["baseline_nll"] = scores[1].mean
        _record_incumbent(step)
    return scores[len(start):]


def _request(step: _StepSearch, iteration: int, args: RefineArguments) -> ProposalRequest | PlanRequest:
    traj = step.repo.traj
    if step.skeleton is not None:
        requirements = next((s.content for s in traj.steps if s.kind == "requirements"), "")
        current = PlanSkeleton.parse(step.incumbent, step.skeleton.paths).descriptions()
        return PlanRequest(repo=traj.repo, requirements=requirements, skeleton=step.skeleton,
                           incumbent=step.incumbent, descriptions=current, original=step.log["original"],
                           facts={traj.steps[i + 1].path: traj.steps[i].meta.get("facts") or {}
                                  for i in searchable_steps(traj)},
                           iteration=iteration, n=args.refine_candidates, tried=set(step.tried))
    think = traj.steps[step.index]
    spans = []
    if args.refine_surprisal_guided:
        spans = [HotSpan(line, text, nats) for line, text, nats in
                 hot_lines(step.scoring, step.incumbent_score, args.refine_surprisal_spans)]
    return ProposalRequest(repo=step.repo.traj.repo, path=step.repo.traj.steps[step.index + 1].path or "",
                           incumbent=step.incumbent, original=step.log["original"],
                           facts=think.meta.get("facts") or {}, iteration=iteration, n=args.refine_candidates,
                           tried=set(step.tried), hot_spans=spans)


def _score_candidates(step: _StepSearch, iteration: int, texts: list[str], args: RefineArguments) -> None:
    entries, to_score = [], []
    for text in texts:
        # A plan candidate keeps the skeleton (file list, numbers, needs); a Think is cut at a line boundary.
        if step.skeleton is not None:
            text = step.skeleton.apply(text)
        else:
            text = fit(text.strip(), args.refine_max_think_chars)
        if not text or text in step.tried:
            continue
        step.tried.add(text)
        leak = step.guard.check(text, step.facts, allowed=step.log["original"])
        entry = {"iteration": iteration, "text": text, "chars": len(text), "nll": None, "n_tokens": None,
                 "leak": leak.reason or None, "accepted": False}
        if not leak.leaked and not step.scorer.fits(step.scoring, text):
            entry["too_long"] = True
        elif not leak.leaked:
            to_score.append((entry, text))
        entries.append(entry)
    scores = _score_batch(step, [text for _, text in to_score])
    if not entries:
        step.done = True
        return
    best = None
    for (entry, _), score in zip(to_score, scores):
        entry["nll"], entry["n_tokens"] = score.mean, score.n_tokens
        if best is None or score.mean < best[1].mean:
            best = (entry, score)
    if best is not None and best[1].mean < step.incumbent_score.mean:
        best[0]["accepted"] = True
        step.incumbent, step.incumbent_score = best[0]["text"], best[1]
    step.log["candidates"].extend(entries)
    _record_incumbent(step)


def _record_incumbent(step: _StepSearch) -> None:
    step.log["incumbent_nll"].append(step.incumbent_score.mean)
    step.log["incumbent_chars"].append(len(step.incumbent))
    step.log["incumbent_tokens"].append(len(step.scorer.think_ids(step.incumbent)))


def _finish(step: _StepSearch, args: RefineArguments) -> None:
    """Write the winner into the trajectory and the document text that later steps condition on."""
    repo, think = step.repo, step.repo.traj.steps[step.index]
    step.log["unhelpful"] = not step.incumbent_score.mean < step.log["baseline_nll"]
    step.log["dropped"] = step.log["unhelpful"] and not args.refine_keep_unhelpful
    think.content = step.incumbent
    think.meta["search"] = step.log
    repo.segment_texts[repo.think_segments[step.index]] = "" if step.log["dropped"] else think_block(step.incumbent)
    repo.logs.append(step.log)


def _drop_unhelpful(repo: _RepoSearch) -> None:
    """Remove dropped Thinks from the steps; their records go to `meta.refine.dropped` (original index)."""
    steps = repo.traj.steps
    dropped = [i for i in repo.targets if steps[i].meta.get("search", {}).get("dropped")]
    if not dropped:
        return
    records = [{"index": i, "step": {"agent": steps[i].agent, "kind": steps[i].kind, "path": steps[i].path,
                                     "content": steps[i].content, "meta": steps[i].meta}} for i in dropped]
    repo.traj.meta.setdefault("refine", {})["dropped"] = records
    repo.traj.steps = [s for i, s in enumerate(steps) if i not in set(dropped)]
