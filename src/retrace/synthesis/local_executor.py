"""The local executor: this process reads, analyses (in `num_workers` processes) and writes, batch by batch.

Batches are consecutive runs of `repos_per_batch` repositories of the shard's to-do list, in input order;
the engines are built once (`BatchWriter`) and serve every batch and both splits. Only one batch's
repositories are in memory at a time, plus the batches waiting for their second try.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any

from retrace.synthesis.batch import AnalyzedRepository, BatchWriter, analyze_batch
from retrace.synthesis.context import RunContext
from retrace.synthesis.planning import read_entries


class LocalExecutor:
    def __init__(self, context: RunContext):
        self.context = context
        self.writer: BatchWriter | None = None

    def run(self, todo: Mapping[str, Sequence[Any]]) -> int:
        """Write the repositories of each split (plan entries, this shard's, not done yet), split after split;
        returns how many are left unwritten."""
        return sum(self._run_split(split, entries) for split, entries in todo.items())

    def _run_split(self, split: str, entries: Sequence[Any]) -> int:
        ctx = self.context
        if self.writer is None:
            self.writer = BatchWriter(ctx.settings)
        snapshots = read_entries(entries, ctx.ingest)
        retry: list[list[AnalyzedRepository]] = []
        while batch := list(islice(snapshots, ctx.scale.repos_per_batch)):
            analyzed = analyze_batch(batch, ctx.settings, ctx.scale.num_workers)
            if self._attempt(analyzed, split):
                retry.append(analyzed)
        # each failed batch once more, after the rest
        return sum(len(analyzed) for analyzed in retry if self._attempt(analyzed, split))

    def _attempt(self, analyzed: list[AnalyzedRepository], split: str) -> bool:
        """Write a batch; True when it failed (and is not written)."""
        result = self.writer.run(analyzed, split)
        self.context.record(result)
        return result.failed

    def usage(self) -> dict[str, object]:
        return self.writer.usage() if self.writer else {}

    def close(self) -> None:
        pass
