"""The GPU throughput benchmark's CPU-side logic: the 8B shape, FLOPs and MFU arithmetic, the ZeRO-3 config."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "gpu_throughput_8b.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpu_throughput_8b", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shape_is_llama3_8b(bench):
    """All 32 layers give Meta's published 8,030,261,248 parameters (matmuls + embeddings + norms)."""
    shape = bench.llama3_8b_shape(32)
    hidden, layers = shape["hidden_size"], shape["num_hidden_layers"]
    norms = (2 * layers + 1) * hidden
    assert bench.matmul_parameters(shape) + shape["vocab_size"] * hidden + norms == 8_030_261_248


def test_matmul_parameters_match_a_real_model(bench):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    shape = bench.llama3_8b_shape(2)
    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(**shape))
    linear = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert bench.matmul_parameters(shape) == linear
    assert model.config.rope_parameters["rope_theta"] == 8e6


def test_flops_and_mfu_arithmetic(bench):
    shape = bench.llama3_8b_shape(4)
    n = bench.matmul_parameters(shape)
    tokens = 65536
    one = bench.train_flops_per_sequence(shape, [tokens])
    assert one == 6 * n * tokens + 6 * 4 * 4096 * tokens**2
    halves = bench.train_flops_per_sequence(shape, [tokens // 2, tokens // 2])
    # two documents of half the length: same dense work, half the causal attention work
    assert one - halves == pytest.approx((one - 6 * n * tokens) / 2)
    assert bench.mfu(one, 2.0, 989.0) == pytest.approx(one / 2.0 / 989e12)
    assert bench.document_lengths(10000, 3000) == [3000, 3000, 3000, 1000]
    assert bench.document_lengths(8192, None) == [8192]
    assert bench.peak_tflops_for("NVIDIA H100 80GB HBM3") == 989.0
    assert bench.peak_tflops_for("NVIDIA A100-SXM4-80GB") == 312.0
    assert bench.peak_tflops_for("Tesla T4") is None


def test_zero3_config_has_no_auto_left_and_keeps_gather_on_save(bench):
    config = bench.deepspeed_config(bench.ZERO3, hidden_size=4096, world_size=8)
    assert "auto" not in json.dumps(config)
    assert config["bf16"] == {"enabled": True} and config["train_batch_size"] == 8
    zero = config["zero_optimization"]
    assert zero["stage"] == 3 and zero["stage3_gather_16bit_weights_on_model_save"] is True
    assert zero["reduce_bucket_size"] == 4096 * 4096 and zero["stage3_param_persistence_threshold"] == 40960


def test_without_cuda_it_says_why_and_exits_0():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the benchmark would run for real")
    run = subprocess.run([sys.executable, str(BENCH)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("skipped: no CUDA GPU here")


def test_smoke_runs_the_zero3_code_path_on_this_device(tmp_path):
    """`--smoke`: the benchmark's own ZeRO-3 init, packed batches and engine steps, end to end, and they train."""
    figures = tmp_path / "smoke.json"
    run = subprocess.run([sys.executable, str(BENCH), "--smoke", "--mean_document", "100", "--learning_rate", "1e-3",
                          "--steps", "3", "--warmup", "1", "--json", str(figures)],
                         capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    record = json.loads(figures.read_text())
    assert record["smoke"] is True and record["attn_implementation"] == "sdpa"
    assert [row["tokens"] for row in record["results"]] == [256, 512]
    assert [row["documents"] for row in record["results"]] == [3, 6]
    for row in record["results"]:
        assert row["seconds_per_step"] > 0 and row["tokens_per_second_per_gpu"] > 0
        losses = row["losses"]
        assert len(losses) == 4 and all(later < earlier for earlier, later in zip(losses, losses[1:])), losses
    assert "tiny smoke shape, 2 layers, bf16, sdpa, ZeRO-3" in run.stdout


@pytest.mark.gpu
def test_the_8b_shape_runs_on_this_gpu(tmp_path):
    """The real benchmark at its shortest length with one layer: FA2 (or sdpa without flash-attn), bf16, ZeRO-3."""
    from transformers.utils import is_flash_attn_2_available

    pytest.importorskip("deepspeed")
    attention = "flash_attention_2" if is_flash_attn_2_available() else "sdpa"
    figures = tmp_path / "gpu.json"
    run = subprocess.run([sys.executable, str(BENCH), "--layers", "1", "--lengths", "8192", "--steps", "2",
                          "--warmup", "1", "--attn_implementation", attention, "--json", str(figures)],
                         capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    row = json.loads(figures.read_text())["results"][0]
    assert row["tokens"] == 8192 and row["tokens_per_second_per_gpu"] > 0
    assert row["mfu"] is None or 0 < row["mfu"] < 1
