"""Repository snapshots: the kept source files of a local directory, read safely and exactly.

Ingest is the only stage that touches the file system, so it carries the safety promises: it never
reads outside the root (symlinks resolving outside are skipped, directory symlinks are never
followed, so loops cannot hang it), never opens FIFOs or devices, and keeps each file's text exactly
as stored (strict UTF-8, no newline translation). Everything it skips is counted by reason.
"""

from __future__ import annotations

import collections
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .licenses import guess_license

LANGUAGE_BY_EXTENSION = {".py": "python"}
SKIPPED_DIR_NAMES = frozenset({"__pycache__", "node_modules"})
_DESCRIPTION_MAX_BYTES = 200_000
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


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

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "revision": self.revision,
            "license": self.license,
            "description": self.description,
            "files": [{"path": f.path, "language": f.language, "text": f.text} for f in self.files],
        }

    @classmethod
    def from_dict(cls, d: dict) -> RepoSnapshot:
        return cls(
            name=d["name"],
            source=d["source"],
            revision=d.get("revision"),
            license=d.get("license"),
            description=d.get("description", ""),
            files=[SourceFile(**f) for f in d["files"]],
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


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _read_regular(path: str, max_bytes: int) -> tuple[bytes | None, str | None]:
    """Read a regular file without following a final symlink and without blocking on a FIFO.

    Returns (data, None) or (None, skip reason). The type and size checks are made on the open
    descriptor, so a file swapped between listing and reading cannot slip through.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None, "unreadable"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, "special_file"
        if st.st_size > max_bytes:
            return None, "too_large"
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    except OSError:
        return None, "unreadable"
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        return None, "too_large"
    return data, None


def _decode(data: bytes) -> tuple[str | None, str | None]:
    if b"\x00" in data:
        return None, "binary"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "undecodable"


def _walk(
    root: str, rel_dir: str, exclude: Callable[[str], bool] | None, skipped: collections.Counter
) -> Iterator[tuple[str, str]]:
    """Yield (relative path, absolute path to open) for file-like entries, in sorted order.

    Directory symlinks are never followed; file symlinks are yielded with their resolved target
    only when it lies inside the root. Hidden directories and caches are pruned.
    """
    abs_dir = os.path.join(root, rel_dir) if rel_dir else root
    try:
        with os.scandir(abs_dir) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        skipped["unreadable_dir"] += 1
        return
    for entry in entries:
        rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
        if entry.is_symlink():
            target = os.path.realpath(entry.path)
            if not _is_within(target, root):
                skipped["symlink_outside"] += 1
            elif os.path.isdir(target):
                skipped["symlink_dir"] += 1
            elif not os.path.exists(target):
                skipped["symlink_broken"] += 1
            elif not os.path.isfile(target):
                skipped["special_file"] += 1
            elif exclude is None or not exclude(rel):
                yield rel, target
            continue
        if entry.is_dir(follow_symlinks=False):
            if entry.name.startswith(".") or entry.name in SKIPPED_DIR_NAMES:
                continue
            if exclude is not None and exclude(rel + "/"):
                skipped["excluded"] += 1
                continue
            yield from _walk(root, rel, exclude, skipped)
            continue
        if exclude is not None and exclude(rel):
            continue
        if not entry.is_file(follow_symlinks=False):
            skipped["special_file"] += 1
            continue
        yield rel, entry.path


def _root_text(root: str, prefixes: tuple[str, ...]) -> str | None:
    """Text of the first root-level regular file whose lower-cased name starts with a prefix."""
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return None
    for name in names:
        if not name.lower().startswith(prefixes):
            continue
        data, _ = _read_regular(os.path.join(root, name), _DESCRIPTION_MAX_BYTES)
        if data is not None:
            return data.decode("utf-8", errors="replace")
    return None


def ingest_local_dir(
    path: str | Path,
    *,
    name: str | None = None,
    languages: tuple[str, ...] = ("python",),
    max_file_bytes: int = 1_000_000,
    stats: IngestStats | None = None,
    exclude: Callable[[str], bool] | None = None,
) -> RepoSnapshot | None:
    """Snapshot the source files under `path`; None (counted "empty_repo") when none are kept.

    `exclude` receives root-relative paths ('/'-separated, directories with a trailing '/') and
    returns True to skip them; excluded directories are counted as "excluded", excluded files are
    not counted at all. Counts are added to `stats` when given.
    """
    own = IngestStats(repos_seen=1)
    root = os.path.realpath(os.fspath(path))
    files: list[SourceFile] = []
    for rel, abs_path in _walk(root, "", exclude, own.skipped):
        own.files_seen += 1
        language = LANGUAGE_BY_EXTENSION.get(os.path.splitext(rel)[1])
        if language is None or language not in languages:
            own.skipped["language"] += 1
            continue
        data, reason = _read_regular(abs_path, max_file_bytes)
        text = None
        if data is not None:
            text, reason = _decode(data)
        if text is None:
            own.skipped[reason] += 1
            continue
        files.append(SourceFile(path=rel, language=language, text=text))
    snapshot = None
    if files:
        own.files_kept = len(files)
        own.repos_kept = 1
        license_text = _root_text(root, ("license", "licence", "copying"))
        snapshot = RepoSnapshot(
            name=name or os.path.basename(root),
            source=os.fspath(path),
            revision=None,
            license=guess_license(license_text) if license_text is not None else None,
            description=_root_text(root, ("readme",)) or "",
            files=sorted(files, key=lambda f: f.path),
        )
    else:
        own.skipped["empty_repo"] += 1
    if stats is not None:
        stats.merge(own)
    return snapshot
