"""Statistics across shards: one file per shard, merged once into stats.json by the finish step.

A shard never writes stats.json. At the end of its run it writes `stats/shard-<i>-of-<n>.json`, computed
from the artifacts on disk for its own repositories (so a killed-and-resumed shard writes what a straight
one does): per split the repositories it was given and the sums `retrace.data.stats` reads back from
their files, its decontamination summary, and whether every repository is written (`complete`). The
scorer's cost, which only exists while searching, goes to `stats/shard-<i>-of-<n>.refine_cost.json`,
summed over the shard's runs. The finish step sums the shards' counts (`merge_counts`), recomputes the
token distributions from the budget records on disk over every shard's repositories (a distribution
cannot be summed), and adds the split's ingest counts from the plan.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from retrace.atomic import write_json
from retrace.data.budget_check import budget_summary, document_names
from retrace.data.stats import split_artifact_stats

logger = logging.getLogger(__name__)

STATS_DIR = "stats"


def shard_stats_path(output_dir: str | Path, shard_index: int, num_shards: int, suffix: str = "") -> Path:
    return Path(output_dir) / STATS_DIR / f"shard-{shard_index:05d}-of-{num_shards:05d}{suffix}.json"


def shard_split_stats(output_dir: str | Path, split: str, repos: list[str]) -> dict[str, Any]:
    """One split of a shard's stats file: its repositories and the counts over their artifacts on disk."""
    return {"repositories": len(repos), **split_artifact_stats(output_dir, split, document_names(output_dir, split, repos))}


def write_shard_stats(output_dir: str | Path, shard: tuple[int, int], splits: Mapping[str, dict[str, Any]],
                      unfinished: int, decontamination: dict[str, Any] | None) -> Path:
    """The shard's stats file (written last in a shard's run: the finish step waits for every shard's)."""
    stats: dict[str, Any] = {"shard": list(shard), "complete": unfinished == 0, "unfinished": unfinished,
                             "splits": dict(splits)}
    if decontamination is not None:
        stats["decontamination"] = decontamination
    path = shard_stats_path(output_dir, *shard)
    write_json(path, stats)
    return path


def add_refine_cost(output_dir: str | Path, shard: tuple[int, int], cost: Mapping[str, float]) -> None:
    """Add this run's scorer cost to the shard's running total (the cost of every run that searched)."""
    if not cost:
        return
    path = shard_stats_path(output_dir, *shard, suffix=".refine_cost")
    total = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    write_json(path, merge_counts([total, dict(cost)]))


def read_shard_stats(output_dir: str | Path, num_shards: int) -> dict[int, dict[str, Any]]:
    """The stats files present, by shard index."""
    found = {}
    for index in range(num_shards):
        path = shard_stats_path(output_dir, index, num_shards)
        if path.is_file():
            found[index] = json.loads(path.read_text(encoding="utf-8"))
    return found


def all_shards_complete(output_dir: str | Path, num_shards: int) -> bool:
    shards = read_shard_stats(output_dir, num_shards)
    return len(shards) == num_shards and all(s["complete"] for s in shards.values())


def summed_refine_cost(output_dir: str | Path, num_shards: int) -> dict[str, float]:
    paths = [shard_stats_path(output_dir, i, num_shards, suffix=".refine_cost") for i in range(num_shards)]
    return merge_counts([json.loads(p.read_text(encoding="utf-8")) for p in paths if p.is_file()])


def merge_counts(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Shards' stats as one: numbers summed, mappings merged key by key, equal values kept once.

    Values that differ and cannot be summed (each shard's report file name) become the list of them.
    """
    values: dict[str, list[Any]] = {}
    for part in parts:
        for key, value in part.items():
            values.setdefault(key, []).append(value)
    return {key: _merge_values(found) for key, found in values.items()}


def _merge_values(values: list[Any]) -> Any:
    if all(isinstance(v, Mapping) for v in values):
        return merge_counts(values)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return sum(values)
    distinct: list[Any] = []
    for value in values:
        if value not in distinct:
            distinct.append(value)
    return distinct[0] if len(distinct) == 1 else distinct


def merged_stats(output_dir: str | Path, num_shards: int, plans: Mapping[str, Any]) -> dict[str, Any]:
    """stats.json: every shard's counts summed, the documents' token figures from the records on disk.

    `plans` maps each split to its `SplitPlan` (every shard's repositories and the ingest counts).
    """
    shards = read_shard_stats(output_dir, num_shards)
    if missing := sorted(set(range(num_shards)) - set(shards)):
        logger.warning("stats.json: no stats file for shards %s yet (their runs have not ended): not counted",
                       missing)
    stats: dict[str, Any] = {"shards": num_shards, "splits": {}}
    decontamination = [s["decontamination"] for s in shards.values() if "decontamination" in s]
    if decontamination:
        stats["decontamination"] = merge_counts(decontamination)
    for split, plan in plans.items():
        counted = merge_counts(s["splits"][split] for s in shards.values() if split in s["splits"])
        counted.pop("repositories", None)
        counted = {**dict(sorted((k, v) for k, v in counted.items() if k != "text_sources")),
                   "text_sources": dict(sorted(counted.get("text_sources", {}).items()))}
        stats["splits"][split] = {**plan.ingest, **counted,
                                  "documents": budget_summary(output_dir, split, plan.all_names)}
    return stats
