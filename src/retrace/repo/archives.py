"""tar and zip archives as sources: extracted member by member into a cache, never outside it.

Python's extractall trusts the archive; this does not. Each member's name must be a clean relative
path; links, devices and FIFOs are never created; only regular files and directories are written,
with fixed permissions, through O_EXCL|O_NOFOLLOW. Bombs are stopped from the declared sizes before
any data is decompressed: too many members, too many bytes in all, or a compression ratio no source
tree has. A member larger than `max_file_bytes` is not extracted at all (ingest would skip it).
The extraction is cached under a key of the archive's bytes and the limits, with its skip counts,
so a re-run reports exactly what the first run did.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from retrace.repo.localfs import safe_relpath

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")
RATIO_FLOOR_BYTES = 1_000_000
"""The compression-ratio limit applies once the declared bytes pass this (tiny archives compress oddly)."""
_MANIFEST = "extraction.json"


class ArchiveRejected(Exception):
    """The whole archive is refused; `reason` is the skip reason counted for it."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class ArchiveLimits:
    max_bytes: int = 1_000_000_000
    max_members: int = 100_000
    max_ratio: float = 100.0
    max_file_bytes: int = 1_000_000


@dataclass
class _Member:
    """What both archive formats reduce to: a name, a kind, a declared size, and how to read it."""

    name: str
    kind: str  # "file", "dir", "link", "special"
    size: int
    open: object


def archive_stem(path: str) -> str:
    name = os.path.basename(path)
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_archive(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)


def _tar_members(path: Path) -> Iterator[_Member]:
    with tarfile.open(path, mode="r:*") as tar:
        for info in tar:  # streamed: a header is checked before the data behind it is decompressed
            kind = ("dir" if info.isdir() else "file" if info.isreg() else
                    "link" if info.issym() or info.islnk() else "special")
            yield _Member(info.name, kind, info.size if kind == "file" else 0,
                          lambda info=info, tar=tar: tar.extractfile(info))


def _zip_members(path: Path) -> Iterator[_Member]:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            file_type = stat.S_IFMT(info.external_attr >> 16) if info.create_system == 3 else 0  # 0: unstated
            if file_type == stat.S_IFLNK:
                kind = "link"
            elif info.is_dir():
                kind = "dir"
            elif file_type not in (0, stat.S_IFREG):
                kind = "special"
            else:
                kind = "file"
            yield _Member(info.filename, kind, info.file_size if kind == "file" else 0,
                          lambda info=info, archive=archive: archive.open(info))


def _write_member(tree: Path, rel: str, member: _Member) -> str | None:
    """Write one regular file below `tree`; a skip reason when it cannot be written safely."""
    target = tree / rel
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.parent.is_symlink() or not target.parent.resolve().is_relative_to(tree):
            return "archive_unsafe_path"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except FileExistsError:
        return "archive_duplicate_member"
    except OSError:
        return "archive_unsafe_path"  # a file where a directory should be, a name the OS refuses
    with os.fdopen(fd, "wb") as out, member.open() as handle:
        data = handle.read(member.size + 1)
        if len(data) != member.size:
            raise ArchiveRejected("archive_unreadable", f"member {member.name!r} is not its declared size")
        out.write(data)
    return None


def _extract(path: Path, tree: Path, limits: ArchiveLimits, skipped: collections.Counter) -> None:
    members = _zip_members(path) if path.name.lower().endswith(".zip") else _tar_members(path)
    compressed = max(path.stat().st_size, 1)
    declared = 0
    for count, member in enumerate(members, start=1):
        declared += member.size
        if count > limits.max_members:
            raise ArchiveRejected("archive_too_many_members", f"more than {limits.max_members} members")
        if declared > limits.max_bytes:
            raise ArchiveRejected("archive_too_large", f"more than {limits.max_bytes} bytes uncompressed")
        if declared > RATIO_FLOOR_BYTES and declared / compressed > limits.max_ratio:
            raise ArchiveRejected("archive_bomb", f"compression ratio above {limits.max_ratio}")
        rel = safe_relpath(member.name.removeprefix("./")) if member.name not in ("./", ".") else ""
        if rel is None:
            skipped["archive_unsafe_path"] += 1
        elif member.kind == "link":
            skipped["archive_link"] += 1
        elif member.kind == "special":
            skipped["special_file"] += 1
        elif member.kind == "dir":
            if rel:
                (tree / rel).mkdir(parents=True, exist_ok=True)
        elif member.size > limits.max_file_bytes:
            skipped["too_large"] += 1
        elif (reason := _write_member(tree, rel, member)) is not None:
            skipped[reason] += 1


def _root_of(tree: Path) -> Path:
    """The repository root inside an extraction: a lone top-level directory (GitHub-style) or the tree."""
    children = list(tree.iterdir())
    if len(children) == 1 and children[0].is_dir() and not children[0].is_symlink():
        return children[0]
    return tree


def extract_archive(path: str | Path, cache_root: Path, limits: ArchiveLimits) -> tuple[Path, collections.Counter]:
    """(repository root, skip counts) of an archive, extracted once into `cache_root/archives/<key>/`.

    Raises ArchiveRejected for an archive refused whole (also on a cached re-run), a corrupt or
    unsupported one included (`archive_unreadable`); OSError when the file itself cannot be read.
    """
    path = Path(path)
    digest = hashlib.sha256(repr(limits).encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    target = cache_root / "archives" / digest.hexdigest()[:24]
    if not (target / _MANIFEST).exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".extract-"))
        skipped: collections.Counter = collections.Counter()
        manifest: dict = {}
        try:
            (work / "tree").mkdir()
            _extract(path, (work / "tree").resolve(), limits, skipped)
            manifest["skipped"] = dict(skipped)
        except ArchiveRejected as exc:
            shutil.rmtree(work / "tree")
            manifest = {"rejected": exc.reason, "detail": str(exc)}
        except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
                NotImplementedError, ValueError) as exc:
            shutil.rmtree(work / "tree", ignore_errors=True)
            manifest = {"rejected": "archive_unreadable", "detail": f"archive_unreadable: {exc}"}
        (work / _MANIFEST).write_text(json.dumps(manifest))
        try:
            os.rename(work, target)
        except OSError:  # another process finished first: use its result
            shutil.rmtree(work, ignore_errors=True)
    manifest = json.loads((target / _MANIFEST).read_text())
    if "rejected" in manifest:
        raise ArchiveRejected(manifest["rejected"], manifest["detail"].partition(": ")[2])
    return _root_of(target / "tree"), collections.Counter(manifest["skipped"])
