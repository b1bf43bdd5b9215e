"""The search loop shared by Thinks and plans: propose, guard, score, keep the best only if it is better.

For a wave of steps (one per repository), each iteration asks the proposer once for every step still
active, passes each candidate through the leakage guard, scores the rest in one batch per step (with the
incumbent and the no-Think baseline the first time), and replaces the incumbent by the best candidate only
if its mean NLL is strictly lower, so the incumbent's NLL never rises. A step that a deterministic proposer
(the structural one) gives nothing new stops, its incumbent carrying over to the remaining iterations; a
sampling proposer is asked again (new angles, new seed): SmolLM2 gave no usable rewrite at the first
iteration for 4 of the quickstart's 6 steps, which then were never searched at all. Everything is logged in the step's
`SearchLog` (retrace.data.records).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from retrace.data import Candidate, Grounding, Plan, SearchLog
from retrace.refine.leakage import LeakGuard
from retrace.refine.plan import apply_reply
from retrace.refine.structural import fit


@dataclass
class StepSearch:
    """The state of one step (a Think, or the plan) during its search."""

    repo: Any                     # the search's per-repository state
    index: int                    # the step's index in the trajectory
    guard: LeakGuard
    scoring: Any                  # StepScoring (Think) or PlanScoring (plan)
    incumbent: str
    scorer: Any                   # StepScorer (Think) or PlanScorer (plan)
    facts: Grounding | list[Grounding] | None  # what the guard lets a candidate copy
    log: SearchLog
    write_index: int = -1         # a Think's search: the Write whose payload is scored
    plan: Plan | None = None      # plan search: the incumbent record (None for a Think)
    incumbent_score: Any = None
    tried: set[str] = field(default_factory=set)
    plans: dict[str, Plan] = field(default_factory=dict)  # plan search: candidate text -> its record
    done: bool = False


def search_wave(steps: list[StepSearch], iterations: int, propose: Callable[[list], list[list[str]]],
                request: Callable[[StepSearch, int], Any], *, max_think_chars: int, guided: bool,
                stop_when_empty: bool = True) -> None:
    """All iterations for a batch of steps, one `propose` call per iteration (`request` builds each step's ask).

    `stop_when_empty`: a step given nothing new stops (the proposer is deterministic and would only repeat).

    The incumbent and the no-Think baseline are scored in one batch with the first candidates, or before
    them when surprisal guidance (`guided`) needs the incumbent's per-token losses for the first proposals.
    """
    if guided:
        for step in steps:
            score_batch(step, [])
    for iteration in tqdm(range(iterations), desc=f"search ({len(steps)} steps)", unit="iteration",
                          disable=not steps):
        active = [s for s in steps if not s.done]
        asks = [request(s, iteration) for s in active]
        proposals = propose(asks) if asks else []
        for step, texts in zip(active, proposals):
            _score_candidates(step, iteration, texts, max_think_chars, stop_when_empty)
        for step in steps:
            if step.done:
                record_incumbent(step)  # nothing left to propose: the incumbent carries over


def score_batch(step: StepSearch, texts: list[str]) -> list:
    """Score `texts` (plus the incumbent and baseline, the first time) in one batch; the texts' scores."""
    start = [step.incumbent, None] if step.incumbent_score is None else []
    if not start and not texts:
        return []
    scores = step.scorer.score(step.scoring, start + texts)
    if start:
        step.incumbent_score = scores[0]
        step.log.baseline_nll = scores[1].mean
        record_incumbent(step)
    return scores[len(start):]


def _candidate_text(step: StepSearch, text: str, max_think_chars: int) -> str:
    """A plan candidate keeps the record's files (only descriptions change); a Think is cut at a line boundary."""
    if step.plan is None:
        return fit(text.strip(), max_think_chars)
    plan = apply_reply(step.plan, text)
    step.plans[plan.render()] = plan
    return plan.render()


def _score_candidates(step: StepSearch, iteration: int, texts: list[str], max_think_chars: int,
                      stop_when_empty: bool) -> None:
    entries, to_score = [], []
    for text in texts:
        text = _candidate_text(step, text, max_think_chars)
        if not text or text in step.tried:
            continue
        step.tried.add(text)
        leak = step.guard.check(text, step.facts, allowed=step.log.original)
        entry = Candidate(iteration=iteration, text=text, chars=len(text), leak=leak.reason or None)
        if not leak.leaked and not step.scorer.fits(step.scoring, text):
            entry.too_long = True
        elif not leak.leaked:
            to_score.append(entry)
        entries.append(entry)
    scores = score_batch(step, [entry.text for entry in to_score])
    if not entries:
        step.done = stop_when_empty
        if not step.done:
            record_incumbent(step)
        return
    best = None
    for entry, score in zip(to_score, scores):
        entry.nll, entry.n_tokens = score.mean, score.n_tokens
        if best is None or score.mean < best[1].mean:
            best = (entry, score)
    if best is not None and best[1].mean < step.incumbent_score.mean:
        best[0].accepted = True
        step.incumbent, step.incumbent_score = best[0].text, best[1]
        if step.plan is not None:
            step.plan = step.plans[step.incumbent]
    step.log.candidates.extend(entries)
    record_incumbent(step)


def record_incumbent(step: StepSearch) -> None:
    step.log.incumbent_nll.append(step.incumbent_score.mean)
    step.log.incumbent_chars.append(len(step.incumbent))
    step.log.incumbent_tokens.append(len(step.scorer.think_ids(step.incumbent)))
