"""Repository snapshots: the kept files of one repository, read safely and exactly, filtered and counted.

Every source kind (directory, git, archive, table, package) hands `build_snapshot` a list of
`FileEntry`s; it applies the recipe's filters in one documented order, so a file is kept or skipped
the same way whatever it came from, and counts every skip by reason. Texts are kept exactly as
stored (strict UTF-8, no newline translation). The file-system safety lives in `localfs`.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from retrace.repo.dedup import RunDedup, content_key, repository_signature
from retrace.repo.filters import (
    FilterArguments,
    content_reason,
    decode,
    license_reason,
    name_reason,
    vendored_dir,
    vendored_prefix,
)
from retrace.repo.languages import language_of
from retrace.repo.licenses import guess_license, is_license_file, license_from_headers
from retrace.repo.localfs import FileEntry, walk_dir

logger = logging.getLogger(__name__)

_ROOT_TEXT_MAX_BYTES = 200_000


@dataclass
class SourceFile:
    """One kept file: `path` is relative to the repository root with '/' separators."""

    path: str
    language: str
    text: str


@dataclass
class RepoSnapshot:
    """What a repository is made of after filtering; the input of analysis."""

    name: str
    source: str
    revision: str | None
    license: str | None
    description: str
    files: list[SourceFile]
    # A sub-project's (retrace.repo.budget): files of the same repository it reads but does not write,
    # and the name of that repository (agents call the project by it, never by the sub-project's name).
    readable: list[SourceFile] = field(default_factory=list)
    part_of: str = ""

    @property
    def project(self) -> str:
        """The repository's name: for a sub-project, the repository it is a part of."""
        return self.part_of or self.name

    def to_dict(self) -> dict:
        out = {
            "name": self.name,
            "source": self.source,
            "revision": self.revision,
            "license": self.license,
            "description": self.description,
            "files": [dataclasses.asdict(f) for f in self.files],
        }
        if self.part_of:
            out["part_of"] = self.part_of
        if self.readable:
            out["readable"] = [dataclasses.asdict(f) for f in self.readable]
        return out

    @classmethod
    def from_dict(cls, d: dict) -> RepoSnapshot:
        return cls(
            name=d["name"],
            source=d["source"],
            revision=d.get("revision"),
            license=d.get("license"),
            description=d.get("description", ""),
            files=[SourceFile(**f) for f in d["files"]],
            readable=[SourceFile(**f) for f in d.get("readable", [])],
            part_of=d.get("part_of", ""),
        )


@dataclass
class IngestStats:
    """Counts of what ingest saw and why it skipped things, merged across repositories."""

    repos_seen: int = 0
    repos_kept: int = 0
    files_seen: int = 0
    files_kept: int = 0
    skipped: collections.Counter = field(default_factory=collections.Counter)

    def merge(self, other: IngestStats) -> None:
        self.repos_seen += other.repos_seen
        self.repos_kept += other.repos_kept
        self.files_seen += other.files_seen
        self.files_kept += other.files_kept
        self.skipped.update(other.skipped)

    def to_dict(self) -> dict:
        return {
            "repos_seen": self.repos_seen,
            "repos_kept": self.repos_kept,
            "files_seen": self.files_seen,
            "files_kept": self.files_kept,
            "skipped": dict(sorted(self.skipped.items())),
        }


def _root_text(entries: list[FileEntry], wanted: Callable[[str], bool]) -> str | None:
    """Text of the first root-level entry (path order) that `wanted` accepts, decoded leniently."""
    for entry in sorted(entries, key=lambda e: e.path):
        if "/" not in entry.path and wanted(entry.path):
            data, _ = entry.load(_ROOT_TEXT_MAX_BYTES)
            if data is not None:
                return data.decode("utf-8", errors="replace")
    return None


def _file_or_reason(entry: FileEntry, filters: FilterArguments) -> tuple[SourceFile | None, str | None]:
    """The per-file rules, in order: language, file name, size, bytes (binary/undecodable), text."""
    language = language_of(entry.path)
    if language is None or language not in filters.languages:
        return None, "language"
    reason = name_reason(entry.path, filters)
    if reason is None and entry.size is not None and entry.size > filters.max_file_bytes:
        reason = "too_large"
    if reason is not None:
        return None, reason
    data, reason = entry.load(filters.max_file_bytes)
    if data is None:
        return None, reason
    text, reason = decode(data)
    if text is None:
        return None, reason
    reason = content_reason(text, filters)
    return (None, reason) if reason else (SourceFile(path=entry.path, language=language, text=text), None)


