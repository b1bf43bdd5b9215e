"""Plan search (`refine_plan`): the main agent's plan, searched before any Think, by the same loop.

The plan comes first in the document, so every Think is then searched after the refined plan. All
repositories' plans form one wave. Candidates come from `proposer.propose_plans`; each is read into the
plan step's `Plan` record (only the per-file descriptions change, see `plan`), the guard checks it against
the target files' code (the groundings of every file are allowed), and `plan_scorer` scores the pooled
NLL of the first tokens of the files after the plan. The log (`kind: "plan"`, plus `target_files` and the
record before search, `original_plan`) is the plan step's `search`; the no-plan `baseline_nll` is recorded
and `unhelpful` flagged, but the plan is never dropped (it is the document's table of contents). A
repository whose plan cannot be searched is skipped, with the reason in `meta.refine.plan_skipped` and a
log line: `no_plan` / `several_plans`, `no_record` (the plan step has no `Plan`), `stale_record` (its
text is not its record's rendering), `no_target` (no payload token within the plan window).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from retrace.data import SearchLog, trajectory_to_document
from retrace.refine import targets
from retrace.refine.leakage import LeakGuard
from retrace.refine.loop import StepSearch, search_wave
from retrace.refine.plan import plan_block
from retrace.refine.plan_scorer import PlanScorer, split_at_plan
from retrace.refine.proposers import PlanRequest, Proposer

if TYPE_CHECKING:
    from retrace.refine.config import RefineArguments
    from retrace.refine.search import RepoSearch

logger = logging.getLogger(__name__)


def search_plans(repos: list[RepoSearch], args: RefineArguments, proposer: Proposer,
                 plan_scorer: PlanScorer) -> None:
    """One wave over every repository's plan; the winners go into the document text later Thinks see."""
    steps = [s for s in (_begin_plan(r, args, plan_scorer) for r in repos) if s is not None]
    search_wave(steps, args.refine_iterations, proposer.propose_plans, lambda s, i: _plan_request(s, i, args),
                max_think_chars=args.refine_max_think_chars, guided=False,
                stop_when_empty=proposer.deterministic)
    for step in steps:
        repo, plan = step.repo, step.repo.traj.steps[step.index]
        step.log.unhelpful = not step.incumbent_score.mean < step.log.baseline_nll
        step.log.dropped = False
        plan.content, plan.plan, plan.search = step.incumbent, step.plan, step.log
        repo.segment_texts[repo.plan_segment] = plan_block(step.incumbent)
        repo.plan_log = step.log


def _skip_plan(repo: RepoSearch, reason: str, detail: str) -> None:
    repo.plan_skipped = reason
    logger.warning("refine_plan: %s: plan not searched (%s): %s", repo.traj.repo, reason, detail)


def _begin_plan(repo: RepoSearch, args: RefineArguments, plan_scorer: PlanScorer) -> StepSearch | None:
    traj = repo.traj
    plans = [i for i, s in enumerate(traj.steps) if s.kind == "plan"]
    if len(plans) != 1:
        _skip_plan(repo, "no_plan" if not plans else "several_plans", f"{len(plans)} plan steps")
        return None
    step = traj.steps[plans[0]]
    if step.plan is None:
        _skip_plan(repo, "no_record", "the plan step carries no Plan record")
        return None
    if step.plan.render() != step.content:
        _skip_plan(repo, "stale_record", "the plan step's text is not its Plan record's rendering")
        return None
    repo.plan_segment, before, after = split_at_plan(trajectory_to_document(traj).segments)
    scoring = plan_scorer.begin(before, after, step.content)
    if scoring is None:
        _skip_plan(repo, "no_target", "no payload token fits the plan window")
        return None
    payloads = {s.path: s.content for s in traj.steps if s.kind == "write"}
    guard = LeakGuard("\n".join(payloads[p] for p in scoring.target_paths), ngram=args.refine_leak_ngram,
                      line_share=args.refine_leak_line_share)
    log = SearchLog(original=step.content, target_tokens=len(scoring.target_positions), kind="plan",
                    target_files=scoring.target_paths, context_tokens=scoring.context_tokens,
                    original_plan=step.plan)
    return StepSearch(repo, plans[0], guard, scoring, step.content, plan_scorer,
                      list(targets.groundings(traj).values()), log, plan=step.plan, tried={step.content})


def _plan_request(step: StepSearch, iteration: int, args: RefineArguments) -> PlanRequest:
    traj = step.repo.traj
    return PlanRequest(repo=traj.meta.get("repository", traj.repo), requirements=targets.requirements(traj), plan=step.plan,
                       original=step.log.original, groundings=targets.groundings(traj), iteration=iteration,
                       n=args.refine_candidates, tried=set(step.tried))
