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

from retrace.repo.parallel import shard_of


def make_corpus(root: Path, n_repos: int = 40, n_files: int = 25) -> list[str]:
    """Small Python packages with a chain of imports each: enough work that a kill lands mid-run."""
    specs = []
    for r in range(n_repos):
        repo = root / f"repo{r:02d}"
        pkg = repo / f"pkg{r}"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f'"""Package {r}."""\n')
        for f in range(n_files):
            imports = f"from .mod{f - 1} import f{f - 1}\n" if f else ""
            body = "".join(f"def f{f}_{k}(x, y={k}):\n    \"\"\"Helper {k}.\"\"\"\n    return x * y + {r}\n\n"
                           for k in range(30))
            (pkg / f"mod{f}.py").write_text(f'"""Module {f} of repo {r}."""\n{imports}\n{body}def f{f}(x):\n'
                                            f"    return x + {f}\n")
        specs.append(str(repo))
    return specs


def synthesize(out: Path, specs: list[str], *extra: str) -> subprocess.Popen:
    args = [sys.executable, "synthesize.py", "--config", "recipes/quickstart/synthesize.yaml", "--policy_backend",
            "structural", "--sources", *specs, "--heldout_sources", specs[0], "--output_dir", str(out),
            "--repos_per_batch", "1", "--refine", "false", *extra]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def tree(root: Path) -> list[str]:
    """Every artifact, except those that name the run itself (output_dir, start time, the card quoting both)."""
    naming_the_run = {"run_info.json", "recipe.yaml", "README.md", "viewer/index.html"}
    return sorted(rel for p in root.rglob("*") if p.is_file() and (rel := str(p.relative_to(root))) not in naming_the_run)


# Each corpus repository is ~25k tokens as one document: under this budget it becomes several sub-projects.
SPLIT = ("--document_budget_tokens", "8000")


def test_sigkill_then_rerun_equals_uninterrupted_run(tmp_path):
    specs = make_corpus(tmp_path / "corpus")
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert synthesize(clean, specs, *SPLIT).wait(timeout=600) == 0
    assert len(list((clean / "documents").glob("*.jsonl"))) > len(specs), "repositories are split"

    proc = synthesize(killed, specs, *SPLIT)
    finished = killed / "budget"  # a repository's record is written after all of its documents
    deadline = time.time() + 300
    while time.time() < deadline and len(list(finished.glob("*.json"))) < 5:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written_at_kill = len(list(finished.glob("*.json")))
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
    expected = sorted(p.name for p in (whole / "documents").glob("*.jsonl"))
    assert len(expected) > len(specs)
    found = []
    for index in range(2):
        out = tmp_path / f"shard{index}"
        assert synthesize(out, specs, *SPLIT, "--num_shards", "2", "--shard_index", str(index)).wait(timeout=300) == 0
        names = sorted(p.name for p in (out / "documents").glob("*.jsonl"))
        repos = {name.split("_")[0].split(".")[0] for name in names}
        assert all(shard_of(repo, 2) == index for repo in repos)
        for name in names:
            assert filecmp.cmp(out / "documents" / name, whole / "documents" / name, shallow=False)
        found += names
    assert sorted(found) == expected


def test_shards_partition_the_input(tmp_path):
    specs = make_corpus(tmp_path / "corpus", n_repos=12, n_files=2)
    outs = []
    for index in range(3):
        out = tmp_path / f"shard{index}"
        assert synthesize(out, specs, "--num_shards", "3", "--shard_index", str(index)).wait(timeout=300) == 0
        outs.append({p.stem for p in (out / "documents").glob("*.jsonl")})
    assert set().union(*outs) == {Path(s).name for s in specs}
    assert sum(len(o) for o in outs) == len(specs)
    for index, names in enumerate(outs):
        assert all(shard_of(name, 3) == index for name in names)