def _dedup_within(files: list[SourceFile], skipped: collections.Counter) -> list[SourceFile]:
    seen: set[str] = set()
    kept = []
    for f in files:
        key = content_key(f.text)
        if key is not None and key in seen:
            skipped["duplicate_file"] += 1
            continue
        if key is not None:
            seen.add(key)
        kept.append(f)
    return kept


def _repo_reason(files: list[SourceFile], license_id: str | None, filters: FilterArguments) -> str | None:
    if filters.max_files_per_repo and len(files) > filters.max_files_per_repo:
        return "repo_too_many_files"
    if filters.max_bytes_per_repo and sum(len(f.text.encode("utf-8", "surrogatepass")) for f in files) > \
            filters.max_bytes_per_repo:
        return "repo_too_large"
    if not files:
        return "empty_repo"
    return license_reason(license_id, filters)


@dataclass
class FilteredRepository:
    """One repository after its own rules, before the run's duplicate indexes decide on it.

    `files` holds the texts when the reader kept them (ingest) and is None when it did not (planning);
    `paths`, `file_keys` and `signature` are all the run-level decision needs. `stats` holds the
    repository's own counts; `reason` says why it was skipped whole (then it has no files).
    """

    name: str
    source: str
    revision: str | None
    license: str | None
    description: str
    paths: list[str]
    file_keys: list[str | None]
    signature: object | None
    stats: IngestStats
    reason: str | None = None
    files: list[SourceFile] | None = None
    locator: str = ""

    def without_texts(self) -> FilteredRepository:
        return dataclasses.replace(self, files=None)


def filter_repository(
    entries: Iterable[FileEntry],
    *,
    name: str,
    source: str,
    filters: FilterArguments,
    revision: str | None = None,
    license: str | None = None,
    skipped: collections.Counter | None = None,
    signature: bool = False,
) -> FilteredRepository:
    """The per-repository half of `build_snapshot`: everything that does not depend on other repositories.

    With `signature`, the MinHash of the kept texts is computed here (see `dedup.repository_signature`).
    """
    own = IngestStats(repos_seen=1)
    entries = list(entries)  # a lazy walk fills `skipped` while it is listed
    own.skipped.update(skipped or {})
    vendored: set[str] = set()
    files: list[SourceFile] = []
    for entry in entries:
        prefix = vendored_prefix(entry.path) if filters.skip_vendored else None
        if prefix is not None:
            vendored.add(prefix)
            continue
        own.files_seen += 1
        kept, reason = _file_or_reason(entry, filters)
        if kept is None:
            own.skipped[reason] += 1
        else:
            files.append(kept)
    own.skipped["vendored_dir"] += len(vendored)
    files.sort(key=lambda f: f.path)
    if filters.dedup_files != "none":
        files = _dedup_within(files, own.skipped)
    license_text = _root_text(entries, is_license_file) if license is None else None
    if license_text is not None:
        license = guess_license(license_text)
    if license is None:
        license = license_from_headers(f.text for f in files)
    reason = _repo_reason(files, license, filters)
    description = ""
    if reason is not None:
        files = []
    else:
        description = _root_text(entries, lambda p: p.lower().startswith("readme")) or ""
    return FilteredRepository(
        name=name, source=source, revision=revision, license=license, description=description,
        paths=[f.path for f in files], file_keys=[content_key(f.text) for f in files],
        signature=repository_signature(f.text for f in files) if signature and reason is None else None,
        stats=own, reason=reason, files=files)


def settle_repository(filtered: FilteredRepository, stats: IngestStats | None, *, reason: str | None = None,
                      kept_paths: Iterable[str] | None = None) -> list[str] | None:
    """Count a repository's final outcome into `stats` (its own counts plus the run's decision).

    `reason` is the run's reason to skip it whole; `kept_paths` the files that survived the run's exact
    dedup (None: all). Returns the kept paths, or None when the repository is skipped.
    """
    own = dataclasses.replace(filtered.stats, skipped=collections.Counter(filtered.stats.skipped))
    reason = filtered.reason or reason
    kept = None
    if reason is None:
        wanted = None if kept_paths is None else set(kept_paths)
        kept = [p for p in filtered.paths if wanted is None or p in wanted]
        own.skipped["duplicate_file_across_repos"] += len(filtered.paths) - len(kept)
        if not kept:
            reason, kept = "empty_repo", None
    if reason is not None:
        own.skipped[reason] += 1
    else:
        own.files_kept, own.repos_kept = len(kept), 1
    own.skipped = collections.Counter({k: v for k, v in own.skipped.items() if v})
    if stats is not None:
        stats.merge(own)
    return kept


