"""The search: rewrite each Think of a sub-agent until the real file it writes is more likely.

Every Think whose sub-agent writes a file is searched against that file (`targets.search_targets`): the
Think right before the Write, and a Think before the sub-agent's Reads, scored on the same payload through
the Reads, their observations and the later Think in between, each conditioned on the document prefix up
to itself (`step_scorer`). For each, in document order: the incumbent is the current text; for
`refine_iterations` iterations the proposer gives up to `refine_candidates` rewrites, each checked by the
leakage guard, the rest scored with the incumbent's prefix; the best candidate replaces the incumbent only
if its mean payload NLL is strictly lower (`loop`). A step whose final Think does not beat the no-Think
baseline is flagged `unhelpful`, and dropped unless `refine_keep_unhelpful`. A step whose text between
Think and payload leaves the scorer's window no room for the payload (`window`), or a Think before the
Reads whose text up to the payload is longer than `refine_max_between_tokens` (`between`), is not searched
(counted under `meta.refine.skipped`; `refine_max_steps_per_repo` counts only the steps searched).

Steps of one repository are searched in order, each conditioned on the already refined (or dropped) Thinks
before it. Steps of different repositories are searched side by side ("waves": the next step of every
repository at once), so a model proposer generates for many steps per call.

Each searched step's log is its `step.search` (a `SearchLog`: original text, baseline and per-iteration
incumbent NLL, Think length, every candidate, the context tokens the scorer saw). A dropped step's record
(`Step.to_dict`) goes to `trajectory.meta["refine"]["dropped"]` with its original index (see
`no_search_trajectory`). With `refine_plan`, the main agent's plan is searched first (see `plan_search`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from retrace.data import SearchLog, Trajectory, trajectory_to_document
from retrace.refine import targets
from retrace.refine.config import RefineArguments
from retrace.refine.leakage import LeakGuard
from retrace.refine.loop import StepSearch, search_wave
from retrace.refine.plan_scorer import PlanScorer
from retrace.refine.plan_search import search_plans
from retrace.refine.proposers import HotSpan, ProposalRequest, Proposer
from retrace.refine.stats import RefineStats, RepoLogs, refine_meta, refine_stats
from retrace.refine.step_scorer import StepScorer, hot_lines, think_block


@dataclass
class RepoSearch:
    """One trajectory under search: its document segments (updated as Thinks change) and its cursor."""

    traj: Trajectory
    segment_texts: list[str]
    think_segments: dict[int, int]        # step index -> segment index of its think block
    payload_segments: dict[int, int]      # write step index -> segment index of its payload
    targets: list[tuple[int, int]]        # (Think, Write) step indices, in document order
    cursor: int = 0
    max_steps: int = 0                    # 0: search every target
    logs: list[SearchLog] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # Thinks not searched, by reason
    plan_log: SearchLog | None = None
    plan_skipped: str = ""
    plan_segment: int = -1

    @classmethod
    def build(cls, traj: Trajectory, max_steps: int = 0) -> RepoSearch:
        """`max_steps` > 0: stop after that many steps searched (skipped ones do not count)."""
        doc = trajectory_to_document(traj)
        segments = {}
        for step_kind, segment_kind, keep in (("think", "think", True), ("write", "payload", False)):
            indices = [i for i, s in enumerate(traj.steps) if s.kind == step_kind and (keep or s.content)]
            found = [j for j, s in enumerate(doc.segments) if s.kind == segment_kind]
            if len(indices) != len(found):
                raise ValueError(f"{traj.repo}: {len(indices)} {step_kind} steps but {len(found)} {segment_kind} "
                                 "segments")
            segments[step_kind] = dict(zip(indices, found))
        return cls(traj, [s.text for s in doc.segments], segments["think"], segments["write"],
                   targets.search_targets(traj), max_steps=max_steps)

    @property
    def searching(self) -> bool:
        return self.cursor < len(self.targets) and not (self.max_steps and len(self.logs) >= self.max_steps)

    def prefix(self, step_index: int) -> str:
        return "".join(self.segment_texts[:self.think_segments[step_index]])

    def between(self, think: int, write: int) -> str:
        """The document text after the Think's block and before the Write's payload."""
        return "".join(self.segment_texts[self.think_segments[think] + 1:self.payload_segments[write]])


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
    repos = [RepoSearch.build(t, args.refine_max_steps_per_repo) for t in trajectories]
    if args.refine_plan:
        search_plans(repos, args, proposer, plan_scorer or PlanScorer(
            scorer, target_files=args.refine_plan_target_files, target_tokens=args.refine_plan_target_tokens,
            window_tokens=args.refine_plan_window_tokens))
    while True:
        wave = [r for r in repos if r.searching]
        if not wave:
            break
        steps = [s for s in (_begin(r, r.targets[r.cursor], args, scorer) for r in wave) if s is not None]
        search_wave(steps, args.refine_iterations, proposer.propose, lambda s, i: _request(s, i, args),
                    max_think_chars=args.refine_max_think_chars, guided=args.refine_surprisal_guided,
                    stop_when_empty=proposer.deterministic)
        for step in steps:
            _finish(step, args)
        for repo in wave:
            repo.cursor += 1
    for repo in repos:
        _drop_unhelpful(repo)
    records = [RepoLogs(r.traj.repo, r.logs, r.plan_log, r.skipped, r.plan_skipped) for r in repos]
    stats = refine_stats(args.refine_iterations, records)
    for repo, record in zip(repos, records):
        repo.traj.meta["refine"] = {**repo.traj.meta.get("refine", {}), **refine_meta(stats, record)}
    stats.seconds = time.perf_counter() - start
    stats.scoring_seconds = scorer.seconds - seconds_before
    stats.tokens_forwarded = scorer.tokens_forwarded - forwarded_before
    stats.unique_tokens = scorer.unique_tokens - unique_before
    return trajectories, stats


def _begin(repo: RepoSearch, target: tuple[int, int], args: RefineArguments,
           scorer: StepScorer) -> StepSearch | None:
    index, write_index = target
    think, write = repo.traj.steps[index], repo.traj.steps[write_index]
    kind = targets.think_kind(index, write_index)
    between = repo.between(index, write_index) if kind == "think_read" else None
    if between is not None and args.refine_max_between_tokens and \
            scorer.count_tokens(between) > args.refine_max_between_tokens:
        repo.skipped["between"] = repo.skipped.get("between", 0) + 1
        return None
    scoring = scorer.begin(repo.prefix(index), write.path or "", write.content, think.content, between=between)
    if scoring is None:
        repo.skipped["window"] = repo.skipped.get("window", 0) + 1
        return None
    guard = LeakGuard(write.content, ngram=args.refine_leak_ngram, line_share=args.refine_leak_line_share)
    log = SearchLog(original=think.content, target_tokens=len(scoring.target_ids), kind=kind,
                    target_path=write.path or "", context_tokens=scoring.context_tokens)
    return StepSearch(repo, index, guard, scoring, think.content, scorer, targets.grounding_of(repo.traj, write_index),
                      log, write_index=write_index, tried={think.content})


def _request(step: StepSearch, iteration: int, args: RefineArguments) -> ProposalRequest:
    traj, write = step.repo.traj, step.repo.traj.steps[step.write_index]
    spans = []
    if args.refine_surprisal_guided:
        spans = [HotSpan(line, text, nats) for line, text, nats in
                 hot_lines(step.scoring, step.incumbent_score, args.refine_surprisal_spans)]
    return ProposalRequest(repo=traj.meta.get("repository", traj.repo), path=write.path or "", incumbent=step.incumbent,
                           original=step.log.original, grounding=step.facts, iteration=iteration,
                           n=args.refine_candidates, tried=set(step.tried), hot_spans=spans, kind=step.log.kind,
                           requirements=targets.requirements(traj), plan_entry=targets.plan_entry(traj, write.path),
                           reads=targets.reads(traj, step.write_index))


def _finish(step: StepSearch, args: RefineArguments) -> None:
    """Write the winner into the trajectory and the document text that later steps condition on."""
    repo, think = step.repo, step.repo.traj.steps[step.index]
    step.log.unhelpful = not step.incumbent_score.mean < step.log.baseline_nll
    step.log.dropped = step.log.unhelpful and not args.refine_keep_unhelpful
    think.content = step.incumbent
    think.search = step.log
    repo.segment_texts[repo.think_segments[step.index]] = "" if step.log.dropped else think_block(step.incumbent)
    repo.logs.append(step.log)


def _drop_unhelpful(repo: RepoSearch) -> None:
    """Remove dropped Thinks from the steps; their records go to `meta.refine.dropped` (original index)."""
    steps = repo.traj.steps
    dropped = {i for i, _ in repo.targets if steps[i].search is not None and steps[i].search.dropped}
    if not dropped:
        return
    records = [{"index": i, "step": steps[i].to_dict()} for i in sorted(dropped)]
    repo.traj.meta.setdefault("refine", {})["dropped"] = records
    repo.traj.steps = [s for i, s in enumerate(steps) if i not in dropped]
