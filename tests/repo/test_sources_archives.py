"""tar and zip sources: extracted safely (hostile members refused and counted), bombs stopped, cached."""

import io
import stat
import tarfile
import zipfile

import pytest
from retrace_testing import ingest_specs

MARKER = "OUTSIDE_MARKER_7f3a9c"


@pytest.fixture(autouse=True)
def _cache(isolated_cache):
    """Git clones and archive extractions go to this test's own cache."""


_ingest = ingest_specs


def _add(tar, name, data=b"", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, len(data)
    tar.addfile(info, io.BytesIO(data) if data else None)


def _hostile_tar(path, compression="gz"):
    with tarfile.open(path, f"w:{compression}") as tar:
        _add(tar, "proj-1.0/", kind=tarfile.DIRTYPE)
        _add(tar, "proj-1.0/pkg/__init__.py", b"from .core import run\n")
        _add(tar, "proj-1.0/pkg/core.py", b"def run():\n    return 1\n")
        _add(tar, "proj-1.0/README.md", b"# proj\n")
        _add(tar, "../evil.py", f"EVIL = '{MARKER}'\n".encode())
        _add(tar, "/tmp/absolute_evil.py", f"EVIL = '{MARKER}'\n".encode())
        _add(tar, "proj-1.0/passwd.py", kind=tarfile.SYMTYPE, linkname="/etc/passwd")
        _add(tar, "proj-1.0/hard.py", kind=tarfile.LNKTYPE, linkname="../../etc/passwd")
        _add(tar, "proj-1.0/fifo.py", kind=tarfile.FIFOTYPE)
        _add(tar, "proj-1.0/tty.py", kind=tarfile.CHRTYPE)
        _add(tar, "proj-1.0/big.py", b"#" * 5_000)
        _add(tar, "proj-1.0/pkg/core.py", f"AGAIN = '{MARKER}'\n".encode())  # same name twice: first kept
        _add(tar, "proj-1.0/pkg/core.py/x.py", b"X = 1\n")  # a file where a directory would have to be


HOSTILE_SKIPS = {"archive_unsafe_path": 2, "archive_link": 2, "special_file": 2, "too_large": 1,
                 "archive_duplicate_member": 2}


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz", ""])
def test_tar_hostile_members_are_refused_and_counted(tmp_path, compression):
    suffix = {"gz": ".tar.gz", "bz2": ".tar.bz2", "xz": ".tar.xz", "": ".tar"}[compression]
    archive = tmp_path / f"proj-1.0{suffix}"
    _hostile_tar(archive, compression or "")
    [snap], stats = _ingest([str(archive)], max_file_bytes=1_000)
    assert snap.name == "proj-1.0" and snap.description == "# proj\n"
    assert {f.path: f.text for f in snap.files} == {
        "README.md": "# proj\n", "pkg/__init__.py": "from .core import run\n", "pkg/core.py": "def run():\n    return 1\n"}
    assert stats.skipped == HOSTILE_SKIPS
    assert not list(tmp_path.rglob("evil.py")) and not list(tmp_path.rglob("absolute_evil.py"))
    assert not any(MARKER in p.read_text() for p in (tmp_path / "cache").rglob("*.py"))
    [again], stats_again = _ingest([str(archive)], max_file_bytes=1_000)  # from the cache: same result, same counts
    assert again == snap and stats_again.to_dict() == stats.to_dict()


def _zip_link(name, target):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


def test_zip_hostile_members_are_refused_and_counted(tmp_path):
    archive = tmp_path / "z.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("src/app.py", "print('hi')\n")
        z.writestr("README.md", "# z\n")  # two top-level entries: no directory is stripped
        z.writestr("src/", "")
        z.writestr("../../evil.py", f"EVIL = '{MARKER}'\n")
        z.writestr("/abs.py", f"EVIL = '{MARKER}'\n")
        z.writestr("..\\win.py", f"EVIL = '{MARKER}'\n")
        z.writestr(*_zip_link("src/passwd.py", "/etc/passwd"))
        fifo = zipfile.ZipInfo("src/fifo.py")
        fifo.create_system, fifo.external_attr = 3, (stat.S_IFIFO | 0o644) << 16
        z.writestr(fifo, "")
    [snap], stats = _ingest([f"archive:{archive}"])
    assert snap.name == "z" and [f.path for f in snap.files] == ["README.md", "src/app.py"]
    assert stats.skipped == {"archive_unsafe_path": 3, "archive_link": 1, "special_file": 1}
    assert not list(tmp_path.rglob("evil.py")) and not list(tmp_path.rglob("win.py"))


def test_bombs_are_refused_before_decompression(tmp_path):
    zeros = tmp_path / "zeros.tar.gz"
    with tarfile.open(zeros, "w:gz") as tar:
        _add(tar, "a.py", b"x = 1\n")
        _add(tar, "zeros.py", bytes(3_000_000))
    zbomb = tmp_path / "zbomb.zip"
    with zipfile.ZipFile(zbomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.py", "x = 1\n")
        z.writestr("zeros.py", bytes(3_000_000))
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as z:
        for i in range(6):
            z.writestr(f"m{i}.py", f"x = {i}\n")
    snaps, stats = _ingest([str(zeros), str(zbomb), str(many)], archive_max_members=5)
    assert snaps == []
    assert stats.skipped == {"archive_bomb": 2, "archive_too_many_members": 1} and stats.repos_seen == 3
    snaps, stats = _ingest([str(many)], archive_max_bytes=20)
    assert stats.skipped == {"archive_too_large": 1}
    [snap], stats = _ingest([str(zeros)], archive_max_ratio=100_000)  # allowed archive: the member is too large
    assert [f.path for f in snap.files] == ["a.py"] and stats.skipped == {"too_large": 1}
    assert not list((tmp_path / "cache").rglob("zeros.py"))  # never extracted


def test_corrupt_archive_is_counted(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage" * 10)
    snaps, stats = _ingest([str(bad)])
    assert snaps == [] and stats.skipped == {"archive_unreadable": 1}
