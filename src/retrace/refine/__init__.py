"""Search-based refinement of Think steps (the paper's CoT search): reasoning that makes the real code likely.

For each Think right before a Write, a proposer rewrites it, a leakage guard rejects rewrites that copy the
code, and a scorer keeps a rewrite only if it lowers the NLL of the real file that follows (see `search`).
Uses `retrace.llm` (scorer, chat backends) and `retrace.data` (artifacts) only.
"""

from retrace.refine.config import PROPOSER_NAMES, RefineArguments
from retrace.refine.leakage import LeakCheck, LeakGuard
from retrace.refine.proposers import (
    PROPOSERS,
    ChatProposer,
    HotSpan,
    ProposalRequest,
    Proposer,
    build_proposer,
)
from retrace.refine.search import refine_trajectories, searchable_steps
from retrace.refine.stats import (
    RefineStats,
    SearchSummary,
    collect_refine_stats,
    plot_refine_stats,
    step_logs,
    summarize_steps,
)
from retrace.refine.step_scorer import StepScorer, build_step_scorer
from retrace.refine.structural import StructuralProposer
from retrace.refine.variants import is_refined, no_search_trajectory

__all__ = [
    "PROPOSERS", "PROPOSER_NAMES", "ChatProposer", "HotSpan", "LeakCheck", "LeakGuard", "ProposalRequest",
    "Proposer", "RefineArguments", "RefineStats", "SearchSummary", "StepScorer", "StructuralProposer",
    "build_proposer", "build_step_scorer", "collect_refine_stats", "is_refined", "no_search_trajectory", "plot_refine_stats",
    "refine_trajectories", "searchable_steps", "step_logs", "summarize_steps",
]
