"""Search-based refinement of Think steps (the paper's CoT search): reasoning that makes the real code likely.

For each Think of a sub-agent that writes a file (the one right before the Write, and one before its Reads),
a proposer rewrites it, a leakage guard rejects rewrites that copy the code, and a scorer keeps a rewrite
only if it lowers the NLL of the real file that follows (see `search`, `targets`, `loop`).
With `refine_plan`, the main agent's plan is searched the same way first: only its per-file descriptions
change, toward the first tokens of the files that follow (see `plan_search`, `plan_scorer`).
Uses `retrace.llm` (the proposer's and the scorer's engines) and `retrace.data` (artifacts) only.
"""

from retrace.refine.config import RefineArguments
from retrace.refine.leakage import LeakCheck, LeakGuard
from retrace.refine.plan import apply_reply, plan_block, reply_descriptions
from retrace.refine.plan_scorer import PlanScorer
from retrace.refine.proposers import (
    ChatProposer,
    HotSpan,
    PlanRequest,
    ProposalRequest,
    Proposer,
    build_proposer,
)
from retrace.refine.replies import CleanReply, clean_reply
from retrace.refine.search import refine_trajectories
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
from retrace.refine.targets import search_targets, searchable_steps
from retrace.refine.variants import is_refined, no_search_trajectory

__all__ = [
    "ChatProposer", "CleanReply", "HotSpan", "LeakCheck", "LeakGuard", "PlanRequest", "PlanScorer",
    "ProposalRequest", "Proposer", "RefineArguments", "RefineStats", "SearchSummary", "StepScorer",
    "StructuralProposer", "apply_reply", "build_proposer", "build_step_scorer", "clean_reply",
    "collect_refine_stats", "is_refined", "no_search_trajectory", "plan_block", "plan_log", "plot_refine_stats",
    "refine_trajectories", "reply_descriptions", "search_targets", "searchable_steps", "step_logs",
    "summarize_steps",
]
