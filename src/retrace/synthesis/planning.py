"""Which repositories a run does: every split planned once, then each shard reads only its own.

`plan_inputs` runs the planning pass (`retrace.repo.plan`: sources read once, filters and the
near-duplicate decision taken once in input order, the plan written to `<output_dir>/plan/<split>.jsonl`
and reused on resume) and keeps this shard's entries. A worker turns entries into snapshots with
`read_entries`, which reads only those repositories; entries are small and plain, so they travel to
Ray tasks instead of file texts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrace.repo.parallel import ScaleArguments
from retrace.repo.plan import PlannedRepository, plan_split, read_planned
from retrace.repo.snapshot import IngestStats, RepoSnapshot
from retrace.repo.sources import IngestArguments

PLAN_DIR = "plan"


@dataclass
class SplitPlan:
    """One split's repositories: all of them (every shard's, in input order) and this shard's entries."""

    split: str
    all_names: list[str]
    entries: list[PlannedRepository]  # this shard's, in input order
    ingest: dict[str, Any]  # the split's ingest counts (IngestStats.to_dict), the same for every shard

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]


def plan_inputs(split: str, specs: Sequence[str], ingest_args: IngestArguments, scale: ScaleArguments,
                output_dir: str | Path) -> SplitPlan:
    """Plan `split` (or reuse its plan) and keep this shard's repositories."""
    stats = IngestStats()
    planned = plan_split(list(specs), ingest_args, stats, num_shards=scale.num_shards,
                         plan_path=Path(output_dir) / PLAN_DIR / f"{split}.jsonl", num_workers=scale.num_workers)
    return SplitPlan(split, [p.name for p in planned], [p for p in planned if p.shard == scale.shard_index],
                     stats.to_dict())


def read_entries(entries: Sequence[PlannedRepository], ingest_args: IngestArguments) -> Iterator[RepoSnapshot]:
    """The snapshots of these entries, in order, reading only them."""
    return read_planned(list(entries), ingest_args)
