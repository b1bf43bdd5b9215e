"""What a worker survives and what it holds: a model worker killed mid-run, and one shard's memory.

A killed worker: `executor: ray` on a real local cluster (2 CPUs); once a few repositories are written,
the model worker's process (Ray Data's actor holding the engines) gets SIGKILL from outside, as when the
kernel's OOM killer takes it. Ray Data restarts the actor and retries its batch (its actor pool asks for
`max_restarts=-1`, `max_task_retries=-1`), the run finishes, and its output is byte-identical to an
uninterrupted local run: no repository missing, none written twice (a retried batch rewrites the same
files atomically), no temporary file left.

A shard's memory: many small generated repositories planned into 4 shards; reading one shard's
repositories the way the executors do (`read_entries` over that shard's plan entries) peaks, under
tracemalloc, at about that shard's own text bytes, far below the input's.
"""

from __future__ import annotations

import filecmp
import os
import signal
import threading
import time
from itertools import islice
from pathlib import Path

import psutil
import pytest
from retrace_testing import peak_traced_bytes
from scale_corpus import make_corpus, parse_synthesis_recipe, tree

from retrace.atomic import TEMP_SUFFIX
from retrace.data.layout import artifact_files
from retrace.repo.parallel import ScaleArguments
from retrace.repo.sources import IngestArguments
from retrace.synthesis import run_synthesis
from retrace.synthesis.planning import plan_inputs, read_entries


@pytest.fixture
def ray_cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def synthesize(out: Path, specs: list[str], *extra: str) -> None:
    """Structural agents, no refinement; each repository split into sub-projects, two repositories a batch."""
    run_synthesis(*parse_synthesis_recipe(
        "--policy_backend", "structural", "--refine", "false", "--viewer", "false", "--sources", *specs,
        "--heldout_sources", specs[0], "--output_dir", str(out), "--repos_per_batch", "2",
        "--document_budget_tokens", "8000", *extra), progress=False)


def model_worker_pids() -> list[int]:
    """The processes of Ray Data's actors (`ray::_MapWorker...`, the title Ray gives them) started by this test."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "MapWorker" in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:
            continue  # gone meanwhile
    return found


@pytest.mark.slow  # ~1 min idle, 5 min under load here: a local run, then a Ray run with a worker killed
def test_a_model_worker_killed_mid_run_leaves_no_repository_missing_or_twice(ray_cluster, tmp_path):
    specs = make_corpus(tmp_path / "corpus", n_repos=8, n_files=16)
    local, out = tmp_path / "local", tmp_path / "ray"
    synthesize(local, specs)
    assert len(artifact_files(local / "documents")) > len(specs), "repositories are split into sub-projects"

    killed: dict[str, object] = {}

    def kill_a_worker_mid_run() -> None:
        records = out / "budget"  # a repository's record is written after all of its documents
        deadline = time.time() + 300
        while time.time() < deadline and len(artifact_files(records, ".json")) < 2:
            time.sleep(0.02)
        pids = model_worker_pids()
        killed["written"] = len(artifact_files(records, ".json"))
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed["pid"] = pids[0]

    killer = threading.Thread(target=kill_a_worker_mid_run, daemon=True)
    killer.start()
    synthesize(out, specs, "--executor", "ray")
    killer.join(timeout=10)
    assert "pid" in killed, "no model worker process was found to kill"
    assert 2 <= killed["written"] < len(specs), f"the kill should land mid-run ({killed['written']} written)"

    # A worker killed inside an atomic write leaves its hidden temporary file, which the next run removes
    # (remove_partial_writes at start: only then is no other shard writing); it is never an artifact.
    leftovers = [p for p in out.rglob(f"*{TEMP_SUFFIX}") if p.name.startswith(".")]
    for partial in leftovers:
        partial.unlink()
    assert tree(local) == tree(out)  # nothing missing, nothing extra (no second copy)
    differing = [rel for rel in tree(local) if not filecmp.cmp(local / rel, out / rel, shallow=False)]
    assert not differing, f"{len(differing)} files differ after a worker was killed: {differing[:5]}"


def write_small_repositories(root: Path, count: int) -> list[str]:
    """`count` different two-file packages of ~4 KB each (distinct names and bodies: no near-duplicates)."""
    specs = []
    for r in range(count):
        pkg = root / f"small{r:03d}" / f"small{r:03d}"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f'"""Package {r}."""\nfrom .core import run_{r}\n')
        body = "".join(f"def step_{r}_{k}(value_{k * r}):\n    return value_{k * r} * {k * 7919 + r} - {r * r}\n\n"
                       for k in range(40))
        (pkg / "core.py").write_text(f'"""Core {r}."""\n\n{body}def run_{r}(x):\n    return step_{r}_0(x)\n')
        specs.append(str(pkg.parent))
    return specs


def text_bytes(snapshots) -> int:
    return sum(len(f.text) for s in snapshots for f in s.files)


def test_a_shard_holds_only_its_own_repositories_texts(tmp_path):
    specs = write_small_repositories(tmp_path / "corpus", 200)
    # A file is read into a buffer of `max_file_bytes` + 1 bytes (one at a time): the recipe's 1 MB would hide
    # these 4 KB files under one transient buffer, so the limit here is one that still keeps every file.
    ingest = IngestArguments(sources=specs, max_file_bytes=16_000)
    plans = [plan_inputs("train", specs, ingest, ScaleArguments(num_shards=4, shard_index=index), tmp_path / "out")
             for index in range(4)]  # planned once, the plan reused by the other three
    plan = plans[1]
    assert len(plan.all_names) == 200 and 30 < len(plan.entries) < 70  # every one kept; this shard's quarter
    everything = [e for p in plans for e in p.entries]
    total = text_bytes(read_entries(everything, ingest))
    own = text_bytes(read_entries(plan.entries, ingest))

    # The measure sees texts held: every shard's repositories in one list peak above the input's text bytes.
    assert peak_traced_bytes(lambda: list(read_entries(everything, ingest))) > total
    # One shard's repositories all held at once (more than an executor ever holds): about its own texts, at
    # least them and under 1.6 times them (measured ~1.3: paths, metadata, one file's read buffer), so about a
    # third of the input's at 4 shards; a shard that read everything would be at or above all of it.
    shard_peak = peak_traced_bytes(lambda: list(read_entries(plan.entries, ingest)))
    assert own <= shard_peak < 1.6 * own + ingest.max_file_bytes, (shard_peak, own, total)
    assert shard_peak < total / 2, (shard_peak, total)

    def in_batches() -> None:  # as the local executor reads them: `repos_per_batch` (8) at a time
        snapshots = read_entries(plan.entries, ingest)
        while list(islice(snapshots, 8)):
            pass

    batch_peak = peak_traced_bytes(in_batches)  # about one batch's texts (~30 KB), not the shard's
    assert batch_peak < own / 2, (batch_peak, own)
