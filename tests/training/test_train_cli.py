"""train.py end to end on a tiny model: checkpoints, reload, provenance, wandb offline, automatic resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "recipes" / "quickstart" / "train.yaml"


def _train(tmp_path, *args, env_extra=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true",
           "TOKENIZERS_PARALLELISM": "false", **(env_extra or {})}
    return subprocess.run([sys.executable, str(REPO / "train.py"), "--config", str(QUICKSTART), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_train_saves_reloads_and_resumes(tmp_path, tiny_model_dir, documents_dir):
    from transformers import AutoModelForCausalLM

    out = tmp_path / "model"
    common = ["--model_name_or_path", str(tiny_model_dir), "--documents", str(documents_dir),
              "--max_length", "32", "--output_dir", str(out), "--save_steps", "3", "--logging_steps", "1",
              "--report_to", "wandb", "--wandb_project", "retrace-test"]
    first = _train(tmp_path, *common, "--max_steps", "3")
    assert first.returncode == 0, first.stderr[-3000:]
    assert (out / "checkpoint-3" / "trainer_state.json").is_file()
    for name in ("recipe.yaml", "run_info.json", "README.md", "train_results.json", "tokenizer.json"):
        assert (out / name).is_file(), name
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline wandb run"
    results = json.loads((out / "train_results.json").read_text())
    assert results["train"]["num_input_tokens_seen"] == 3 * 2 * 32
    assert AutoModelForCausalLM.from_pretrained(out).config.num_hidden_layers == 2

    second = _train(tmp_path, *common, "--max_steps", "5")
    assert second.returncode == 0, second.stderr[-3000:]
    log = second.stdout + second.stderr
    assert f"resuming from {out / 'checkpoint-3'}" in log
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 5
    steps = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert steps == [1, 2, 3, 4, 5]  # steps 1-3 come from the checkpoint, 4-5 from this run
    assert (out / "checkpoint-5").is_dir() and not (out / "checkpoint-3").exists()  # save_total_limit: 1


def test_missing_documents_is_one_line_error(tmp_path, tiny_model_dir):
    run = _train(tmp_path, "--model_name_or_path", str(tiny_model_dir), "--documents", "nowhere/documents",
                 "--output_dir", str(tmp_path / "model"))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith("error: key 'documents': path does not exist")


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "recipes" / "llama3-8b").glob("*.yaml")))
def test_gpu_recipes_parse_on_cpu(recipe):
    """GPU recipes (bf16, DeepSpeed) parse here when told to use the CPU, which is all a CPU machine can check."""
    code = ("from retrace.recipe import parse_recipe; from retrace.training import *; "
            "m, d, t, r = parse_recipe((ModelArguments, DataArguments, RetraceTrainingArguments), "
            f"['--config', 'recipes/llama3-8b/{recipe}', '--use_cpu', 'true']); "
            "import json, os; assert os.path.isfile(t.deepspeed), t.deepspeed; "
            "assert json.load(open(t.deepspeed))['zero_optimization'].get('stage3_gather_16bit_weights_on_model_save') "
            "in (True, None); print(t.per_device_train_batch_size * t.gradient_accumulation_steps * 8)")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
