"""What every executor shares in one run: the recipe, the progress line and the tally of failed batches.

A batch whose model requests failed is not written (its repositories stay not done) and is tried once
more after the others; past `max_failed_batches` such failures the run stops at once, naming the last
error (which names the server). The executor only reports results here; the rules live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from retrace.repo.parallel import ScaleArguments
from retrace.repo.sources import IngestArguments
from retrace.synthesis.batch import BatchResult, BatchSettings
from retrace.synthesis.progress import Progress


@dataclass
class RunContext:
    ingest: IngestArguments
    settings: BatchSettings
    scale: ScaleArguments
    progress: Progress
    failures: list[str] = field(default_factory=list)  # the errors of the batches that failed, in this run

    def record(self, result: BatchResult) -> None:
        """Count a finished batch; raises SystemExit once more batches failed than the recipe allows."""
        self.progress.update(result)
        if not result.failed:
            return
        self.failures.append(result.failure)
        if len(self.failures) > self.scale.max_failed_batches:
            raise SystemExit(f"synthesis stopped: {len(self.failures)} batches lost model requests "
                             f"(max_failed_batches: {self.scale.max_failed_batches}); the last: {result.failure}")
