"""The planning pass: read once, decide once, reuse on resume; each shard then reads only its own repositories."""

import json
import os
import shutil
import subprocess
import tarfile

import datasketch  # noqa: F401  (imported before memory is traced: its import is not the planner's)
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from retrace_testing import peak_traced_bytes

from retrace.repo import tables
from retrace.repo.parallel import shard_of
from retrace.repo.plan import PlannedRepository, plan_split, read_planned
from retrace.repo.snapshot import IngestStats
from retrace.repo.sources import IngestArguments, ingest_sources

NUM_SHARDS = 3


@pytest.fixture(autouse=True)
def _cache(isolated_cache):
    """Archive extractions go to this test's own cache."""


def _code(seed: int, n: int = 30) -> str:
    """A distinct module: different seeds share no 5-word shingle."""
    return "".join(f"def handler_{seed}_{i}(request_{seed}, value_{i}):\n    return request_{seed} + value_{i} * {i}\n"
                   for i in range(n))


def _tree(root, files):
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _names_in_shard(prefix: str, shard: int, count: int) -> list[str]:
    names, i = [], 0
    while len(names) < count:
        if shard_of(f"{prefix}{i}", NUM_SHARDS) == shard:
            names.append(f"{prefix}{i}")
        i += 1
    return names


def _write_parquet(path, rows, row_group_size):
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)


@pytest.fixture
def corpus(tmp_path):
    """Directories, an archive, a package and a two-file parquet table (one row per file, small row groups).

    Exact duplicates: `shared` in alpha, beta, the archive and the table; beta's code in the table.
    Near duplicates: the table's `t/beta-copy` of beta (dropped), `alpha_fork` of alpha (dropped).
    `t/long` runs across two row groups. The second table file holds only shard-0 repositories.
    """
    shared = _code(7)
    alpha = {f"m{i}.py": _code(10 + i) for i in range(6)} | {"shared.py": shared, "README.md": "# alpha\n"}
    dirs = tmp_path / "dirs"
    _tree(dirs / "alpha", alpha)
    _tree(dirs / "beta", {"b.py": _code(2), "copy_of_shared.py": shared})
    _tree(dirs / "alpha_fork", {**alpha, "m0.py": _code(10) + "def extra():\n    return 1\n"})
    project = _tree(tmp_path / "proj-1.0", {"pkg/core.py": _code(3), "pkg/shared_again.py": shared})
    with tarfile.open(tmp_path / "proj-1.0.tar.gz", "w:gz") as tar:
        tar.add(project, arcname="proj-1.0")
    rows = [{"repo_name": "t/one", "path": "one.py", "content": _code(20), "license": "MIT"},
            {"repo_name": "t/one", "path": "vendored.py", "content": shared, "license": "MIT"},
            {"repo_name": "t/long", "path": "a.py", "content": _code(21), "license": None},
            {"repo_name": "t/long", "path": "b.py", "content": _code(22), "license": None},
            {"repo_name": "t/long", "path": "c.py", "content": _code(2), "license": None},  # beta's b.py
            {"repo_name": "t/beta-copy", "path": "b.py", "content": _code(2), "license": None},
            {"repo_name": "t/beta-copy", "path": "copy_of_shared.py", "content": shared, "license": None}]
    (tmp_path / "table").mkdir()
    _write_parquet(tmp_path / "table" / "part-0.parquet", rows, row_group_size=3)
    second = [{"repo_name": name, "path": f"f{j}.py", "content": _code(40 + 2 * i + j), "license": "MIT"}
              for i, name in enumerate(_names_in_shard("u/", 0, 3)) for j in range(2)]
    _write_parquet(tmp_path / "table" / "part-1.parquet", second, row_group_size=4)
    specs = [str(dirs / "alpha"), str(dirs / "beta"), str(tmp_path / "proj-1.0.tar.gz"), "python:bisect",
             f"table:{tmp_path / 'table'}", str(dirs / "alpha_fork")]
    return tmp_path, specs


def _plan(specs, tmp_path, num_workers=1, num_shards=NUM_SHARDS, args=None, **keys):
    stats = IngestStats()
    planned = plan_split(specs, args or IngestArguments(sources=specs, **keys), stats, num_shards=num_shards,
                         plan_path=tmp_path / "plan" / "train.jsonl", num_workers=num_workers)
    return planned, stats


def _ingest(specs, **keys):
    stats = IngestStats()
    return ingest_sources(specs, IngestArguments(sources=specs, **keys), stats), stats


