"""`executor: ray` on a real local Ray cluster (2 CPUs, no GPU), against the local executor's output.

One cluster for the module (Ray's own testing advice: starting one costs seconds); the runs join it. The
Ray run's output directory is byte-identical to the local run's, every artifact compared, refinement
included (structural proposer, a tiny scorer held by the model worker). Not compared, because they hold
times: `refine_stats.json` and `stats/*.refine_cost.json` (the scorer's seconds), and, as everywhere, the
files that name the run (scale_corpus.NAMING_THE_RUN: output directory, start time, host).
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
from pathlib import Path

import pytest
from openai_server import FakeChatServer, grounded_reply
from scale_corpus import make_corpus, parse_synthesis_recipe, repository_artifacts, tree

from retrace.synthesis import run_synthesis

HOLDING_TIMES = {"refine_stats.json", "stats/shard-00000-of-00001.refine_cost.json"}


@pytest.fixture(scope="module")
def ray_cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def synthesize(out: Path, specs: list[str], scorer: Path, *extra: str) -> None:
    """The quickstart recipe on `specs` (sub-projects under a 3,000-token budget), refined, structural agents."""
    run_synthesis(*parse_synthesis_recipe(
        "--policy_backend", "structural", "--proposer_backend", "structural", "--scorer_backend", "hf",
        "--scorer_model", str(scorer), "--sources", *specs, "--heldout_sources", specs[0],
        "--output_dir", str(out), "--repos_per_batch", "2", "--document_budget_tokens", "3000", *extra),
        progress=False)


@pytest.fixture(scope="module")
def corpus_and_local_output(tmp_path_factory, tiny_llama_dir):
    root = tmp_path_factory.mktemp("ray")
    specs = make_corpus(root / "corpus", n_repos=5, n_files=6)
    # A Ray worker with one CPU runs torch on one thread; scores summed by two threads differ in the last bits.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        synthesize(root / "local", specs, tiny_llama_dir)
    finally:
        torch.set_num_threads(threads)
    return specs, root / "local"


def assert_same_output(expected: Path, found: Path) -> None:
    assert tree(expected, HOLDING_TIMES) == tree(found, HOLDING_TIMES)
    differing = [rel for rel in tree(expected, HOLDING_TIMES)
                 if not filecmp.cmp(expected / rel, found / rel, shallow=False)]
    assert not differing, f"{len(differing)} files differ: {differing[:10]}"


def test_ray_writes_the_local_executors_bytes(ray_cluster, corpus_and_local_output, tiny_llama_dir, tmp_path):
    specs, local = corpus_and_local_output
    assert len(list(local.glob("documents/**/*.jsonl"))) > len(specs), "repositories are split into sub-projects"
    synthesize(tmp_path / "ray", specs, tiny_llama_dir, "--executor", "ray")
    assert_same_output(local, tmp_path / "ray")
    assert (tmp_path / "ray" / "refine_stats.json").is_file()


def test_ray_resumes_a_partly_written_output(ray_cluster, corpus_and_local_output, tiny_llama_dir, tmp_path):
    """As a killed run leaves it: one repository half written (no record), one not at all, a temporary file."""
    specs, local = corpus_and_local_output
    out = tmp_path / "resumed"
    shutil.copytree(local, out)
    for finished in ("stats.json", "README.md", "stats", "viewer", "refine_stats.json"):
        target = out / finished
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    for path in out.rglob("*"):
        if path.is_file() and ("repo03" in path.name or ("repo01" in path.name and "budget" in path.parts)):
            path.unlink()
    (out / "documents" / ".repo01.jsonl.abc.tmp").write_text("half a file")
    synthesize(out, specs, tiny_llama_dir, "--executor", "ray")
    assert_same_output(local, out)


def test_a_failing_server_under_ray_leaves_nothing_written(ray_cluster, tmp_path):
    specs = make_corpus(tmp_path / "corpus", n_repos=2, n_files=2)
    out = tmp_path / "out"
    served = ("--policy_backend", "openai", "--policy_api_key_env", "", "--policy_max_retries", "1",
              "--policy_timeout_s", "5", "--policy_ready_timeout_s", "10", "--sources", *specs,
              "--output_dir", str(out), "--repos_per_batch", "1", "--refine", "false", "--viewer", "false",
              "--heldout_sources", specs[0], "--executor", "ray", "--max_failed_batches", "6")
    with FakeChatServer(reply=grounded_reply) as server:
        server.faults.extend(["500"] * 10_000)  # down for good: every retry fails
        address = ("--policy_base_url", server.base_url, "--policy_model", server.model)
        with pytest.raises(SystemExit, match="3 repositories are not written") as stopped:
            run_synthesis(*parse_synthesis_recipe(*served, *address), progress=False)
        assert server.base_url in str(stopped.value)
        assert not repository_artifacts(out)  # nothing written, so nothing is marked done

        server.faults.clear()  # the server is back: a re-run does every repository, with the model's text
        run_synthesis(*parse_synthesis_recipe(*served, *address), progress=False)
    trajectories = [json.loads(p.read_text()) for p in out.glob("**/trajectories/**/*.jsonl")]
    assert len(trajectories) == 3  # two training repositories, one held out
    for trajectory in trajectories:
        counts = trajectory["meta"]["text_sources"]
        assert counts.get("openai", 0) > 0 and not any("request_failed" in key for key in counts)
