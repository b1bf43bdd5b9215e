"""DeepSpeed ZeRO-2, ZeRO-3 and ZeRO-3 + optimizer offload on this CPU, launched as users launch them.

`deepspeed --num_gpus 1 train.py --config ... --deepspeed recipes/deepspeed/<config>.json` with the shipped
JSONs unchanged: on CPU their "auto" values resolve to fp32 (bf16/fp16 off), the Trainer's torch AdamW
runs under ZeRO-2/3, and the offload config gets DeepSpeed's CPU Adam (its C++ op compiles on first use,
~45 s, cached in TORCH_EXTENSIONS_DIR, like the shared-memory communication op every config needs).
Each run trains 2 steps, saves, is relaunched to resume to 4, and the saved model must load with
`from_pretrained` to the same weights (and the run log the same losses) as the plain reference run
without DeepSpeed after the same 4 steps (so nothing was lost to ZeRO-3 partitioning on save or to the
resume). ZeRO-2 is in the default suite; the other two are `slow`. ZeRO-3 across two ranks
(`--num_gpus 2`, so the parameters really are partitioned) is in the default suite too.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .conftest import REPO, reference_args, train_env

DEEPSPEED = Path(sys.executable).with_name("deepspeed")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(command, tmp_path):
    result = subprocess.run(command, cwd=tmp_path, env=train_env(tmp_path), capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    return result.stdout + result.stderr


def _losses(output_dir: Path) -> list[float]:
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


@pytest.mark.skipif(not DEEPSPEED.exists() or shutil.which("gcc") is None, reason="needs deepspeed and gcc")
@pytest.mark.parametrize("config", ["zero2", pytest.param("zero3", marks=pytest.mark.slow),
                                    pytest.param("zero3_offload", marks=pytest.mark.slow)])
def test_deepspeed_trains_saves_reloads_and_resumes(tmp_path, tiny_model_dir, reference_run, config):
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    _, documents, plain = reference_run
    out = tmp_path / config

    def launch(max_steps):
        return [str(DEEPSPEED), "--num_gpus", "1", "--master_port", str(_free_port()), str(REPO / "train.py"),
                *reference_args(tiny_model_dir, documents, out, max_steps), "--save_steps", "2",
                "--deepspeed", str(REPO / "recipes" / "deepspeed" / f"{config}.json")]

    _run(launch(2), tmp_path)
    assert (out / "checkpoint-2" / "global_step2").is_dir()  # DeepSpeed's own (partitioned) checkpoint
    log = _run(launch(4), tmp_path)
    assert f"resuming from {out / 'checkpoint-2'}" in log
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 4
    assert _losses(out) == pytest.approx(_losses(plain)[:4], rel=1e-4)

    reloaded = AutoModelForCausalLM.from_pretrained(out).state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    reference = load_file(plain / "checkpoint-4" / "model.safetensors")  # the plain run after the same 4 steps
    assert reloaded.keys() == base.keys()
    for name, tensor in reloaded.items():
        assert tensor.shape == base[name].shape and tensor.numel() > 0, name  # not ZeRO-3's empty placeholders
        if name in reference:
            torch.testing.assert_close(tensor, reference[name], rtol=1e-4, atol=1e-5)
    assert not torch.equal(reloaded["model.layers.1.self_attn.o_proj.weight"],
                           base["model.layers.1.self_attn.o_proj.weight"])


@pytest.mark.skipif(not DEEPSPEED.exists() or shutil.which("gcc") is None, reason="needs deepspeed and gcc")
def test_zero3_across_two_ranks_gathers_whole_weights_and_resumes(tmp_path, tiny_model_dir, reference_run):
    """`deepspeed --num_gpus 2` on this CPU: ZeRO-3 really partitions (each rank holds half of every
    parameter), 1 sequence per rank makes the reference's global batch of 2, so after a save, a relaunch
    that resumes both ranks' partitioned optimizer state, and a 16-bit gather on save, the model must load
    whole and equal the plain single-process run after the same 4 steps."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    _, documents, plain = reference_run
    out = tmp_path / "zero3x2"

    def launch(max_steps):
        return [str(DEEPSPEED), "--num_gpus", "2", "--master_port", str(_free_port()), str(REPO / "train.py"),
                *reference_args(tiny_model_dir, documents, out, max_steps), "--save_steps", "2",
                "--per_device_train_batch_size", "1", "--deepspeed", str(REPO / "recipes" / "deepspeed" / "zero3.json")]

    first = _run(launch(2), tmp_path)
    assert "2 processes x 1 per device" in first
    shards = sorted(p.name for p in (out / "checkpoint-2" / "global_step2").iterdir())
    assert shards == [f"zero_pp_rank_{rank}_mp_rank_00_{kind}_states.pt"
                      for rank in (0, 1) for kind in ("model", "optim")]  # one partition per rank
    log = _run(launch(4), tmp_path)
    assert f"resuming from {out / 'checkpoint-2'}" in log
    assert _losses(out) == pytest.approx(_losses(plain)[:4], rel=1e-4)
    reloaded = AutoModelForCausalLM.from_pretrained(out).state_dict()
    reference = load_file(plain / "checkpoint-4" / "model.safetensors")
    for name, tensor in reference.items():
        torch.testing.assert_close(reloaded[name], tensor, rtol=1e-4, atol=1e-5)
