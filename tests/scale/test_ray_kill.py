"""A Ray synthesis job killed at once, driver and cluster together, then run again, leaves exactly what an
uninterrupted local run leaves: no repository missing, none written twice, no half file.

The job is synthesize.py with `--executor ray` starting its own local cluster (2 CPUs): SIGKILL goes to its
whole process group (driver, GCS, raylet, analysis tasks and model workers), as when a node is lost mid-run.
"""

from __future__ import annotations

import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from retrace_testing import ROOT
from scale_corpus import make_corpus, tree

from retrace.data.layout import artifact_files

SPLIT = ("--document_budget_tokens", "8000")


def synthesize(out: Path, specs: list[str], *extra: str) -> subprocess.Popen:
    args = [sys.executable, "synthesize.py", "--config", "recipes/quickstart/synthesize.yaml", "--policy_backend",
            "structural", "--sources", *specs, "--output_dir", str(out), "--repos_per_batch", "1",
            "--refine", "false", *SPLIT, *extra]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


@pytest.mark.slow  # ~2 min here (three runs, two Ray clusters); tests/scale/test_ray_executor.py covers a re-run
def test_a_killed_ray_job_run_again_equals_an_uninterrupted_run(tmp_path):
    specs = make_corpus(tmp_path / "corpus", n_repos=16, n_files=25)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert synthesize(clean, specs).wait(timeout=600) == 0

    ray = ("--executor", "ray", "--ray_num_cpus", "2")
    proc = synthesize(killed, specs, *ray)
    finished = killed / "budget"  # a repository's record is written after all of its documents
    deadline = time.time() + 300
    while time.time() < deadline and len(artifact_files(finished, ".json")) < 3 and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    written_at_kill = len(artifact_files(finished, ".json"))
    assert 3 <= written_at_kill < len(specs), f"the kill should land mid-run ({written_at_kill} written)"
    assert not (killed / "stats.json").exists()

    rerun = synthesize(killed, specs, *ray)
    assert rerun.wait(timeout=600) == 0, rerun.stderr.read()[-3000:]
    assert tree(clean) == tree(killed)
    differing = [rel for rel in tree(clean) if not filecmp.cmp(clean / rel, killed / rel, shallow=False)]
    assert not differing, f"{len(differing)} files differ after the killed Ray job was run again: {differing[:5]}"
