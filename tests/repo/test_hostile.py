"""A hostile repository corpus, built here: every trap is skipped with a counted reason or kept safely,
nothing hangs or crashes, and no byte from outside a repository reaches the output."""

import json
import os
import time

import pytest

from retrace.repo import analyze_repository
from retrace.repo.snapshot import IngestStats
from retrace.repo.sources import IngestArguments, ingest_sources

MARKER = "OUTSIDE_MARKER_c41b7e"
MB = 2**20


def _write(root, rel, data):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))


def _odd_names(repo):
    names = ["with space.py", "ünïcødé_名前.py", "-leading-dash.py", "--help.py", "tab\tname.py", "emoji_🐍.py"]
    try:
        (repo / "new\nline.py").write_text("NEWLINE = 1\n")
        names.append("new\nline.py")
    except OSError:
        pass
    for i, name in enumerate(names[:6]):
        _write(repo, name, f"ODD_{i} = {i}\n")
    try:
        fd = os.open(os.path.join(os.fsencode(repo), b"latin_\xff.py"), os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
        bad_names = 1
    except OSError:
        bad_names = 0
    return names, bad_names


@pytest.fixture
def corpus(tmp_path):
    outside = tmp_path / "outside"
    _write(outside, "secret.py", f"SECRET = '{MARKER}'\n")
    _write(outside, "pkg/leak.py", f"LEAK = '{MARKER}'\n")
    repo = tmp_path / "hostile"
    _write(repo, "main.py", '"""Entry point."""\nfrom broken import nothing\n\n\ndef main():\n    return 0\n')
    _write(repo, "broken.py", "def broken(:\n    return ]\n")  # a syntax error: still ingested as text
    _write(repo, "binary.py", b"\x7fELF\x02\x01\x01\x00\x00\x00")
    _write(repo, "image.png", b"\x89PNG\r\n\x1a\n\x00")
    _write(repo, "latin1.py", "NAME = 'Jos\xe9'\n".encode("latin-1"))
    os.symlink("/etc/passwd", repo / "passwd.py")
    os.symlink("../outside/secret.py", repo / "secret.py")
    os.symlink(outside / "pkg", repo / "pkg_outside")
    os.symlink(".", repo / "loop")  # directory loop
    os.symlink("a.py", repo / "b.py")
    os.symlink("b.py", repo / "a.py")  # two-link loop
    os.mkfifo(repo / "fifo.py")
    with open(repo / "sparse.py", "wb") as handle:
        handle.truncate(50 * MB)  # 50 MB of NULs, made instantly
    _write(repo, "huge.md", b"word " * (10 * MB))  # 50 MB of text
    _write(repo, "/".join(["d"] * 60) + "/deep.py", "DEEP = 60\n")
    _write(repo, "/".join(["e"] * 120) + "/too_deep.py", "DEEP = 120\n")
    names, bad_names = _odd_names(repo)
    (tmp_path / "empty").mkdir()
    _write(tmp_path, "only_binaries/blob.py", b"\x00" * 10)
    return tmp_path, names, bad_names


def test_hostile_corpus_is_ingested_safely(corpus, monkeypatch):
    root, names, bad_names = corpus
    specs = [str(root / "hostile"), str(root / "empty"), str(root / "only_binaries")]
    opened = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        opened.append(os.path.realpath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    stats = IngestStats()
    start = time.monotonic()
    snapshots = ingest_sources(specs, IngestArguments(sources=specs), stats)
    elapsed = time.monotonic() - start
    monkeypatch.undo()

    [snap] = snapshots
    paths = {f.path for f in snap.files}
    assert {"main.py", "broken.py", "/".join(["d"] * 60) + "/deep.py", *names} == paths
    assert {f.path: f.text for f in snap.files}["broken.py"] == "def broken(:\n    return ]\n"
    assert stats.skipped == {
        "binary": 2, "undecodable": 1, "language": 1, "too_large": 2, "symlink_outside": 3, "symlink_dir": 1,
        "symlink_broken": 2, "special_file": 1, "too_deep": 1, "empty_repo": 2, **({"bad_path": 1} if bad_names else {}),
    }
    assert stats.repos_seen == 3 and stats.repos_kept == 1 and stats.files_kept == len(paths)

    dumped = json.dumps([s.to_dict() for s in snapshots], ensure_ascii=False)
    assert MARKER not in dumped and "root:x:0:0" not in dumped
    outside = str((root / "outside").resolve())
    assert not any(p.startswith(outside) or p == "/etc/passwd" for p in opened)
    assert elapsed < 10


def test_unparsable_file_survives_analysis(corpus):
    root, _, _ = corpus
    stats = IngestStats()
    [snap] = ingest_sources([str(root / "hostile")], IngestArguments(sources=[str(root / "hostile")]), stats)
    graph = analyze_repository(snap)
    assert {"broken.py", "main.py"} <= set(graph.dev_order) == set(graph.files)
