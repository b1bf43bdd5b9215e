"""Ingest safety and exactness: what is skipped, what is counted, what is kept byte-for-byte."""

import os

import pytest

from retrace.repo import IngestStats, RepoSnapshot, ingest_local_dir
from retrace.repo.licenses import guess_license


def _write(root, rel, data):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def test_keeps_python_files_sorted_and_exact(tmp_path):
    repo = tmp_path / "proj"
    _write(repo, "b.py", "x = 1\n")
    _write(repo, "a/z.py", "y = 2\r\nz = 3\r\n")
    _write(repo, "a/old_mac.py", "q = 1\rw = 2\r")
    _write(repo, "notes.txt", "hello")
    _write(repo, "bom.py", b"\xef\xbb\xbfs = '\xc3\xa9'\n")
    stats = IngestStats()
    snap = ingest_local_dir(repo, stats=stats)
    assert [f.path for f in snap.files] == ["a/old_mac.py", "a/z.py", "b.py", "bom.py"]
    by_path = {f.path: f for f in snap.files}
    for rel, f in by_path.items():
        assert f.text.encode("utf-8") == (repo / rel).read_bytes()
        assert f.language == "python"
    assert by_path["a/z.py"].text == "y = 2\r\nz = 3\r\n"
    assert snap.name == "proj" and snap.source == str(repo) and snap.revision is None
    assert stats.to_dict() == {
        "repos_seen": 1, "repos_kept": 1, "files_seen": 5, "files_kept": 4, "skipped": {"language": 1},
    }  # fmt: skip


def test_binary_undecodable_too_large_counted(tmp_path):
    _write(tmp_path, "ok.py", "pass\n")
    _write(tmp_path, "bin.py", b"abc\x00def")
    _write(tmp_path, "latin.py", "s = 'caf\xe9'\n".encode("latin-1"))
    _write(tmp_path, "big.py", "#" * 101)
    stats = IngestStats()
    snap = ingest_local_dir(tmp_path, max_file_bytes=100, stats=stats)
    assert [f.path for f in snap.files] == ["ok.py"]
    assert stats.skipped == {"binary": 1, "undecodable": 1, "too_large": 1}


def test_hidden_and_cache_dirs_pruned(tmp_path):
    _write(tmp_path, "keep.py", "")
    _write(tmp_path, ".git/hooks/x.py", "")
    _write(tmp_path, ".venv/lib/y.py", "")
    _write(tmp_path, "pkg/__pycache__/z.py", "")
    snap = ingest_local_dir(tmp_path)
    assert [f.path for f in snap.files] == ["keep.py"]
    assert snap.files[0].text == ""


def test_empty_repo_returns_none_and_counts(tmp_path):
    _write(tmp_path, "README.md", "only docs")
    stats = IngestStats()
    assert ingest_local_dir(tmp_path, stats=stats) is None
    assert stats.repos_seen == 1 and stats.repos_kept == 0
    assert stats.skipped["empty_repo"] == 1


