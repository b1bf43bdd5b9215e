"""Search-based refinement of Think steps (the paper's CoT search): reasoning that makes the real code likely.

For each Think right before a Write, a proposer rewrites it, a leakage guard rejects rewrites that copy the
code, and a scorer keeps a rewrite only if it lowers the NLL of the real file that follows (see `search`).
With `refine_plan`, the main agent's plan is searched the same way first: only its per-file descriptions
change, toward the first tokens of the files that follow (see `plan`, `plan_scorer`).
Uses `retrace.llm` (the proposer's and the scorer's engines) and `retrace.data` (artifacts) only.
"""

from retrace.refine.config import RefineArguments
from retrace.refine.leakage import LeakCheck, LeakGuard
from retrace.refine.plan import PlanParseError, PlanSkeleton, plan_block
from retrace.refine.plan_scorer import PlanScorer
from retrace.refine.proposers import (
    ChatProposer,
    HotSpan,
    PlanRequest,
    ProposalRequest,
    Proposer,
    build_proposer,
)
from retrace.refine.search import refine_trajectories, searchable_steps
from retrace.refine.stats import (
    RefineStats,
    SearchSummary,
    collect_refine_stats,
    plan_log,
    plot_refine_stats,
    step_logs,
    summarize_steps,
)
from retrace.refine.step_scorer import StepScorer, build_step_scorer
from retrace.refine.structural import StructuralProposer
from retrace.refine.variants import is_refined, no_search_trajectory

__all__ = [
    "ChatProposer", "HotSpan", "LeakCheck", "LeakGuard", "PlanParseError",
    "PlanRequest", "PlanScorer", "PlanSkeleton", "ProposalRequest", "Proposer", "RefineArguments", "RefineStats",
    "SearchSummary", "StepScorer", "StructuralProposer", "build_proposer", "build_step_scorer",
    "collect_refine_stats", "is_refined", "no_search_trajectory", "plan_block", "plan_log", "plot_refine_stats",
    "refine_trajectories", "searchable_steps", "step_logs", "summarize_steps",
]
