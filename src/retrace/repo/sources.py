"""Source specs in recipes, and ingesting a list of them.

A spec is a local directory path, or `python:NAME` for the directory of an importable package
(standard library or installed), found without importing it. Ingesting never reads outside the
directory a spec resolves to.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from retrace.repo.snapshot import IngestStats, RepoSnapshot, ingest_local_dir

logger = logging.getLogger(__name__)


@dataclass
class IngestArguments:
    """Which repositories to read and what to keep of them."""

    sources: list[str] = field(default_factory=list, metadata={
        "help": "Repositories to synthesize from: local directory paths or `python:NAME` (an importable package)."})
    heldout_sources: list[str] = field(default_factory=list, metadata={
        "help": "Repositories processed the same way but written under <output_dir>/heldout/, never trained on."})
    languages: list[str] = field(default_factory=lambda: ["python"], metadata={
        "help": "Languages kept (by file extension)."})
    max_file_bytes: int = field(default=1_000_000, metadata={"help": "Larger files are skipped and counted."})

    def __post_init__(self) -> None:
        if not self.sources and not self.heldout_sources:
            raise ValueError("key 'sources' is empty: name at least one repository to synthesize from")
        for spec in self.sources + self.heldout_sources:
            resolve_source(spec)


def resolve_source(spec: str) -> Path:
    """The directory a spec names; a clear ValueError when it names nothing usable."""
    if spec.startswith("python:"):
        name = spec.removeprefix("python:")
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError) as exc:
            raise ValueError(f"source '{spec}': cannot locate package {name!r}: {exc}") from None
        if found is None or not found.submodule_search_locations:
            raise ValueError(f"source '{spec}': {name!r} is not an importable package directory")
        return Path(next(iter(found.submodule_search_locations))).resolve()
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise ValueError(f"source '{spec}': not a directory (expected a local path or python:NAME)")
    return path.resolve()


def repo_name(spec: str) -> str:
    return spec.removeprefix("python:") if spec.startswith("python:") else resolve_source(spec).name


def ingest_sources(specs: list[str], args: IngestArguments, stats: IngestStats) -> list[RepoSnapshot]:
    """Snapshots of every spec that keeps at least one file, in spec order; empty ones are counted."""
    snapshots = []
    for spec in tqdm(specs, desc="ingest", unit="repo", disable=len(specs) < 2):
        snapshot = ingest_local_dir(resolve_source(spec), name=repo_name(spec), languages=tuple(args.languages),
                                    max_file_bytes=args.max_file_bytes, stats=stats)
        if snapshot is not None:
            snapshot.source = spec
            snapshots.append(snapshot)
    names = [s.name for s in snapshots]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"two sources give the same repository name(s) {sorted(duplicates)}; rename one")
    return snapshots
