"""The progress line of a synthesis run: repositories done of the shard's total, tokens, rates and an ETA.

Both executors report each finished batch here (`BatchResult`), so the line reads the same whichever ran
it. Repositories a resumed run finds already written count as done from the start; the ETA is tqdm's,
from this run's rate only. Failed batches are counted (and their repositories not) until a retry writes
them. The run's totals (`summary`) go to the shard's stats file.
"""

from __future__ import annotations

import sys

from tqdm.auto import tqdm

from retrace.synthesis.batch import REFINE_COST_KEYS, BatchResult


class Progress:
    """Counts over the batches this run finished; the line shows them as they come in."""

    def __init__(self, total: int, already_done: int, *, enabled: bool = True):
        self.batches = self.failed_batches = 0
        self.repositories = self.documents = self.tokens = self.text_steps = self.fallbacks = 0
        self.refine_cost: dict[str, float] = {}
        self.bar = tqdm(total=total, initial=already_done, desc="synthesis", unit="repo", file=sys.stderr,
                        disable=not enabled, dynamic_ncols=True)

    def update(self, result: BatchResult) -> None:
        self.batches += 1
        if result.failed:
            self.failed_batches += 1
        else:
            self.repositories += len(result.repos)
            self.documents += result.documents_written
            self.tokens += result.tokens_written
            self.text_steps += result.text_steps
            self.fallbacks += result.fallbacks
            for key in REFINE_COST_KEYS:
                if key in result.refine_cost:
                    self.refine_cost[key] = self.refine_cost.get(key, 0) + result.refine_cost[key]
        self.bar.set_postfix_str(self.postfix(), refresh=False)
        self.bar.update(0 if result.failed else len(result.repos))

    def postfix(self) -> str:
        fallback_rate = self.fallbacks / self.text_steps if self.text_steps else 0.0
        failure_rate = self.failed_batches / self.batches if self.batches else 0.0
        return (f"tokens {self.tokens:,}, fallback {fallback_rate:.1%} of texts, "
                f"failed {failure_rate:.1%} of batches")

    def summary(self) -> dict[str, object]:
        """This run's work (not recomputable from disk: a resumed run counts only its own)."""
        return {"batches": self.batches, "failed_batches": self.failed_batches,
                "repositories_written": self.repositories, "documents_written": self.documents,
                "tokens_written": self.tokens, "text_steps": self.text_steps, "fallbacks": self.fallbacks}

    def close(self) -> None:
        self.bar.close()