def test_plan_then_read_gives_exactly_the_ingested_snapshots(corpus):
    tmp_path, specs = corpus
    snapshots, ingest_stats = _ingest(specs)
    planned, plan_stats = _plan(specs, tmp_path)
    assert [p.name for p in planned] == [s.name for s in snapshots] == [
        "alpha", "beta", "proj-1.0", "bisect", "t/one", "t/long", *_names_in_shard("u/", 0, 3)]
    assert plan_stats == ingest_stats
    assert ingest_stats.skipped["near_duplicate_repo"] == 2
    assert ingest_stats.skipped["duplicate_file_across_repos"] == 4
    assert [p.index for p in planned] == list(range(len(planned)))
    assert all(p.shard == shard_of(p.name, NUM_SHARDS) for p in planned)
    by_name = {p.name: p for p in planned}
    assert by_name["alpha"].kept_files is None and by_name["beta"].kept_files == ("b.py",)
    assert by_name["t/long"].kept_files == ("a.py", "b.py")  # its c.py is beta's b.py
    assert len(json.loads(by_name["t/long"].locator)["pieces"]) == 2  # runs across two row groups
    read_stats = IngestStats()
    read = list(read_planned(planned, IngestArguments(sources=specs), read_stats))
    assert [s.to_dict() for s in read] == [s.to_dict() for s in snapshots]
    assert read_stats.repos_kept == len(planned) and read_stats.files_kept == ingest_stats.files_kept


def test_the_plan_holds_no_text_and_round_trips(corpus):
    tmp_path, specs = corpus
    planned, _ = _plan(specs, tmp_path)
    text = (tmp_path / "plan" / "train.jsonl").read_text()
    assert "handler_" not in text and "# alpha" not in text
    header, *lines = text.splitlines()
    assert json.loads(header)["repositories"] == len(lines) == len(planned)
    assert [PlannedRepository.from_dict(json.loads(line)) for line in lines] == planned


def test_a_second_plan_reads_no_source_and_a_changed_argument_plans_again(corpus):
    tmp_path, specs = corpus
    args, changed = IngestArguments(sources=specs), IngestArguments(sources=specs, max_file_bytes=50_000)
    planned, stats = _plan(specs, tmp_path, args=args)
    moved = tmp_path.with_name(tmp_path.name + "-moved")
    shutil.move(tmp_path / "dirs", moved / "dirs")
    shutil.move(tmp_path / "table", moved / "table")
    (tmp_path / "proj-1.0.tar.gz").unlink()
    again, again_stats = _plan(specs, tmp_path, args=args)
    assert again == planned and again_stats == stats
    reshard, _ = _plan(specs, tmp_path, num_shards=2, args=args)  # shards follow names: no reading either
    assert [p.shard for p in reshard] == [shard_of(p.name, 2) for p in planned]
    with pytest.raises(ValueError, match="dirs/alpha"):  # another argument: the sources are read again
        _plan(specs, tmp_path, args=changed)


def test_two_workers_plan_what_one_plans(corpus):
    tmp_path, specs = corpus
    one, one_stats = _plan(specs, tmp_path / "one")
    two, two_stats = _plan(specs, tmp_path / "two", num_workers=2)
    assert two == one and two_stats == one_stats
    plan_bytes = [(tmp_path / run / "plan" / "train.jsonl").read_bytes() for run in ("one", "two")]
    assert plan_bytes[0] == plan_bytes[1]


def test_a_shard_reads_only_its_own_repositories(corpus):
    tmp_path, specs = corpus
    snapshots, _ = _ingest(specs)
    planned, _ = _plan(specs, tmp_path)
    args = IngestArguments(sources=specs)
    for shard in range(1, NUM_SHARDS):
        mine = [p for p in planned if p.shard == shard]
        assert mine, "the corpus gives every shard a repository"
        needed = {piece[1] for p in mine if p.locator.startswith("{") for piece in json.loads(p.locator)["pieces"]}
        assert str(tmp_path / "table" / "part-1.parquet") not in needed  # it holds shard 0's repositories only
        hidden = tmp_path.with_name(f"{tmp_path.name}-hidden-{shard}")
        for p in planned:  # every other repository's source is gone
            if p.shard != shard and not p.spec.startswith(("table:", "python:")):
                shutil.move(p.spec, hidden / p.name)
        shutil.move(tmp_path / "table" / "part-1.parquet", hidden / "part-1.parquet")
        read = list(read_planned(mine, args))
        expected = [s.to_dict() for s in snapshots if shard_of(s.name, NUM_SHARDS) == shard]
        assert [s.to_dict() for s in read] == expected
        for p in planned:
            if p.shard != shard and not p.spec.startswith(("table:", "python:")):
                shutil.move(hidden / p.name, p.spec)
        shutil.move(hidden / "part-1.parquet", tmp_path / "table" / "part-1.parquet")


