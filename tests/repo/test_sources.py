"""Every source kind through `ingest_sources`: directory, git at a revision, archives, tables, packages."""

import json
import os
import subprocess

import pytest
from retrace_testing import ingest_specs

from retrace.repo.sources import IngestArguments, SourceSpec, parse_source, repo_name

MIT = "MIT License\n\nPermission is hereby granted, free of charge, to any person obtaining a copy\n"


@pytest.fixture(autouse=True)
def _cache(isolated_cache):
    """Git clones and archive extractions go to this test's own cache."""


_ingest = ingest_specs


def _git(cwd, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def git_repo(tmp_path):
    """A bare repository with two commits; the second adds symlinks (inside, outside) and a submodule."""
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    (work / "LICENSE").write_text(MIT)
    (work / "a.py").write_text("VERSION = 1\n")
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "one")
    first = _git(work, "rev-parse", "HEAD")
    _git(work, "tag", "-a", "v1", "-m", "release 1")
    (work / "a.py").write_text("VERSION = 2\r\n")  # committed bytes are kept exactly
    (work / "pkg").mkdir()
    (work / "pkg" / "b.py").write_text("from a import VERSION\n")
    os.symlink("../a.py", work / "pkg" / "alias.py")
    os.symlink("/etc/passwd", work / "passwd.py")
    os.symlink("../../outside.py", work / "pkg" / "up.py")
    os.symlink("pkg", work / "pkg_link")
    _git(work, "add", ".")
    _git(work, "update-index", "--add", "--cacheinfo", f"160000,{first},sub")
    _git(work, "commit", "-q", "-m", "two")
    second = _git(work, "rev-parse", "HEAD")
    _git(tmp_path, "clone", "-q", "--bare", str(work), "proj.git")
    return tmp_path / "proj.git", first, second


def test_git_at_a_revision_and_at_head(git_repo, tmp_path):
    bare, first, second = git_repo
    [old], stats = _ingest([f"git:{bare}@{first}"])
    assert old.revision == first and old.name == "proj" and old.license == "MIT"
    assert {f.path: f.text for f in old.files} == {"LICENSE": MIT, "a.py": "VERSION = 1\n"}
    [new], stats = _ingest([str(bare)])  # detected: a bare repository, at HEAD
    assert new.revision == second
    assert {f.path: f.text for f in new.files} == {
        "LICENSE": MIT, "a.py": "VERSION = 2\r\n", "pkg/alias.py": "VERSION = 2\r\n", "pkg/b.py": "from a import VERSION\n"}
    assert stats.skipped == {"symlink_outside": 2, "symlink_dir": 1, "submodule": 1}
    [short], _ = _ingest([f"git+file://{bare}@{first[:10]}"])  # an abbreviated sha falls back to a full fetch
    assert short.revision == first
    [tagged], _ = _ingest([f"git:{bare}@v1"])  # an annotated tag resolves to its commit
    assert tagged.revision == first
    [branch], _ = _ingest([f"{tmp_path / 'work'}@main"])  # a local directory with @REV is read as git
    assert branch.revision == second and branch.name == "work"


def test_git_rerun_of_a_pinned_sha_needs_no_fetch(git_repo, monkeypatch):
    bare, first, _ = git_repo
    [a], _ = _ingest([f"git:{bare}@{first}"])
    os.rename(bare, bare.with_name("gone.git"))  # the remote disappears: the cache answers
    [b], _ = _ingest([f"git:{bare}@{first}"])
    assert a == b


def test_bad_sources_raise_naming_the_spec_or_are_counted(tmp_path):
    with pytest.raises(ValueError, match="source 'nowhere/x'"):
        IngestArguments(sources=["nowhere/x"])
    with pytest.raises(ValueError, match=r"source 'git:/no/such\.git@v1'"):
        _ingest(["git:/no/such.git@v1"])
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.py").write_text("x = 1\n")
    snaps, stats = _ingest([str(tmp_path / "ok"), "git:/no/such.git", "dir:/no/dir"], skip_bad_sources=True)
    assert [s.name for s in snaps] == ["ok"]
    assert stats.skipped == {"bad_source": 2} and stats.repos_seen == 3


