"""The planning pass: which repositories a split keeps and which shard does each, decided once.

Without a plan every shard of a run would read every source and take the duplicate decision over the
whole input again. `plan_split` reads the sources once, streaming (`retrace.repo.streaming`: workers
apply each repository's own rules and hand back names, content keys and MinHash signatures, never
texts), takes the near-duplicate and exact-file decisions once in input order (the rule
`ingest_sources` follows), and writes the plan: a header line (a fingerprint of the specs and the
ingest arguments, the split's ingest counts) and one line per kept repository. A later call with the
same fingerprint loads it without reading any source. `read_planned` then reads only the repositories
a worker was given and gives exactly the snapshots `ingest_sources` would have.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from retrace.atomic import write_text
from retrace.repo.parallel import shard_of
from retrace.repo.snapshot import IngestStats, RepoSnapshot, settle_repository, snapshot_of
from retrace.repo.sources import IngestArguments, parse_source, read_repository
from retrace.repo.streaming import PieceCache, kept_in_order, read_table_repository

logger = logging.getLogger(__name__)

PLAN_FORMAT = 1
"""Bumped when what a plan means changes, so an old plan is never reused."""


@dataclass(frozen=True)
class PlannedRepository:
    """One kept repository of a split, as the plan records it (everything JSON-safe)."""

    name: str
    """The repository name used for outputs (the snapshot's name)."""
    spec: str
    """The source spec it came from."""
    locator: str
    """How to read this one repository again: "" for a dir/archive/python spec, the commit for git, and
    for a table the pieces that hold it and its group key (see `streaming.table_locator`)."""
    shard: int
    """`shard_of(name, num_shards)`."""
    index: int
    """Its position among the split's kept repositories, in input order (across all specs)."""
    kept_files: tuple[str, ...] | None
    """The paths kept after the run's exact-file dedup; None: every file that passes the filters."""

    def to_dict(self) -> dict:
        record = dataclasses.asdict(self)
        record["kept_files"] = None if self.kept_files is None else list(self.kept_files)
        return record

    @classmethod
    def from_dict(cls, record: dict) -> PlannedRepository:
        kept = record.get("kept_files")
        return cls(name=record["name"], spec=record["spec"], locator=record.get("locator", ""),
                   shard=int(record["shard"]), index=int(record["index"]),
                   kept_files=None if kept is None else tuple(kept))


def plan_fingerprint(specs: list[str], args: IngestArguments) -> str:
    """A hash of what decides a plan: the specs (in order), every ingest argument but the lists of
    sources (the other split's specs must not invalidate this split's plan), and the plan format."""
    keys = {k: v for k, v in dataclasses.asdict(args).items() if k not in ("sources", "heldout_sources")}
    blob = json.dumps({"format": PLAN_FORMAT, "specs": list(specs), "args": keys}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _load_plan(path: Path, fingerprint: str) -> tuple[dict, list[PlannedRepository]] | None:
    """The header and entries of the plan at `path`, or None when there is none or it was made for
    other specs or arguments (or is not a complete plan)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0])
    except (OSError, IndexError, ValueError):
        return None
    if header.get("fingerprint") != fingerprint or header.get("repositories") != len(lines) - 1:
        return None
    return header, [PlannedRepository.from_dict(json.loads(line)) for line in lines[1:]]


def _stats_from(counts: dict) -> IngestStats:
    return IngestStats(counts["repos_seen"], counts["repos_kept"], counts["files_seen"], counts["files_kept"],
                       collections.Counter(counts["skipped"]))


def plan_split(specs: list[str], args: IngestArguments, stats: IngestStats, *, num_shards: int,
               plan_path: str | Path, num_workers: int = 1) -> list[PlannedRepository]:
    """The plan of one split: read it from `plan_path` when it was made for these specs and arguments
    (nothing is read from the sources then), else read the sources once and write it atomically.

    `stats` gets the split's ingest counts either way (the same `ingest_sources` gives). A plan made for
    another `num_shards` is reused with its shards recomputed (a shard depends on the name alone).
    """
    plan_path = Path(plan_path)
    fingerprint = plan_fingerprint(specs, args)
    loaded = _load_plan(plan_path, fingerprint)
    if loaded is not None:
        header, planned = loaded
        stats.merge(_stats_from(header["stats"]))
        logger.info("plan %s: reused (%d repositories)", plan_path, len(planned))
        if header.get("num_shards") != num_shards:
            planned = [dataclasses.replace(p, shard=shard_of(p.name, num_shards)) for p in planned]
        return planned
    own = IngestStats()
    planned = []
    for spec, filtered, kept in kept_in_order(list(specs), args, own, num_workers=num_workers):
        planned.append(PlannedRepository(
            name=filtered.name, spec=spec, locator=filtered.locator, shard=shard_of(filtered.name, num_shards),
            index=len(planned), kept_files=None if len(kept) == len(filtered.paths) else tuple(kept)))
    header = {"plan": PLAN_FORMAT, "fingerprint": fingerprint, "specs": list(specs), "num_shards": num_shards,
              "repositories": len(planned), "stats": own.to_dict()}
    records = [header, *(p.to_dict() for p in planned)]
    write_text(plan_path, "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    stats.merge(own)
    logger.info("plan %s: %d repositories kept of %d seen", plan_path, own.repos_kept, own.repos_seen)
    return planned


def read_planned(entries: Iterable[PlannedRepository], args: IngestArguments,
                 stats: IngestStats | None = None) -> Iterator[RepoSnapshot]:
    """The snapshots of exactly these planned repositories, in the order given, reading only them (for a
    table, only the pieces that hold them). Each equals what `ingest_sources` gives for it. `stats`, when
    given, counts these repositories' own files and skips. A repository its source no longer gives as
    planned (moved, emptied) is a ValueError naming it."""
    cache = PieceCache()
    for entry in entries:
        if parse_source(entry.spec).kind == "table":
            filtered = read_table_repository(entry.spec, entry.locator, entry.name, args, cache=cache)
        else:
            filtered = read_repository(entry.spec, args, locator=entry.locator)
        kept = settle_repository(filtered, stats, kept_paths=entry.kept_files)
        if kept is None or filtered.name != entry.name:
            raise ValueError(f"repository {entry.name!r} (source '{entry.spec}') no longer reads as planned: "
                             f"{filtered.reason or 'its kept files are gone'}; plan again")
        yield snapshot_of(filtered, kept)
