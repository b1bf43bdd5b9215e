"""A synthesis run killed with SIGKILL and run again leaves exactly what an uninterrupted run leaves."""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from retrace_testing import ROOT
from scale_corpus import make_corpus, tree

from retrace.data import read_documents
from retrace.data.layout import artifact_files
from retrace.repo.parallel import shard_of


def synthesize(out: Path, specs: list[str], *extra: str) -> subprocess.Popen:
    args = [sys.executable, "synthesize.py", "--config", "recipes/quickstart/synthesize.yaml", "--policy_backend",
            "structural", "--sources", *specs, "--heldout_sources", specs[0], "--output_dir", str(out),
            "--repos_per_batch", "1", "--refine", "false", *extra]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


# Each corpus repository is ~25k tokens as one document: under this budget it becomes several sub-projects.
SPLIT = ("--document_budget_tokens", "8000")


def test_sigkill_then_rerun_equals_uninterrupted_run(tmp_path):
    specs = make_corpus(tmp_path / "corpus")
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert synthesize(clean, specs, *SPLIT).wait(timeout=600) == 0
    assert len(artifact_files(clean / "documents")) > len(specs), "repositories are split"

    proc = synthesize(killed, specs, *SPLIT)
    finished = killed / "budget"  # a repository's record is written after all of its documents
    deadline = time.time() + 300
    while time.time() < deadline and len(artifact_files(finished, ".json")) < 5:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written_at_kill = len(artifact_files(finished, ".json"))
    assert 5 <= written_at_kill < len(specs), "the kill should land mid-run"
    assert not (killed / "stats.json").exists()

    assert synthesize(killed, specs, *SPLIT).wait(timeout=600) == 0
    assert tree(clean) == tree(killed)
    for rel in tree(clean):
        assert filecmp.cmp(clean / rel, killed / rel, shallow=False), f"{rel} differs after resume"


def test_shards_partition_the_sub_projects(tmp_path):
    """Sub-projects go to their repository's shard: the shards' documents are the unsharded run's, each once."""
    specs = make_corpus(tmp_path / "corpus", n_repos=6, n_files=25)
    whole = tmp_path / "whole"
    assert synthesize(whole, specs, *SPLIT).wait(timeout=300) == 0
    expected = sorted(p.relative_to(whole).as_posix() for p in artifact_files(whole / "documents"))
    assert len(expected) > len(specs)
    found = []
    for index in range(2):
        out = tmp_path / f"shard{index}"
        assert synthesize(out, specs, *SPLIT, "--num_shards", "2", "--shard_index", str(index)).wait(timeout=300) == 0
        names = sorted(p.relative_to(out).as_posix() for p in artifact_files(out / "documents"))
        repos = {doc.repo.split("/")[0] for doc in read_documents(out / "documents")}  # a sub-project: <repo>/<root>
        assert all(shard_of(repo, 2) == index for repo in repos)
        for name in names:
            assert filecmp.cmp(out / name, whole / name, shallow=False)
        found += names
    assert sorted(found) == expected


def test_shards_partition_the_input(tmp_path):
    specs = make_corpus(tmp_path / "corpus", n_repos=12, n_files=2)
    outs = []
    for index in range(3):
        out = tmp_path / f"shard{index}"
        assert synthesize(out, specs, "--num_shards", "3", "--shard_index", str(index)).wait(timeout=300) == 0
        outs.append({doc.repo for doc in read_documents(out / "documents")})
    assert set().union(*outs) == {Path(s).name for s in specs}
    assert sum(len(o) for o in outs) == len(specs)
    for index, names in enumerate(outs):
        assert all(shard_of(name, 3) == index for name in names)
