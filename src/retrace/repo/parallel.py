"""Fan-out of repository work: shards across machines, worker processes within one.

`shard_of` assigns a repository to a shard by a stable hash of its name, so any launcher (a SLURM
array, a loop over `--shard_index`) splits the same input the same way whatever the input order, and
each shard writes only its own repositories. `analyze_in_workers` runs the model-free analysis in a
process pool; results come back in input order, so output does not depend on the number of workers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from tqdm.auto import tqdm

from retrace.repo.graph import RepoGraph, analyze_repository
from retrace.repo.snapshot import RepoSnapshot

T = TypeVar("T")


@dataclass
class ScaleArguments:
    """How one synthesis run shares the work: its shard of the input, its processes, its batch size."""

    shard_index: int = field(default=0, metadata={"help": "Which shard this run writes (0-based)."})
    num_shards: int = field(default=1, metadata={"help": "How many shards the input is split into."})
    num_workers: int = field(default=1, metadata={"help": "Processes for repository analysis (1: in-process)."})
    repos_per_batch: int = field(default=8, metadata={
        "help": "Repositories simulated and written together; a killed run loses at most one batch of work."})
    max_failed_batches: int = field(default=3, metadata={
        "help": "A batch whose model requests failed for good (a server's retries spent) is not written and is "
                "tried once more after the others; past this many such failures the run stops, naming the server."})

    def __post_init__(self) -> None:
        if self.num_shards < 1 or not 0 <= self.shard_index < self.num_shards:
            raise ValueError(f"key 'shard_index': {self.shard_index} is not in [0, num_shards={self.num_shards})")
        if self.num_workers < 1 or self.repos_per_batch < 1:
            raise ValueError("keys 'num_workers' and 'repos_per_batch' must be at least 1")
        if self.max_failed_batches < 0:
            raise ValueError(f"key 'max_failed_batches': must be >= 0, got {self.max_failed_batches}")


def shard_of(repo: str, num_shards: int) -> int:
    """The shard of a repository: stable across runs, machines and Python versions (not `hash()`)."""
    digest = hashlib.sha1(repo.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % num_shards


def batches(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start:start + size])


def analyze_in_workers(snapshots: list[RepoSnapshot], num_workers: int = 1) -> list[RepoGraph]:
    """`analyze_repository` over many snapshots, in input order, in `num_workers` processes."""
    if num_workers <= 1 or len(snapshots) <= 1:
        return [analyze_repository(s) for s in snapshots]
    with ProcessPoolExecutor(max_workers=num_workers) as pool:
        results = pool.map(analyze_repository, snapshots, chunksize=max(1, len(snapshots) // (4 * num_workers)))
        return list(tqdm(results, total=len(snapshots), desc="analyze", unit="repo"))