def snapshot_of(filtered: FilteredRepository, kept_paths: list[str]) -> RepoSnapshot:
    """The snapshot of a kept repository (read with its texts), holding exactly `kept_paths`."""
    wanted = set(kept_paths)
    return RepoSnapshot(name=filtered.name, source=filtered.source, revision=filtered.revision,
                        license=filtered.license, description=filtered.description,
                        files=[f for f in filtered.files if f.path in wanted])


def decide_in_run(filtered: FilteredRepository, run: RunDedup | None,
                  stats: IngestStats | None) -> list[str] | None:
    """Take the run's decision on one repository (in input order) and count it; the kept paths or None."""
    if filtered.reason is not None or run is None:
        return settle_repository(filtered, stats)
    decision = run.admit(filtered.name, filtered.file_keys, filtered.signature)
    if decision.original is not None:
        logger.info("%s: near-duplicate of %s, skipped", filtered.name, decision.original)
    return settle_repository(filtered, stats, reason=decision.reason,
                             kept_paths=[filtered.paths[i] for i in decision.kept])


def build_snapshot(
    entries: Iterable[FileEntry],
    *,
    name: str,
    source: str,
    filters: FilterArguments,
    revision: str | None = None,
    license: str | None = None,
    stats: IngestStats | None = None,
    run: RunDedup | None = None,
    skipped: collections.Counter | None = None,
) -> RepoSnapshot | None:
    """Apply the filters to one repository's entries; the snapshot, or None when it is skipped whole.

    Order: vendored directories, then per file language, lock/minified names, size, binary/undecodable,
    generated/minified texts; then per repository exact duplicates within it, the file and byte limits,
    emptiness and the licence allow-list (`license` when given, else a licence file's guess, else SPDX
    headers),
    then, against the run's earlier kept repositories, near-duplication and exact duplicate files.
    A repository skipped whole counts its reason once and none of its files as kept. `skipped` holds
    counts a source made while listing (e.g. unsafe archive members); they are added to `stats`.
    """
    filtered = filter_repository(entries, name=name, source=source, filters=filters, revision=revision,
                                 license=license, skipped=skipped,
                                 signature=run is not None and run.wants_signatures)
    kept = decide_in_run(filtered, run, stats)
    return None if kept is None else snapshot_of(filtered, kept)


def ingest_local_dir(
    path: str | Path,
    *,
    name: str | None = None,
    languages: Iterable[str] | None = None,
    max_file_bytes: int | None = None,
    stats: IngestStats | None = None,
    exclude: Callable[[str], bool] | None = None,
    filters: FilterArguments | None = None,
    run: RunDedup | None = None,
) -> RepoSnapshot | None:
    """Snapshot the files under the directory `path`; None when the repository is skipped (counted).

    Without `filters` the library default keeps Python files only (recipes default to every language);
    `languages` and `max_file_bytes` override the filters' values. `exclude` receives root-relative
    paths ('/'-separated, directories with a trailing '/') and returns True to skip them; excluded
    directories are counted as "excluded", excluded files are not counted at all.
    """
    if filters is None:
        filters = FilterArguments(languages=["python"])
    if languages is not None:
        filters = dataclasses.replace(filters, languages=list(languages))
    if max_file_bytes is not None:
        filters = dataclasses.replace(filters, max_file_bytes=max_file_bytes)
    root = os.path.realpath(os.fspath(path))
    skipped: collections.Counter = collections.Counter()
    prune = vendored_dir if filters.skip_vendored else None
    entries = walk_dir(root, skipped, exclude=exclude, prune=prune)
    return build_snapshot(entries, name=name or os.path.basename(root), source=os.fspath(path), filters=filters,
                          stats=stats, run=run, skipped=skipped)
