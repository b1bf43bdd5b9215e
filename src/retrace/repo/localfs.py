"""Reading a directory tree without ever leaving it: the file-system half of ingest's safety promise.

Directory symlinks are never followed (so loops cannot hang a walk), file symlinks are read only when
their target resolves inside the root, FIFOs and devices are never opened (the type is checked on the
open descriptor, with O_NONBLOCK so a FIFO cannot block), and the walk is iterative with a depth limit
so deep nesting cannot exhaust the stack. Every skip is counted by reason in the caller's Counter.
"""

from __future__ import annotations

import collections
import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MAX_DEPTH = 100
"""Directories deeper than this below the root are not entered (counted `too_deep`)."""

PRUNED_DIR_NAMES = frozenset({"__pycache__"})
"""Caches skipped silently, like hidden directories (names starting with '.')."""

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)

Loader = Callable[[int], "tuple[bytes | None, str | None]"]


@dataclass(frozen=True)
class FileEntry:
    """A file a source offers: its root-relative '/'-path, its size when known, and how to read it.

    `load(max_bytes)` returns (data, None) or (None, skip reason); sources never hand out more than
    `max_bytes + 1` bytes, so a huge file costs nothing to reject.
    """

    path: str
    size: int | None
    load: Loader


def safe_relpath(path: str) -> str | None:
    """`path` as a clean root-relative '/'-path, or None when it could name something outside the root.

    Refused: empty paths, absolute paths (POSIX or drive-letter), backslashes (Windows separators that
    would hide a '..'), NUL bytes, and any '.' or '..' component or empty component.
    """
    if not path or "\x00" in path or "\\" in path or path.startswith("/"):
        return None
    if len(path) > 1 and path[1] == ":":
        return None
    parts = path.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    return "/".join(parts)


def is_pruned_path(path: str) -> bool:
    """True for a file under a hidden or cache directory, which a directory walk never enters."""
    return any(part.startswith(".") or part in PRUNED_DIR_NAMES for part in path.split("/")[:-1])


def is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def read_regular(path: str, max_bytes: int) -> tuple[bytes | None, str | None]:
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


def _entry(rel: str, abs_path: str, size: int | None) -> FileEntry:
    return FileEntry(rel, size, lambda max_bytes: read_regular(abs_path, max_bytes))


def _symlink_entry(entry: os.DirEntry, rel: str, root: str, skipped: collections.Counter) -> FileEntry | None:
    target = os.path.realpath(entry.path)  # realpath stops on loops; the checks below then fail safely
    if not is_within(target, root):
        skipped["symlink_outside"] += 1
    elif os.path.isdir(target):
        skipped["symlink_dir"] += 1
    elif not os.path.exists(target):
        skipped["symlink_broken"] += 1
    elif not os.path.isfile(target):
        skipped["special_file"] += 1
    else:
        return _entry(rel, target, None)
    return None


def walk_dir(
    root: str,
    skipped: collections.Counter,
    *,
    exclude: Callable[[str], bool] | None = None,
    prune: Callable[[str], str | None] | None = None,
) -> Iterator[FileEntry]:
    """Yield the file entries under `root` (a real path), directory by directory, names sorted.

    `exclude(rel)` gets root-relative paths (directories with a trailing '/') and returns True to skip
    them (excluded directories are counted `excluded`, files are not counted); `prune(rel_dir)` returns
    a skip reason for a directory not to enter (counted once per directory under that reason).
    """
    stack = [("", 0)]
    while stack:
        rel_dir, depth = stack.pop()
        abs_dir = os.path.join(root, rel_dir) if rel_dir else root
        try:
            with os.scandir(abs_dir) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            skipped["unreadable_dir"] += 1
            continue
        subdirs = []
        for entry in entries:
            rel = posixpath.join(rel_dir, entry.name) if rel_dir else entry.name
            try:
                entry.name.encode("utf-8")
            except UnicodeEncodeError:  # a name that is not UTF-8 could not be written out as a path
                skipped["bad_path"] += 1
                continue
            if entry.is_symlink():
                found = _symlink_entry(entry, rel, root, skipped)
                if found is not None and (exclude is None or not exclude(rel)):
                    yield found
            elif entry.is_dir(follow_symlinks=False):
                if entry.name.startswith(".") or entry.name in PRUNED_DIR_NAMES:
                    continue
                if exclude is not None and exclude(rel + "/"):
                    skipped["excluded"] += 1
                elif prune is not None and (reason := prune(rel)) is not None:
                    skipped[reason] += 1
                elif depth + 1 > MAX_DEPTH:
                    skipped["too_deep"] += 1
                else:
                    subdirs.append((rel, depth + 1))
            elif exclude is not None and exclude(rel):
                continue
            elif not entry.is_file(follow_symlinks=False):
                skipped["special_file"] += 1
            else:
                try:
                    size = entry.stat(follow_symlinks=False).st_size
                except OSError:
                    size = None
                yield _entry(rel, entry.path, size)
        stack.extend(reversed(subdirs))
