"""A model server that fails never turns into degraded data: its batches are not written, and the run stops.

A real local OpenAI-compatible server answers the policy; scripted HTTP 500s outlast the client's transport
retries. The repositories of a batch whose requests were lost are not written (so a re-run does them), the
run exits non-zero naming the server, and once the server is back a re-run writes every repository with the
model's text and no fallback for lost requests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from openai_server import FakeChatServer, grounded_reply
from retrace_testing import ROOT, run_script, write_shapes_repo
from scale_corpus import repository_artifacts

from retrace.data.layout import artifact_path


def write_tally_repo(root: Path) -> Path:
    """A second, different two-file package (the first would be a near-duplicate of a copy of itself)."""
    (root / "tally").mkdir(parents=True)
    (root / "tally" / "counter.py").write_text('"""Counting words."""\n\ndef count(text):\n    return len(text.split())\n')
    (root / "tally" / "report.py").write_text('"""Reports."""\nfrom tally.counter import count\n\n'
                                              'def report(text):\n    return f"{count(text)} words"\n')
    return root


def synthesize_args(server: FakeChatServer, sources: list[str], out: Path, *extra: str) -> list[str]:
    return ["synthesize.py", "--sources", *sources, "--output_dir", str(out), "--viewer", "false",
            "--policy_backend", "openai", "--policy_base_url", server.base_url, "--policy_model", server.model,
            "--policy_api_key_env", "", "--policy_max_retries", "1", "--policy_timeout_s", "5",
            "--policy_ready_timeout_s", "10", "--repos_per_batch", "1", "--refine", "false", *extra]


def synthesize(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_failing_server_leaves_its_batches_unwritten_and_stops_the_run(tmp_path):
    sources = [str(write_shapes_repo(tmp_path / "shapes")), str(write_tally_repo(tmp_path / "tally"))]
    out = tmp_path / "out"
    with FakeChatServer(reply=grounded_reply) as server:
        server.faults.extend(["500"] * 10_000)  # down for good: every retry fails
        result = synthesize(*synthesize_args(server, sources, out, "--max_failed_batches", "5"))
        assert result.returncode != 0
        assert "2 repositories are not written" in result.stderr and server.base_url in result.stderr
        assert result.stderr.count("is not written:") == 4  # each batch, then its second try, logged
        assert not repository_artifacts(out)  # nothing written, so nothing is marked done

        # past the threshold the run stops at once (here at the second failed batch)
        stopped = synthesize(*synthesize_args(server, sources, tmp_path / "out2", "--max_failed_batches", "1"))
        assert stopped.returncode != 0 and "synthesis stopped: 2 batches lost model requests" in stopped.stderr

        server.faults.clear()  # the server is back: a re-run does what is missing, all with the model's text
        run_script(*synthesize_args(server, sources, out))
    for name in ("shapes", "tally"):
        trajectory = json.loads(artifact_path(out, "trajectories", name).read_text())
        counts = trajectory["meta"]["text_sources"]
        assert counts.get("openai", 0) > 0 and not any("request_failed" in key for key in counts)
        assert artifact_path(out, "documents", name).is_file()
