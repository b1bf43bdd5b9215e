"""A model server that fails never turns into degraded data: its batches are not written, and the run stops.

A real local OpenAI-compatible server answers the policy; scripted HTTP 500s outlast the client's transport
retries. The repositories of a batch whose requests were lost are not written (so a re-run does them), the
run exits non-zero naming the server, and once the server is back a re-run writes every repository with the
model's text and no fallback for lost requests. The same holds when the server process dies mid-run
(SIGKILL after some answers): what was written before stays, nothing is written after, and the same command
run once the server is back on its address does the rest.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from openai_server import FakeChatServer, grounded_reply
from retrace_testing import ROOT, run_script, write_shapes_repo
from scale_corpus import make_corpus, repository_artifacts

from retrace.data.layout import artifact_files, artifact_path


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


# A FakeChatServer in a process of its own, on a given port (0: any), that SIGKILLs itself when a request
# arrives after `die_after` answered ones (0: never): a server process lost mid-run, its sockets closed by the
# kernel, every later connection refused, until another is started on the same port.
SERVER_PROCESS = """
import os, signal, sys, threading, time
from http.server import ThreadingHTTPServer
sys.path.insert(0, sys.argv[3])
import openai_server

port, die_after, lock, answered = int(sys.argv[1]), int(sys.argv[2]), threading.Lock(), [0]

class OnPort(ThreadingHTTPServer):
    def __init__(self, address, handler):
        super().__init__(("127.0.0.1", port), handler)

def reply(body):
    with lock:
        answered[0] += 1
        if die_after and answered[0] > die_after:
            os.kill(os.getpid(), signal.SIGKILL)
    return openai_server.grounded_reply(body)

openai_server.ThreadingHTTPServer = OnPort
with openai_server.FakeChatServer(reply=reply) as server:
    print(server.base_url, flush=True)
    while True:
        time.sleep(1)
"""


def start_server_process(port: int = 0, die_after: int = 0) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER_PROCESS, str(port), str(die_after),
                             str(ROOT / "tests")], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def test_a_server_that_dies_mid_run_leaves_no_repository_done_with_failed_requests(tmp_path):
    specs = make_corpus(tmp_path / "corpus", n_repos=6, n_files=3)
    out = tmp_path / "out"
    server, base_url = start_server_process(die_after=45)  # ~15 requests a repository: dies in the 4th
    try:
        args = ["synthesize.py", "--sources", *specs, "--heldout_sources", specs[0], "--output_dir", str(out),
                "--viewer", "false", "--policy_backend", "openai", "--policy_base_url", base_url,
                "--policy_model", "test-model", "--policy_api_key_env", "", "--policy_max_retries", "1",
                "--policy_timeout_s", "5", "--policy_ready_timeout_s", "10", "--repos_per_batch", "1",
                "--refine", "false"]
        result = synthesize(*args)
        assert server.wait(timeout=10) == -signal.SIGKILL, "the server should have died mid-run"
    finally:
        server.kill()
    assert result.returncode != 0 and base_url in result.stderr, result.stderr[-3000:]
    done = {p.stem for p in artifact_files(out / "budget", ".json")}  # a repository's record: it is done
    assert 1 <= len(done) < len(specs), f"the server should die mid-run ({len(done)} repositories done)"
    assert_written_with_the_servers_text(out, len(done))

    server, again = start_server_process(port=int(base_url.rsplit(":", 1)[1].split("/")[0]))  # back, same address
    try:
        assert again == base_url
        run_script(*args)  # the same command: it does the rest
    finally:
        server.kill()
    assert len(artifact_files(out / "budget", ".json")) == len(specs)
    assert done <= {p.stem for p in artifact_files(out / "budget", ".json")}
    assert_written_with_the_servers_text(out, len(specs) + 1)  # and the held-out repository


def assert_written_with_the_servers_text(out: Path, at_least: int) -> None:
    """Every trajectory written holds the server's texts or validation fallbacks (counted in its meta), none for
    lost requests."""
    trajectories = [json.loads(p.read_text()) for p in out.glob("**/trajectories/**/*.jsonl")]
    assert len(trajectories) >= at_least
    for trajectory in trajectories:
        counts = trajectory["meta"]["text_sources"]
        assert counts.get("openai", 0) > 0, counts
        assert set(counts) <= {"openai"} | {k for k in counts if k.startswith("fallback:")}, counts
        assert not any("request_failed" in key for key in counts), counts
