"""Fan-out of repository work: shards across machines, worker processes within one, or a Ray cluster.

`shard_of` assigns a repository to a shard by a stable hash of its name, so any launcher (a SLURM
array, a loop over `--shard_index`) splits the same input the same way whatever the input order, and
each shard writes only its own repositories. `analyze_in_workers` runs the model-free analysis in a
process pool; results come back in input order, so output does not depend on the number of workers.
`ScaleArguments` holds the recipe keys of both executors (`local`, `ray`; retrace.synthesis runs them).
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

EXECUTORS = ("local", "ray")
FINISH_MODES = ("auto", "only", "skip")


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
    executor: str = field(default="local", metadata={
        "help": "Who runs the batches: local (this process, `num_workers` analysis processes) or ray (Ray Data: "
                "analysis in CPU tasks streaming ahead of a pool of model workers; docs/scale.md).",
        "choices": list(EXECUTORS)})
    finish: str = field(default="auto", metadata={
        "help": "The finish step (stats.json, refine statistics, the dataset card, the viewer, built once from "
                "every shard's output): auto (at the end of a one-shard run; on a sharded run, by the shard that "
                "finds every shard's stats file complete), only (no synthesis: just the finish step), skip.",
        "choices": list(FINISH_MODES)})
    request_cache: bool = field(default=True, metadata={
        "help": "Keep model replies under <output_dir>/cache/requests, keyed by the request, so a retried or "
                "resumed batch does not pay for the replies it already got."})
    ray_address: str = field(default="", metadata={
        "help": "executor ray: the cluster to join (e.g. auto, or ray://host:10001); empty: start a local one."})
    ray_num_cpus: int = field(default=0, metadata={
        "help": "executor ray, local cluster: CPUs it may use (0: all of this machine's)."})
    ray_model_workers: int = field(default=1, metadata={
        "help": "executor ray: workers that each hold the engines (policy, proposer, scorer) and simulate, refine "
                "and export batches."})
    ray_gpus_per_model_worker: float = field(default=0.0, metadata={
        "help": "executor ray: GPUs reserved per model worker (an in-process vLLM or transformers engine)."})
    ray_cpus_per_model_worker: float = field(default=1.0, metadata={
        "help": "executor ray: CPUs reserved per model worker."})

    def __post_init__(self) -> None:
        if self.num_shards < 1 or not 0 <= self.shard_index < self.num_shards:
            raise ValueError(f"key 'shard_index': {self.shard_index} is not in [0, num_shards={self.num_shards})")
        if self.num_workers < 1 or self.repos_per_batch < 1:
            raise ValueError("keys 'num_workers' and 'repos_per_batch' must be at least 1")
        if self.max_failed_batches < 0:
            raise ValueError(f"key 'max_failed_batches': must be >= 0, got {self.max_failed_batches}")
        for key, allowed in (("executor", EXECUTORS), ("finish", FINISH_MODES)):
            if getattr(self, key) not in allowed:
                raise ValueError(f"key '{key}': expected one of {list(allowed)}, got {getattr(self, key)!r}")
        if self.ray_model_workers < 1 or self.ray_num_cpus < 0 or self.ray_gpus_per_model_worker < 0:
            raise ValueError("keys 'ray_model_workers' (>= 1), 'ray_num_cpus' and 'ray_gpus_per_model_worker' "
                             "(>= 0) are out of range")


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
