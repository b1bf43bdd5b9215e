"""Source specs in recipes, and ingesting a list of them into filtered repository snapshots.

A spec names one repository (or, for a table, many) and its kind is stated by a prefix or detected:

    dir:PATH                    a local directory (detected for an existing directory)
    git:LOCATION[@REV]          a git repository by URL or local path at a revision (default: HEAD);
                                detected for git+https://..., https://... / ssh://... / file://...,
                                an existing bare repository (*.git), or an existing directory with @REV
    archive:PATH                a .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz or .zip file (detected by suffix)
    table:PATH_OR_NAME          a parquet / JSON(L) table of repositories (detected by suffix), a directory
                                or glob of such files (read in sorted order), or a `datasets` hub name on
                                machines that reach the hub
    python:NAME                 an importable package (or single module), standard library or installed

Each single-repository kind is one reader in `SOURCE_KINDS`; tables are read piece by piece
(`retrace.repo.tables`, `retrace.repo.streaming`). A spec that cannot be read is an error naming it,
unless `skip_bad_sources` is set: then it is logged and counted as `bad_source`.
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from retrace.repo.archives import ArchiveLimits, ArchiveRejected, archive_stem, extract_archive, is_archive
from retrace.repo.filters import FilterArguments, vendored_dir
from retrace.repo.gitsource import GitError, fetch_commit, git_entries, split_revision
from retrace.repo.localfs import FileEntry, read_regular, walk_dir
from retrace.repo.snapshot import (
    FilteredRepository,
    IngestStats,
    RepoSnapshot,
    filter_repository,
    snapshot_of,
)
from retrace.repo.tables import TableColumns, table_format

logger = logging.getLogger(__name__)

KIND_PREFIXES = ("dir", "git", "archive", "table", "python")
_GIT_SCHEMES = ("https://", "http://", "ssh://", "git://", "file://")


@dataclass
class IngestArguments(FilterArguments):
    """Which repositories to read, how to read them, and (inherited) what to keep of them."""

    sources: list[str] = field(default_factory=list, metadata={
        "help": "Repositories to synthesize from: paths, URLs or specs (dir:, git:URL@REV, archive:, table:, "
                "python:NAME); see retrace.repo.sources."})
    heldout_sources: list[str] = field(default_factory=list, metadata={
        "help": "Repositories processed the same way but written under <output_dir>/heldout/, never trained on."})
    skip_bad_sources: bool = field(default=False, metadata={
        "help": "Count a source that cannot be read as `bad_source` and go on, instead of stopping."})
    archive_max_bytes: int = field(default=1_000_000_000, metadata={
        "help": "An archive declaring more uncompressed bytes is refused (`archive_too_large`)."})
    archive_max_members: int = field(default=100_000, metadata={
        "help": "An archive with more members is refused (`archive_too_many_members`)."})
    archive_max_ratio: float = field(default=100.0, metadata={
        "help": "An archive past 1 MB whose uncompressed/compressed ratio exceeds this is refused (`archive_bomb`)."})
    table_repo_column: str = field(default="repo_name", metadata={"help": "Table column naming the repository."})
    table_files_column: str = field(default="files", metadata={
        "help": "Table column holding a repository's files as a list of {path, content}; when absent, "
                "each row is one file."})
    table_path_column: str = field(default="path", metadata={"help": "Table column or file field: the path."})
    table_content_column: str = field(default="content", metadata={
        "help": "Table column or file field: the text (or bytes)."})
    table_license_column: str = field(default="license", metadata={
        "help": "Table column with the repository's licence id (or list of ids); optional."})
    table_split: str = field(default="train", metadata={"help": "Split of the table to read."})

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.sources and not self.heldout_sources:
            raise ValueError("key 'sources' is empty: name at least one repository to synthesize from")
        for spec in self.sources + self.heldout_sources:
            try:
                parse_source(spec)
            except ValueError:
                if not self.skip_bad_sources:
                    raise

    def table_columns(self) -> TableColumns:
        return TableColumns(self.table_repo_column, self.table_files_column, self.table_path_column,
                            self.table_content_column, self.table_license_column)


@dataclass(frozen=True)
class SourceSpec:
    spec: str
    kind: str
    location: str
    revision: str | None = None


def cache_root() -> Path:
    """Where fetched and extracted sources are kept: `$RETRACE_CACHE` (default ~/.cache/retrace)."""
    return Path(os.environ.get("RETRACE_CACHE", "~/.cache/retrace")).expanduser()


def _is_bare_git(path: Path) -> bool:
    return path.is_dir() and (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def _detect(spec: str) -> SourceSpec:
    if spec.startswith("git+"):
        return SourceSpec(spec, "git", *split_revision(spec.removeprefix("git+")))
    if spec.startswith(_GIT_SCHEMES):
        return SourceSpec(spec, "git", *split_revision(spec))
    path = Path(spec).expanduser()
    if _is_bare_git(path):
        return SourceSpec(spec, "git", spec)
    if path.is_dir():
        return SourceSpec(spec, "dir", spec)
    if path.is_file() and is_archive(spec):
        return SourceSpec(spec, "archive", spec)
    if path.is_file() and table_format(spec):
        return SourceSpec(spec, "table", spec)
    location, revision = split_revision(spec)
    if revision and Path(location).expanduser().is_dir():
        return SourceSpec(spec, "git", location, revision)
    raise ValueError(f"source '{spec}': not an existing directory, archive, table or git location "
                     f"(or state the kind: {', '.join(p + ':' for p in KIND_PREFIXES)})")


def parse_source(spec: str) -> SourceSpec:
    """The kind and location a spec names; a ValueError naming the spec when it names nothing usable.

    Local paths are checked to exist; remote locations are only checked when read.
    """
    kind, sep, rest = spec.partition(":")
    if not sep or kind not in KIND_PREFIXES or (kind == "git" and rest.startswith("//")):
        return _detect(spec)
    if not rest:
        raise ValueError(f"source '{spec}': nothing after '{kind}:'")
    if kind == "git":
        return SourceSpec(spec, "git", *split_revision(rest.removeprefix("git+")))
    if kind == "python":
        _python_target(spec, rest)
    elif kind == "dir" and not Path(rest).expanduser().is_dir():
        raise ValueError(f"source '{spec}': not a directory")
    elif kind == "archive" and not Path(rest).expanduser().is_file():
        raise ValueError(f"source '{spec}': no such archive file")
    return SourceSpec(spec, kind, rest)


def resolve_source(spec: str) -> Path:
    """The local directory a `dir` or `python:` spec names (kept for callers that need a path)."""
    source = parse_source(spec)
    if source.kind == "python":
        return _python_target(spec, source.location)
    if source.kind != "dir":
        raise ValueError(f"source '{spec}': a {source.kind} source has no local directory")
    return Path(source.location).expanduser().resolve()


def _python_target(spec: str, name: str) -> Path:
    """A package's directory, or a single module's file, found without importing it."""
    try:
        found = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"source '{spec}': cannot locate package {name!r}: {exc}") from None
    if found is not None and found.submodule_search_locations:
        return Path(next(iter(found.submodule_search_locations))).resolve()
    if found is not None and found.origin and found.origin.endswith(".py") and os.path.isfile(found.origin):
        return Path(found.origin).resolve()
    raise ValueError(f"source '{spec}': {name!r} is not an importable package or Python module")


def repo_name(spec: str) -> str:
    """The repository name a single-repository spec gives its snapshot."""
    source = parse_source(spec)
    if source.kind == "python":
        return source.location
    location = source.location.rstrip("/")
    if source.kind == "archive":
        return archive_stem(location)
    base = os.path.basename(location) or os.path.basename(os.path.realpath(os.path.expanduser(location)))
    return base.removesuffix(".git") if source.kind == "git" else base


class SourceError(Exception):
    """A source that cannot be read (the message names the spec)."""


# Each single-repository kind: (source, args, locator, signature) -> the repository after its own rules.
# `locator` pins what a plan saw (a git commit); "" reads the spec as written. Tables are read by
# pieces instead (retrace.repo.streaming).
ReadRepository = Callable[[SourceSpec, IngestArguments, str, bool], FilteredRepository]


def _read_dir(source, args, locator, signature):
    root = os.path.realpath(os.path.expanduser(source.location))
    skipped: collections.Counter = collections.Counter()
    entries = walk_dir(root, skipped, prune=vendored_dir if args.skip_vendored else None)
    return filter_repository(entries, name=repo_name(source.spec), source=source.spec, filters=args,
                             skipped=skipped, signature=signature)


def _read_python(source, args, locator, signature):
    target = _python_target(source.spec, source.location)
    if target.is_dir():
        return _read_dir(SourceSpec(source.spec, "dir", str(target)), args, locator, signature)
    entry = FileEntry(target.name, None, lambda max_bytes: read_regular(str(target), max_bytes))
    return filter_repository([entry], name=source.location, source=source.spec, filters=args, signature=signature)


def _read_git(source, args, locator, signature):
    try:
        repo, sha = fetch_commit(source.location, locator or source.revision, cache_root())
    except GitError as exc:
        raise SourceError(f"source '{source.spec}': {exc}") from None
    skipped: collections.Counter = collections.Counter()
    with git_entries(repo, sha, skipped) as entries:
        filtered = filter_repository(entries, name=repo_name(source.spec), source=source.spec, revision=sha,
                                     filters=args, skipped=skipped, signature=signature)
    filtered.locator = sha  # a moving revision (a branch, HEAD) is read again at the commit planned
    return filtered


def _read_archive(source, args, locator, signature):
    limits = ArchiveLimits(args.archive_max_bytes, args.archive_max_members, args.archive_max_ratio,
                           args.max_file_bytes)
    name = repo_name(source.spec)
    try:
        root, skipped = extract_archive(Path(source.location).expanduser(), cache_root(), limits)
    except ArchiveRejected as exc:
        logger.warning("source '%s': archive refused (%s)", source.spec, exc)
        return FilteredRepository(name=name, source=source.spec, revision=None, license=None, description="",
                                  paths=[], file_keys=[], signature=None, stats=IngestStats(repos_seen=1),
                                  reason=exc.reason)
    except OSError as exc:
        raise SourceError(f"source '{source.spec}': cannot read archive: {exc}") from None
    entries = walk_dir(str(root.resolve()), skipped, prune=vendored_dir if args.skip_vendored else None)
    return filter_repository(entries, name=name, source=source.spec, filters=args, skipped=skipped,
                             signature=signature)


SOURCE_KINDS: dict[str, ReadRepository] = {
    "dir": _read_dir, "git": _read_git, "archive": _read_archive, "python": _read_python,
}
"""Readers of the single-repository kinds; `table:` specs hold many repositories and are read by pieces."""


def read_repository(spec: str, args: IngestArguments, *, locator: str = "",
                    signature: bool = False) -> FilteredRepository:
    """One single-repository spec after its own rules; a SourceError or ValueError naming the spec when it
    cannot be read."""
    source = parse_source(spec)
    if source.kind not in SOURCE_KINDS:
        raise ValueError(f"source '{spec}': a {source.kind} source holds many repositories")
    return SOURCE_KINDS[source.kind](source, args, locator, signature)


def ingest_sources(specs: list[str], args: IngestArguments, stats: IngestStats) -> list[RepoSnapshot]:
    """Snapshots of every kept repository, in spec order (a table's in row order); skips are counted.

    One run's duplicate indexes span all `specs`: the first of two duplicates in this order is kept.
    The same reading and the same decision as the planning pass (`retrace.repo.plan`), with texts kept.
    """
    from retrace.repo.streaming import kept_in_order  # streaming reads through this module's readers

    kept = kept_in_order(specs, args, stats, keep_texts=True)
    return [snapshot_of(filtered, paths) for _, filtered, paths in kept]