def test_symlink_outside_root_is_skipped_and_never_opened(tmp_path, monkeypatch):
    outside = tmp_path / "outside"
    secret = _write(outside, "secret.py", "TOKEN = 'x'\n")
    (outside / "sub").mkdir()
    repo = tmp_path / "repo"
    _write(repo, "main.py", "import secret\n")
    os.symlink(secret, repo / "secret.py")
    os.symlink(outside / "sub", repo / "sub")
    os.symlink("../outside/secret.py", repo / "relative_secret.py")
    opened = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        opened.append(os.path.realpath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    stats = IngestStats()
    snap = ingest_local_dir(repo, stats=stats)
    monkeypatch.undo()
    assert [f.path for f in snap.files] == ["main.py"]
    assert stats.skipped["symlink_outside"] == 3
    assert all(not p.startswith(str(outside.resolve())) for p in opened)
    assert str((repo / "main.py").resolve()) in opened


def test_symlink_inside_root_is_kept(tmp_path):
    _write(tmp_path, "real.py", "A = 1\n")
    os.symlink("real.py", tmp_path / "alias.py")
    snap = ingest_local_dir(tmp_path)
    assert {f.path: f.text for f in snap.files} == {"alias.py": "A = 1\n", "real.py": "A = 1\n"}


def test_symlink_loops_do_not_hang(tmp_path):
    _write(tmp_path, "pkg/mod.py", "")
    os.symlink("..", tmp_path / "pkg" / "up")  # directory loop
    os.symlink("self.py", tmp_path / "self.py")  # symlink to itself
    os.symlink("b.py", tmp_path / "a.py")
    os.symlink("a.py", tmp_path / "b.py")  # two-link loop
    stats = IngestStats()
    snap = ingest_local_dir(tmp_path, stats=stats)
    assert [f.path for f in snap.files] == ["pkg/mod.py"]
    assert stats.skipped["symlink_dir"] == 1
    assert sum(stats.skipped.values()) == 4


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_skipped_without_blocking(tmp_path):
    _write(tmp_path, "ok.py", "")
    os.mkfifo(tmp_path / "pipe.py")
    os.mkfifo(tmp_path / "pipe")
    os.symlink("pipe.py", tmp_path / "to_pipe.py")
    stats = IngestStats()
    snap = ingest_local_dir(tmp_path, stats=stats)
    assert [f.path for f in snap.files] == ["ok.py"]
    assert stats.skipped["special_file"] == 3


def test_readme_license_and_roundtrip(tmp_path):
    _write(tmp_path, "README.md", "# Demo\nA demo.\n")
    _write(
        tmp_path, "LICENSE", "MIT License\n\nPermission is hereby granted, free of charge, to any person\n"
    )
    _write(tmp_path, "demo.py", "")
    snap = ingest_local_dir(tmp_path, name="demo")
    assert snap.description == "# Demo\nA demo.\n"
    assert snap.license == "MIT"
    assert snap.name == "demo"
    assert RepoSnapshot.from_dict(snap.to_dict()) == snap


def test_exclude_callback(tmp_path):
    _write(tmp_path, "a.py", "")
    _write(tmp_path, "tests/test_a.py", "")
    _write(tmp_path, "b.py", "")
    snap = ingest_local_dir(tmp_path, exclude=lambda rel: rel in ("tests/", "b.py"))
    assert [f.path for f in snap.files] == ["a.py"]


def test_guess_license_variants():
    assert guess_license("// SPDX-License-Identifier: Apache-2.0\n") == "Apache-2.0"
    assert guess_license("   Apache License\n   Version 2.0, January 2004\n") == "Apache-2.0"
    assert guess_license("GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007") == "GPL-3.0"
    assert guess_license("\n\nMy Custom Terms\nmore") == "My Custom Terms"
    assert guess_license("  \n") is None


def test_stats_merge():
    a = IngestStats(repos_seen=1, files_seen=3)
    a.skipped["binary"] += 1
    b = IngestStats(repos_seen=2, repos_kept=1, files_kept=2)
    b.skipped.update({"binary": 2, "language": 1})
    a.merge(b)
    assert a.to_dict() == {
        "repos_seen": 3, "repos_kept": 1, "files_seen": 3, "files_kept": 2,
        "skipped": {"binary": 3, "language": 1},
    }  # fmt: skip


def test_safe_relpath_refuses_every_escape():
    from retrace.repo.localfs import safe_relpath

    assert safe_relpath("pkg/mod.py") == "pkg/mod.py" and safe_relpath("pkg/") == "pkg"
    assert safe_relpath("-rf .py") == "-rf .py" and safe_relpath("名前/x y.py") == "名前/x y.py"
    for bad in ("", "/etc/passwd", "../x", "a/../../x", "a/./b", "a//b", "a\\..\\b", "C:/x", "c:x", "a\x00b", ".."):
        assert safe_relpath(bad) is None, bad


def test_stdlib_package_ingest_is_unchanged_by_default_filters():
    """The quickstart's packages: every Python file kept (no false vendored/generated/duplicate hits)."""
    import importlib.util

    for name in ("email", "http", "logging", "concurrent", "wsgiref", "json", "urllib"):
        root = os.path.dirname(importlib.util.find_spec(name).origin)
        expected = sum(f.endswith(".py") for dirpath, _, files in os.walk(root)
                       if "__pycache__" not in dirpath for f in files)
        stats = IngestStats()
        snap = ingest_local_dir(root, stats=stats)
        assert len(snap.files) == expected, name
