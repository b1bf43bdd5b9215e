"""train.py's GPU paths: FlashAttention-2 keeps packed documents apart, bf16 training, DeepSpeed ZeRO-3 on CUDA.

Skipped without CUDA (the `gpu` marker); the FlashAttention-2 tests also need flash-attn
(requirements-gpu.txt). They are the GPU half of what the CPU suite proves with sdpa and fp32.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from retrace.training import PackedCollator, pack_documents

from .conftest import REPO, reference_args, train_env

pytestmark = pytest.mark.gpu


def _needs_flash_attn():
    from transformers.utils import is_flash_attn_2_available

    if not is_flash_attn_2_available():
        pytest.skip("needs flash-attn (pip install -r requirements-gpu.txt)")


def _run(command, tmp_path, timeout=900):
    result = subprocess.run(command, cwd=tmp_path, env=train_env(tmp_path), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    return result.stdout + result.stderr


def _gpu_args(*extra: str) -> list[str]:
    return ["--use_cpu", "false", "--bf16", "true", "--dtype", "bfloat16", *extra]


def test_flash_attention_2_keeps_packed_documents_apart(tiny_model_dir):
    """The flattened pack train.py feeds FA2: a document's logits equal the document alone (bf16 tolerance)."""
    _needs_flash_attn()
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16,
                                                 attn_implementation="flash_attention_2").cuda().eval()
    first, second = list(range(100, 111)), list(range(200, 209))
    packs = list(pack_documents([(first, first), (second, second)], 20, pad_id=2))
    batch = {key: value.cuda() for key, value in PackedCollator(flatten=True)(packs).items()}
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        alone = model(input_ids=torch.tensor([second], device="cuda")).logits[0]
        across = model(input_ids=batch["input_ids"]).logits[0]
    packed_error = (packed[11:20].float() - alone.float()).abs().max().item()
    across_error = (across[11:20].float() - alone.float()).abs().max().item()
    torch.testing.assert_close(packed[11:20].float(), alone.float(), rtol=2e-2, atol=2e-2)
    assert across_error > 4 * packed_error and across_error > 0  # attending across documents is what differs


@pytest.mark.parametrize("attention", ["sdpa", "flash_attention_2"])
def test_bf16_training_on_gpu_saves_a_model_that_reloads_and_generates(tmp_path, tiny_model_dir,
                                                                       documents_dir, attention):
    if attention == "flash_attention_2":
        _needs_flash_attn()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "model"
    _run([sys.executable, str(REPO / "train.py"), *reference_args(tiny_model_dir, documents_dir, out, 4),
          *_gpu_args("--attn_implementation", attention)], tmp_path)
    state = json.loads((out / "trainer_state.json").read_text())
    losses = [entry["loss"] for entry in state["log_history"] if "loss" in entry]
    assert len(losses) == 4 and all(loss == loss and loss > 0 for loss in losses)  # finite, no NaN
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16).cuda().eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer("def add(x):", return_tensors="pt").to("cuda")
    assert model.generate(**prompt, max_new_tokens=4, do_sample=False).shape[1] == prompt["input_ids"].shape[1] + 4


def test_deepspeed_zero3_bf16_on_gpu_trains_resumes_and_gathers_weights(tmp_path, tiny_model_dir, documents_dir):
    """`deepspeed --num_gpus 1` with zero3.json: bf16 on CUDA, resume from checkpoint-2, whole 16-bit weights saved."""
    from transformers import AutoModelForCausalLM

    pytest.importorskip("deepspeed")
    deepspeed = Path(sys.executable).with_name("deepspeed")
    out = tmp_path / "zero3"

    def launch(max_steps):
        return [str(deepspeed), "--num_gpus", "1", str(REPO / "train.py"),
                *reference_args(tiny_model_dir, documents_dir, out, max_steps), "--save_steps", "2",
                "--deepspeed", str(REPO / "recipes" / "deepspeed" / "zero3.json"), *_gpu_args()]

    _run(launch(2), tmp_path)
    assert "resuming from" in _run(launch(4), tmp_path)
    reloaded = AutoModelForCausalLM.from_pretrained(out).state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    for name, tensor in reloaded.items():
        assert tensor.shape == base[name].shape and tensor.numel() > 0, name
    assert not torch.equal(reloaded["model.layers.1.self_attn.o_proj.weight"].float(),
                           base["model.layers.1.self_attn.o_proj.weight"].float())
