"""Mixture arithmetic: token budgets per source, and a seeded choice of documents that meets each budget.

Budgets are in tokens as packed (BOS/EOS included, masked tokens included): what a mixture weight means
in ProLong-style recipes, where the share is of the tokens the model reads. A source sized by `tokens`
gets that budget. Sources sized by `weight` share `total_tokens` in proportion to their weights; without
a total, the total is the largest one no weighted source has to repeat for (the scarcest source is used
once, whole). A single unbudgeted source (the `documents` key) is used whole.

Choosing documents: a source's rows are permuted with a seed derived from the recipe's seed and the
source name (adding a source does not reshuffle the others), capped at `max_documents`, and taken in
that order until the budget is reached, so the realised count exceeds the budget by less than one
document. A budget larger than the source repeats it (a fresh permutation per pass), and the number of
passes is recorded.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from retrace.training.sources import SourceSpec

logger = logging.getLogger(__name__)


@dataclass
class Selection:
    """The rows chosen from one source, in training order, and what they amount to."""

    indices: list[int]
    budget: int | None
    available_tokens: int
    realised_tokens: int
    passes: float


def source_seed(seed: int, name: str) -> int:
    """A per-source seed: stable across runs, independent of the other sources."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little")


def plan_budgets(specs: Sequence[SourceSpec], available: dict[str, int], total_tokens: int | None) -> dict[str, int | None]:
    """Token budget per source name (None: use the source whole)."""
    if any(s.tokens is not None for s in specs):
        if total_tokens is not None and total_tokens != sum(s.tokens for s in specs):
            logger.warning("mixture_total_tokens %d differs from the sum of the sources' budgets %d; "
                           "the budgets win", total_tokens, sum(s.tokens for s in specs))
        return {s.name: s.tokens for s in specs}
    weighted = [s for s in specs if s.weight is not None]
    if not weighted:
        if total_tokens is not None:
            return {s.name: total_tokens for s in specs}
        return {s.name: None for s in specs}
    weight_sum = sum(s.weight for s in weighted)
    if total_tokens is None:
        total_tokens = min(int(available[s.name] * weight_sum / s.weight) for s in weighted)
        logger.info("mixture total: %d tokens (the largest no source repeats for)", total_tokens)
    return {s.name: round(total_tokens * s.weight / weight_sum) for s in weighted}


def select_documents(num_tokens: Sequence[int], budget: int | None, seed: int,
                     max_documents: int | None = None) -> Selection:
    """Rows (indices into `num_tokens`) meeting `budget` tokens: seeded order, repeats when too small."""
    rng = np.random.default_rng(seed)
    lengths = np.asarray(num_tokens, dtype=np.int64)
    order = rng.permutation(len(lengths))
    if max_documents is not None:
        order = order[:max_documents]
    available = int(lengths[order].sum())
    if budget is None:
        return Selection(order.tolist(), None, available, available, 1.0 if len(order) else 0.0)
    if available == 0:
        raise ValueError("a mixture source with a token budget has no tokens")
    chosen: list[np.ndarray] = []
    realised = 0
    while realised < budget:
        if chosen:  # another pass over the source, in a fresh order
            order = rng.permutation(order)
        cumulative = np.cumsum(lengths[order])
        need = budget - realised
        stop = int(np.searchsorted(cumulative, need, side="left")) + 1  # first prefix reaching the need
        stop = min(stop, len(order))
        chosen.append(order[:stop])
        realised += int(cumulative[stop - 1])
    indices = np.concatenate(chosen).tolist()
    return Selection(indices, budget, available, realised, realised / available)