def test_rows_of_a_repository_that_come_back_later_are_refused_and_counted(tmp_path):
    rows = [{"repo_name": "a", "path": "a1.py", "content": _code(1)},
            {"repo_name": "b", "path": "b1.py", "content": _code(2)},
            {"repo_name": "b", "path": "b2.py", "content": _code(3)},
            {"repo_name": "a", "path": "a2.py", "content": _code(4)}]
    _write_parquet(tmp_path / "t.parquet", rows, row_group_size=2)
    specs = [str(tmp_path / "t.parquet")]
    snapshots, stats = _ingest(specs)
    kept = [(s.name, [f.path for f in s.files]) for s in snapshots]
    assert kept == [("a", ["a1.py"]), ("b", ["b1.py", "b2.py"])]
    assert stats.skipped == {"table_rows_apart": 1}
    planned, plan_stats = _plan(specs, tmp_path)
    assert plan_stats == stats
    assert [s.to_dict() for s in read_planned(planned, IngestArguments(sources=specs))] == [
        s.to_dict() for s in snapshots]


def test_unnamed_rows_are_numbered_across_json_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "JSON_BLOCK_BYTES", 1_000)
    path = tmp_path / "repos.jsonl"
    path.write_text("".join(json.dumps({"files": [{"path": "m.py", "content": _code(i, 8)}]}) + "\n"
                            for i in range(6)))
    assert len(tables.table_pieces(str(path), "train", tmp_path)) > 2
    snapshots, stats = _ingest([str(path)])
    assert [s.name for s in snapshots] == [f"repos-{i}" for i in range(6)]
    planned, plan_stats = _plan([str(path)], tmp_path)
    assert plan_stats == stats
    assert [s.to_dict() for s in read_planned(planned, IngestArguments(sources=[str(path)]))] == [
        s.to_dict() for s in snapshots]


def test_the_planner_never_holds_the_texts_of_the_input(tmp_path):
    """100 repositories of 100 KB each in row groups of 4: holding them all would show in the peak."""
    rows = [{"repo_name": f"r/{i}", "path": "data.py",
             "content": "".join(f"v_{i}_{j} = '{'x' * 130}'\n" for j in range(700))} for i in range(100)]
    total = sum(len(r["content"]) for r in rows)
    _write_parquet(tmp_path / "big.parquet", rows, row_group_size=4)
    del rows
    specs = [str(tmp_path / "big.parquet")]
    ingest_peak = peak_traced_bytes(lambda: _ingest(specs))
    plan_peak = peak_traced_bytes(lambda: _plan(specs, tmp_path))
    assert ingest_peak > total  # the measure sees texts held
    assert plan_peak < total / 5, (plan_peak, total)
    plan_text = (tmp_path / "plan" / "train.jsonl").read_text()
    assert "x" * 130 not in plan_text and len(plan_text) < total / 100


def _git(cwd, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def test_a_git_source_is_read_again_at_the_commit_planned(tmp_path):
    work = _tree(tmp_path / "work", {"a.py": _code(1)})
    _git(work, "init", "-q", "-b", "main")
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "one")
    specs = [f"git:{work}"]
    args = IngestArguments(sources=specs)
    planned, _ = _plan(specs, tmp_path, args=args)
    [before], _ = _ingest(specs)
    (work / "a.py").write_text(_code(2))
    _git(work, "commit", "-q", "-am", "two")  # HEAD moves after planning
    [snapshot] = read_planned(planned, args)
    assert snapshot.to_dict() == before.to_dict() and snapshot.revision == planned[0].locator


def test_an_unreadable_table_is_a_bad_source(tmp_path):
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.py").write_text(_code(1))
    specs = [str(tmp_path / "broken.parquet"), str(tmp_path / "ok")]
    with pytest.raises(ValueError, match="broken.parquet"):
        _ingest(specs)
    planned, stats = _plan(specs, tmp_path, skip_bad_sources=True)
    assert [p.name for p in planned] == ["ok"] and stats.skipped == {"bad_source": 1}
