"""Source specs in recipes, and ingesting a list of them into filtered repository snapshots.

A spec names one repository (or, for a table, many) and its kind is stated by a prefix or detected:

    dir:PATH                    a local directory (detected for an existing directory)
    git:LOCATION[@REV]          a git repository by URL or local path at a revision (default: HEAD);
                                detected for git+https://..., https://... / ssh://... / file://...,
                                an existing bare repository (*.git), or an existing directory with @REV
    archive:PATH                a .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz or .zip file (detected by suffix)
    table:PATH_OR_NAME          a parquet / JSON(L) table of repositories (detected by suffix), or a
                                `datasets` hub name on machines that reach the hub
    python:NAME                 an importable package (or single module), standard library or installed

Each kind is one function in `SOURCE_KINDS`. A spec that cannot be read is an error naming it, unless
`skip_bad_sources` is set: then it is logged and counted as `bad_source`.
"""

from __future__ import annotations

import collections
import importlib.util
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from retrace.repo.archives import ArchiveLimits, ArchiveRejected, archive_stem, extract_archive, is_archive
from retrace.repo.dedup import RunDedup
from retrace.repo.filters import FilterArguments, vendored_dir
from retrace.repo.gitsource import GitError, fetch_commit, git_entries, split_revision
from retrace.repo.localfs import FileEntry, read_regular, walk_dir
from retrace.repo.snapshot import IngestStats, RepoSnapshot, build_snapshot, ingest_local_dir
from retrace.repo.tables import TableColumns, load_table, table_format, table_repositories

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


# Each kind: (source, args, stats, run) -> the snapshots it keeps, in order.
Ingest = Callable[[SourceSpec, IngestArguments, IngestStats, RunDedup], Iterator[RepoSnapshot | None]]


def _ingest_dir(source, args, stats, run):
    snapshot = ingest_local_dir(Path(source.location).expanduser(), name=repo_name(source.spec), filters=args,
                                stats=stats, run=run)
    if snapshot is not None:
        snapshot.source = source.spec
    yield snapshot


def _ingest_python(source, args, stats, run):
    target = _python_target(source.spec, source.location)
    if target.is_dir():
        yield from _ingest_dir(SourceSpec(source.spec, "dir", str(target)), args, stats, run)
        return
    entry = FileEntry(target.name, None, lambda max_bytes: read_regular(str(target), max_bytes))
    yield build_snapshot([entry], name=source.location, source=source.spec, filters=args, stats=stats, run=run)


def _ingest_git(source, args, stats, run):
    try:
        repo, sha = fetch_commit(source.location, source.revision, cache_root())
    except GitError as exc:
        raise SourceError(f"source '{source.spec}': {exc}") from None
    skipped = collections.Counter()
    with git_entries(repo, sha, skipped) as entries:
        yield build_snapshot(entries, name=repo_name(source.spec), source=source.spec, revision=sha, filters=args,
                             stats=stats, run=run, skipped=skipped)


def _ingest_archive(source, args, stats, run):
    limits = ArchiveLimits(args.archive_max_bytes, args.archive_max_members, args.archive_max_ratio,
                           args.max_file_bytes)
    try:
        root, skipped = extract_archive(Path(source.location).expanduser(), cache_root(), limits)
    except ArchiveRejected as exc:
        logger.warning("source '%s': archive refused (%s)", source.spec, exc)
        stats.merge(IngestStats(repos_seen=1, skipped=collections.Counter({exc.reason: 1})))
        yield None
        return
    except OSError as exc:
        raise SourceError(f"source '{source.spec}': cannot read archive: {exc}") from None
    prune = vendored_dir if args.skip_vendored else None
    entries = walk_dir(str(root.resolve()), skipped, prune=prune)
    yield build_snapshot(entries, name=repo_name(source.spec), source=source.spec, filters=args, stats=stats,
                         run=run, skipped=skipped)


def _ingest_table(source, args, stats, run):
    try:
        table = load_table(source.location, args.table_split, cache_root())
        repositories = table_repositories(table, args.table_columns(), Path(source.location).name.split(".")[0])
        for repo in repositories:
            snapshot = build_snapshot(repo.entries, name=repo.name, source=f"{source.spec}#{repo.name}",
                                      license=repo.license, filters=args, stats=stats, run=run, skipped=repo.skipped)
            yield snapshot
    except (OSError, ValueError) as exc:
        raise SourceError(f"source '{source.spec}': {exc}") from None


SOURCE_KINDS: dict[str, Ingest] = {
    "dir": _ingest_dir, "git": _ingest_git, "archive": _ingest_archive, "table": _ingest_table,
    "python": _ingest_python,
}


def ingest_sources(specs: list[str], args: IngestArguments, stats: IngestStats) -> list[RepoSnapshot]:
    """Snapshots of every kept repository, in spec order (a table's in row order); skips are counted.

    One run's duplicate indexes span all `specs`: the first of two duplicates in this order is kept.
    """
    run = RunDedup(args.dedup_files, args.near_duplicate_threshold)
    snapshots = []
    for spec in tqdm(specs, desc="ingest", unit="source", disable=len(specs) < 2):
        try:
            source = parse_source(spec)
            snapshots.extend(s for s in SOURCE_KINDS[source.kind](source, args, stats, run) if s is not None)
        except (SourceError, ValueError) as exc:
            if not args.skip_bad_sources:
                raise ValueError(str(exc)) from None
            logger.warning("skipping %s", exc)
            stats.merge(IngestStats(repos_seen=1, skipped=collections.Counter({"bad_source": 1})))
    duplicates = {n for n, count in collections.Counter(s.name for s in snapshots).items() if count > 1}
    if duplicates:
        raise ValueError(f"two sources give the same repository name(s) {sorted(duplicates)}; rename one")
    return snapshots
