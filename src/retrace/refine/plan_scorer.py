"""Scoring plan candidates: the NLL of the real code that follows the plan, each file given its prefix.

For a repository, the scored sequence is

    [special prefix] + P + plan block + A

tokenised piecewise like `step_scorer` (each document segment on its own, ids concatenated), where
- P is the document before the plan (repository header, requirements), cut from the left to its last
  `max_context_tokens` tokens (0: what the scorer's window leaves after the plan, A at its longest and
  `ROW_SLACK_TOKENS`), forwarded once and reused for every candidate;
- the plan block is `<plan>\\n{text}\\n</plan>\\n`; the no-plan baseline has none;
- A is the document after the plan, uncut and unchanged, up to the end of the last target span, at most
  `window_tokens` tokens (and what the model's positions leave after P, the incumbent's plan and
  `ROW_SLACK_TOKENS`).
The target is the first `target_tokens` tokens of each of the first `target_files` Write payloads in
development order that start inside A (the last one may be cut by the window). So each target token is
conditioned on the whole document before it: the plan, then every delegation, Think, Read and earlier
file in between. The objective is the mean NLL over all target tokens (pooled: nats/token). A fixed A
makes every candidate's number comparable; a candidate whose plan does not then fit is `too_long`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from retrace.data import Segment
from retrace.llm.scoring import TargetScore
from retrace.refine.plan import plan_block
from retrace.refine.step_scorer import ROW_SLACK_TOKENS, StepScorer


@dataclass
class PlanScoring:
    """One plan's shared state: the prefix cache, the document after the plan and where its targets are."""

    state: Any
    after_ids: list[int]
    target_positions: list[int]   # indices into after_ids of the scored payload tokens
    target_paths: list[str]       # the files whose first tokens are scored, in development order
    max_row_tokens: int
    unique_tokens: int = 0
    context_tokens: int = 0       # tokens of P the rows are conditioned on

    @property
    def target_ids(self) -> list[int]:
        return [self.after_ids[p] for p in self.target_positions]


class PlanScorer:
    """The plan-side view of a `StepScorer`: same backend, same cut of P, cost counted on the step scorer."""

    def __init__(self, step_scorer: StepScorer, *, target_files: int, target_tokens: int, window_tokens: int):
        self.step_scorer = step_scorer
        self.scorer = step_scorer.scorer
        self.target_files = target_files
        self.target_tokens = target_tokens
        self.window_tokens = window_tokens

    def think_ids(self, text: str | None) -> list[int]:
        """The plan block's ids (named like the step scorer's, for the search's length records)."""
        return [] if text is None else self.scorer.encode_target(plan_block(text))

    def begin(self, prefix_text: str, after: list[Segment], incumbent: str) -> PlanScoring | None:
        """Tokenise P and A, forward P once; None when no payload token fits the window."""
        start = time.perf_counter()
        steps = self.step_scorer
        special = len(self.scorer.special_prefix)
        plan_tokens = len(self.think_ids(incumbent))
        # P: the recipe's cut, or (0) what the window leaves after the plan, A at its longest and the slack.
        keep = steps.max_context_tokens or steps.limit - special - plan_tokens - self.window_tokens - ROW_SLACK_TOKENS
        prefix_ids = steps.encode_tail(prefix_text, keep)
        room = steps.limit - (special + len(prefix_ids) or 1) - plan_tokens - ROW_SLACK_TOKENS
        budget = min(self.window_tokens, room)
        after_ids: list[int] = []
        positions: list[int] = []
        paths: list[str] = []
        for seg in after:
            ids = self.scorer.encode_target(seg.text)
            if seg.kind != "payload":
                after_ids += ids
            else:
                head = min(self.target_tokens, len(ids), budget - len(after_ids))
                if head <= 0:
                    break
                positions += range(len(after_ids), len(after_ids) + head)
                paths.append(seg.path or "")
                after_ids += ids
                if len(paths) == self.target_files or head < min(self.target_tokens, len(ids)):
                    break
            if len(after_ids) >= budget:
                break
        if not positions:
            steps.seconds += time.perf_counter() - start
            return None
        after_ids = after_ids[:positions[-1] + 1]  # nothing after the last target token is needed
        state = self.scorer.encode_prefix(prefix_ids)
        scoring = PlanScoring(state, after_ids, positions, paths, max_row_tokens=steps.limit - len(state.ids),
                              unique_tokens=len(state.ids), context_tokens=len(prefix_ids))
        steps.unique_tokens += len(state.ids)
        steps.seconds += time.perf_counter() - start
        return scoring

    def fits(self, scoring: PlanScoring, plan: str | None) -> bool:
        return len(self.think_ids(plan)) + len(scoring.after_ids) <= scoring.max_row_tokens

    def score(self, scoring: PlanScoring, plans: list[str | None]) -> list[TargetScore]:
        """Pooled target NLL for each plan text (None: the no-plan baseline), with per-token NLLs, one batch."""
        start = time.perf_counter()
        rows = [(self.think_ids(p), scoring.after_ids) for p in plans]
        full = self.scorer.score_after_prefix(scoring.state, rows, token_nlls=True)
        scores = []
        for row in full:
            picked = tuple(row.token_nlls[p] for p in scoring.target_positions)
            scores.append(TargetScore(math.fsum(picked), len(picked), picked))
        added = sum(len(m) + len(t) for m, t in rows)
        scoring.unique_tokens += added
        steps = self.step_scorer
        steps.unique_tokens += added
        steps.rows_scored += len(rows)
        steps.seconds += time.perf_counter() - start
        return scores


def split_at_plan(segments: list[Segment]) -> tuple[int, str, list[Segment]] | None:
    """(index of the plan segment, the text before it, the segments after it); None without a plan."""
    index = next((i for i, s in enumerate(segments) if s.kind == "plan"), None)
    if index is None:
        return None
    return index, "".join(s.text for s in segments[:index]), segments[index + 1:]