def test_spec_parsing(tmp_path, git_repo):
    bare, _, _ = git_repo
    (tmp_path / "t.parquet").write_bytes(b"")
    (tmp_path / "a.tar.gz").write_bytes(b"")
    assert parse_source("git+https://example.com/o/r.git@v1.2") == SourceSpec(
        "git+https://example.com/o/r.git@v1.2", "git", "https://example.com/o/r.git", "v1.2")
    assert parse_source("git:git@example.com:o/r.git@main").location == "git@example.com:o/r.git"
    assert parse_source("https://example.com/o/r").revision is None
    assert parse_source(str(bare)).kind == "git"
    assert parse_source(str(tmp_path / "t.parquet")).kind == "table"
    assert parse_source(str(tmp_path / "a.tar.gz")).kind == "archive"
    assert parse_source("table:org/dataset").kind == "table"
    assert repo_name(str(tmp_path / "a.tar.gz")) == "a" and repo_name("python:json") == "json"
    with pytest.raises(ValueError, match="not an importable package"):
        parse_source("python:no_such_package_xyz")


def test_python_package_and_single_module():
    snaps, stats = _ingest(["python:json", "python:bisect"], languages=["python"])
    assert [s.name for s in snaps] == ["json", "bisect"]
    assert "decoder.py" in {f.path for f in snaps[0].files}
    assert [f.path for f in snaps[1].files] == ["bisect.py"] and snaps[1].source == "python:bisect"


def test_local_directory_with_prefix(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "a.py").write_text("x = 1\n")
    [snap], _ = _ingest([f"dir:{tmp_path / 'proj'}"])
    assert snap.name == "proj" and snap.source == f"dir:{tmp_path / 'proj'}" and snap.revision is None


def _rows():
    return [
        {"repo_name": "org/alpha", "license": "MIT", "files": [
            {"path": "alpha/__init__.py", "content": "from .core import run\n"},
            {"path": "alpha/core.py", "content": "def run():\n    return 1\n"},
            {"path": "../escape.py", "content": "ESCAPED = 1\n"},
            {"path": "/etc/passwd.py", "content": "ABSOLUTE = 1\n"},
            {"path": "a\\..\\..\\win.py", "content": "WIN = 1\n"},
            {"path": "alpha/core.py", "content": "AGAIN = 1\n"},
            {"path": ".git/config", "content": "[core]\n"},
        ]},
        {"repo_name": "org/beta", "license": "GPL-3.0", "files": [{"path": "b.py", "content": "B = 1\n"}]},
        {"repo_name": "org/gamma", "license": None, "files": [{"path": "data.json", "content": '{"a": 1}\n'}]},
    ]


def test_parquet_table_of_repositories(tmp_path):
    import datasets

    path = tmp_path / "repos.parquet"
    datasets.Dataset.from_list(_rows()).to_parquet(str(path))
    snaps, stats = _ingest([str(path)], license_allowlist=["MIT"])
    assert [s.name for s in snaps] == ["org/alpha", "org/gamma"]
    alpha = snaps[0]
    assert {f.path: f.text for f in alpha.files} == {"alpha/__init__.py": "from .core import run\n",
                                                     "alpha/core.py": "def run():\n    return 1\n"}
    assert alpha.license == "MIT" and alpha.source == f"{path}#org/alpha"
    assert stats.skipped == {"bad_path": 3, "duplicate_path": 1, "license_not_allowed": 1}
    assert not (tmp_path / "escape.py").exists()


def test_jsonl_tables_in_both_layouts(tmp_path):
    per_repo = tmp_path / "repos.jsonl"
    per_repo.write_text("".join(json.dumps(r) + "\n" for r in _rows()[1:]))
    per_file = tmp_path / "files.jsonl"
    rows = [{"repo": "x/one", "file_path": "m.py", "text": "M = 1\n", "licenses": ["MIT"]},
            {"repo": "x/two", "file_path": "n.py", "text": "N = 1\n", "licenses": []},
            {"repo": "x/one", "file_path": "pkg/k.py", "text": "K = 1\n", "licenses": ["MIT"]}]
    per_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    snaps, _ = _ingest([str(per_repo)])
    assert [(s.name, s.license) for s in snaps] == [("org/beta", "GPL-3.0"), ("org/gamma", None)]
    snaps, _ = _ingest([f"table:{per_file}"], table_repo_column="repo", table_path_column="file_path",
                       table_content_column="text", table_license_column="licenses")
    assert [(s.name, [f.path for f in s.files], s.license) for s in snaps] == [
        ("x/one", ["m.py", "pkg/k.py"], "MIT"), ("x/two", ["n.py"], None)]
    with pytest.raises(ValueError, match="table_"):
        _ingest([f"table:{per_file}"])
