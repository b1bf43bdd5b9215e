"""Git repositories as sources: fetch one commit into a cache, then read its blobs, never a checkout.

Reading blobs straight from the object database keeps the committed bytes exact (no smudge filters,
no end-of-line conversion), writes nothing from the repository to disk, and lets symlinks be judged
as data: a link is followed only to a blob inside the same tree. The `git` CLI does the transport, so
any URL git understands works; a local path is fetched through file:// so `--depth 1` applies.
A full 40-hex revision already in the cache is not fetched again, so a re-run needs no network.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import os
import posixpath
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

from retrace.repo.localfs import FileEntry, is_pruned_path, safe_relpath

_FULL_SHA = re.compile(r"[0-9a-f]{40}")
_MAX_LINK_HOPS = 40
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "echo", "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}


class GitError(Exception):
    """A git command failed; the message carries git's own last line."""


def _git(repo: Path, *args: str) -> bytes:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env={**os.environ, **_GIT_ENV},
                          check=False)
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit {proc.returncode}"]
        raise GitError(f"git {args[0]}: {lines[-1]}")
    return proc.stdout


def split_revision(location: str) -> tuple[str, str | None]:
    """`URL@rev` -> (URL, rev): the revision follows the last '@' after the last '/' or ':'."""
    cut = max(location.rfind("/"), location.rfind(":"))
    at = location.rfind("@")
    if at > cut and at < len(location) - 1:
        return location[:at], location[at + 1:]
    return location, None


def fetch_url(location: str) -> str:
    """What `git fetch` is given: a file:// URL for a local path, the location itself for a URL.

    scp-like `user@host:path` locations (a ':' before any '/') stay as they are.
    """
    if location.startswith("-"):
        raise GitError(f"refusing a location that starts with '-': {location!r}")
    head = location.split("/", 1)[0]
    if "://" in location or ":" in head:
        return location
    return Path(location).expanduser().resolve().as_uri()


def cache_dir(cache_root: Path, url: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", posixpath.basename(url.rstrip("/")).removesuffix(".git"))[:40]
    return cache_root / "git" / f"{stem or 'repo'}-{hashlib.sha1(url.encode()).hexdigest()[:12]}.git"


def fetch_commit(location: str, revision: str | None, cache_root: Path) -> tuple[Path, str]:
    """(cache repository, full commit sha) for `revision` (default: the remote's HEAD) of `location`.

    Tries a depth-1 fetch of the revision; when the server refuses that (an abbreviated sha, say),
    fetches all branches and tags and resolves the revision among them.
    """
    url = fetch_url(location)
    repo = cache_dir(cache_root, url)
    if not (repo / "HEAD").exists():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "--bare", "-q")
    if revision and _FULL_SHA.fullmatch(revision):
        with contextlib.suppress(GitError):
            return repo, _git(repo, "rev-parse", "--verify", "-q", f"{revision}^{{commit}}").decode().strip()
    # a ref of our own rather than FETCH_HEAD, which a concurrent fetch (another shard) could overwrite
    ref = f"refs/retrace/fetched/{hashlib.sha1((revision or 'HEAD').encode()).hexdigest()[:16]}"
    try:
        _git(repo, "fetch", "-q", "--no-tags", "--depth", "1", "--", url, f"+{revision or 'HEAD'}:{ref}")
        return repo, _git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}").decode().strip()
    except GitError:
        if revision is None:
            raise
    _git(repo, "fetch", "-q", "--no-tags", "--", url, "+refs/heads/*:refs/retrace/heads/*",
         "+refs/tags/*:refs/retrace/tags/*")
    for candidate in (revision, f"refs/retrace/heads/{revision}", f"refs/retrace/tags/{revision}"):
        with contextlib.suppress(GitError):
            return repo, _git(repo, "rev-parse", "--verify", "-q", f"{candidate}^{{commit}}").decode().strip()
    raise GitError(f"revision {revision!r} not found")


class _BlobReader:
    """One `git cat-file --batch` process answering blob requests in order (flushed per object)."""

    def __init__(self, repo: Path):
        self._proc = subprocess.Popen(["git", "-C", str(repo), "cat-file", "--batch"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                      env={**os.environ, **_GIT_ENV})

    def read(self, oid: str) -> bytes | None:
        self._proc.stdin.write(oid.encode() + b"\n")
        self._proc.stdin.flush()
        header = self._proc.stdout.readline().split()
        if len(header) != 3 or header[1] != b"blob":
            return None
        size = int(header[2])
        data = self._proc.stdout.read(size)
        self._proc.stdout.read(1)
        return data

    def close(self) -> None:
        self._proc.stdin.close()
        self._proc.wait()


def _list_tree(repo: Path, sha: str) -> list[tuple[str, str, str, int | None, bytes]]:
    """(mode, type, oid, size, raw path) for every entry of the commit's tree, recursively."""
    rows = []
    for record in _git(repo, "ls-tree", "-r", "-z", "-l", "--full-tree", sha).split(b"\x00"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, oid, size = meta.decode().split()
        rows.append((mode, kind, oid, int(size) if size.isdigit() else None, raw_path))
    return rows


def _resolve_link(path: str, blobs: dict, links: dict, reader: _BlobReader) -> tuple[str | None, str | None]:
    """(blob path, None) for a symlink that ends at a blob inside the tree, else (None, skip reason)."""
    for _ in range(_MAX_LINK_HOPS):
        target = (reader.read(links[path][0]) or b"").decode("utf-8", "replace")
        if target.startswith("/"):
            return None, "symlink_outside"
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
        if resolved == ".." or resolved.startswith("../"):
            return None, "symlink_outside"
        if resolved in blobs:
            return resolved, None
        if resolved not in links:
            prefix = resolved + "/"
            directory = any(p.startswith(prefix) for p in blobs) or resolved == "."
            return None, "symlink_dir" if directory else "symlink_broken"
        path = resolved
    return None, "symlink_broken"


@contextlib.contextmanager
def git_entries(repo: Path, sha: str, skipped: collections.Counter) -> Iterator[list[FileEntry]]:
    """The file entries of commit `sha`, readable while the context is open; skips counted in `skipped`."""
    blobs: dict[str, tuple[str, int | None]] = {}
    links: dict[str, tuple[str, int | None]] = {}
    for mode, kind, oid, size, raw_path in _list_tree(repo, sha):
        try:
            path = safe_relpath(raw_path.decode("utf-8"))
        except UnicodeDecodeError:
            path = None
        if path is None:
            skipped["bad_path"] += 1
        elif is_pruned_path(path):
            continue
        elif kind == "commit":
            skipped["submodule"] += 1
        elif mode == "120000":
            links[path] = (oid, size)
        elif kind == "blob":
            blobs[path] = (oid, size)
    reader = _BlobReader(repo)
    try:
        def entry(path: str, oid: str, size: int | None) -> FileEntry:
            def load(max_bytes: int) -> tuple[bytes | None, str | None]:
                if size is not None and size > max_bytes:
                    return None, "too_large"
                data = reader.read(oid)
                return (data, None) if data is not None else (None, "unreadable")
            return FileEntry(path, size, load)

        entries = [entry(path, *blobs[path]) for path in blobs]
        for path in links:
            target, reason = _resolve_link(path, blobs, links, reader)
            if target is None:
                skipped[reason] += 1
            else:
                entries.append(entry(path, *blobs[target]))
        yield sorted(entries, key=lambda e: e.path)
    finally:
        reader.close()
