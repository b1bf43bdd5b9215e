"""train.py end to end on a tiny model: kill and relaunch, reload and generate, provenance, wandb offline, LoRA."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from .conftest import QUICKSTART, REFERENCE_STEPS, REPO, reference_args, train_env


def _train(tmp_path, *args, env_extra=None):
    return subprocess.run([sys.executable, str(REPO / "train.py"), "--config", str(QUICKSTART), *args],
                          cwd=tmp_path, env=train_env(tmp_path, env_extra), capture_output=True, text=True,
                          timeout=300)


def _losses(output_dir: Path) -> dict[int, float]:
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path / "model.safetensors")


def complete_json(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_text()), dict)
    except (OSError, ValueError):
        return False


def test_killed_run_relaunched_resumes_with_the_same_data_order(tiny_model_dir, reference_run):
    """SIGKILL after a checkpoint, relaunch: the same per-step losses and final weights as a run never killed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp_path, documents, straight = reference_run
    steps = REFERENCE_STEPS
    killed = tmp_path / "killed"
    command = [sys.executable, str(REPO / "train.py"), *reference_args(tiny_model_dir, documents, killed, steps)]
    run = subprocess.Popen(command, cwd=tmp_path, env=train_env(tmp_path), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not complete_json(killed / "checkpoint-4" / "trainer_state.json"):  # the Trainer writes it in place
        assert run.poll() is None and time.monotonic() < deadline, "training ended before its first checkpoint"
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    assert run.wait(timeout=60) == -signal.SIGKILL
    assert not (killed / "model.safetensors").exists(), "the run finished before it was killed"

    again = subprocess.run(command, cwd=tmp_path, env=train_env(tmp_path), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed_from = int(again.stdout.split(f"resuming from {killed / 'checkpoint-'}")[1].split()[0])
    assert 4 <= resumed_from < steps
    straight_losses, killed_losses = _losses(straight), _losses(killed)
    assert sorted(killed_losses) == list(range(1, steps + 1))
    for step in range(resumed_from + 1, steps + 1):  # these batches were drawn by the relaunched process
        assert killed_losses[step] == pytest.approx(straight_losses[step], rel=1e-5), step
    final, reference = _weights(killed), _weights(straight)
    for name, tensor in reference.items():
        torch.testing.assert_close(final[name], tensor, rtol=1e-5, atol=1e-6)
    base = _weights(tiny_model_dir)
    assert not torch.allclose(reference["model.layers.0.mlp.up_proj.weight"], base["model.layers.0.mlp.up_proj.weight"])

    # what a user gets: the saved model reloads and greedily generates; the run left its records
    tokenizer = AutoTokenizer.from_pretrained(straight)
    model = AutoModelForCausalLM.from_pretrained(straight).eval()
    prompt = tokenizer("def add(x):", return_tensors="pt")
    generated = model.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] == prompt["input_ids"].shape[1] + 5
    for name in ("recipe.yaml", "run_info.json", "README.md", "train_results.json", "tokenizer.json"):
        assert (straight / name).is_file(), name
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline wandb run"
    results = json.loads((straight / "train_results.json").read_text())
    packs = results["data"]["sequences"]  # 11: an epoch is 5 batches of 2 and one of 1
    epochs, rest = divmod(steps, -(-packs // 2))
    assert results["train"]["num_input_tokens_seen"] == (epochs * packs + rest * 2) * 32
    assert results["data"]["sources"]["documents"]["tokens"] == results["data"]["tokens"]
    logged = [e for e in json.loads((straight / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert {"loss", "learning_rate", "num_input_tokens_seen", "tokens_per_second"} <= set(logged[1])
    assert logged[0]["global_batch_sequences"] == 2 and logged[0]["global_batch_tokens"] == 64
    assert all(e["tokens_per_second"] > 0 for e in logged[1:])


def test_two_processes_train_like_one_with_the_same_global_batch_and_resume(tmp_path, tiny_model_dir, reference_run):
    """`torchrun --nproc_per_node 2` (DDP over gloo on CPU) with 1 sequence per device: the same global batch
    as the reference's 1 x 2, so the same data, losses and weights, step for step; a relaunch resumes both
    ranks from the checkpoint; the pack cache is built once and each warning is logged once."""
    import socket

    _, documents, reference = reference_run
    out = tmp_path / "ddp"

    def launch(max_steps):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        command = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", "2", "--master_port",
                   str(port), str(REPO / "train.py"), *reference_args(tiny_model_dir, documents, out, max_steps),
                   "--per_device_train_batch_size", "1"]
        run = subprocess.run(command, cwd=tmp_path, env=train_env(tmp_path), capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        return run.stdout + run.stderr

    log = launch(4)
    assert log.count("packed 3 documents") == 1  # rank 0 packs; rank 1 waits, then loads the cache
    assert log.count("global batch: 2 sequences x 32 tokens = 64 tokens (2 processes x 1 per device") == 1
    assert log.count("but the recipe was sized for 1024 tokens") == 1
    assert "find_unused_parameters=True" not in log
    losses, reference_losses = _losses(out), _losses(reference)
    for step in range(1, 5):
        assert losses[step] == pytest.approx(reference_losses[step], rel=1e-5), step
    logged = [e for e in json.loads((out / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert logged[0]["global_batch_sequences"] == 2 and logged[-1]["num_input_tokens_seen"] == 4 * 2 * 32
    for name, tensor in _weights(reference / "checkpoint-4").items():
        torch.testing.assert_close(_weights(out)[name], tensor, rtol=1e-4, atol=1e-5)

    # Resumed, both ranks draw the batch an uninterrupted run draws next. (Step 6 ends the 11-pack epoch:
    # one process takes a batch of 1 there, two processes repeat a pack to fill theirs (accelerate's
    # even_batches), so the runs part ways at epoch ends; docs/training.md says so.)
    log = launch(5)
    assert f"resuming from {out / 'checkpoint-4'}" in log
    assert _losses(out)[5] == pytest.approx(reference_losses[5], rel=1e-5)


def test_lora_on_a_pretokenised_mixture_trains_and_reloads(tmp_path, tiny_model_dir, documents_dir):
    """A mixture packed once by --pretokenize_only, then LoRA training that loads those packs; adapter + merged reload."""
    from transformers import AutoModelForCausalLM

    text = tmp_path / "text.jsonl"
    text.write_text("".join(json.dumps({"text": f"Note {i}: the mill by the river. " * 3}) + "\n" for i in range(30)))
    # the trajectories source has no path: it reads --documents, as a recipe's documents would be mixed
    mixture = json.dumps({"trajectories": {"weight": 0.6},
                          "general": {"path": str(text), "text_field": "text", "weight": 0.4}})
    out = tmp_path / "lora"
    common = ["--model_name_or_path", str(tiny_model_dir), "--documents", str(documents_dir), "--mixture", mixture,
              "--max_length", "32", "--output_dir", str(out)]
    packed = _train(tmp_path, *common, "--pretokenize_only", "true")
    assert packed.returncode == 0, packed.stderr[-3000:]
    assert not (out / "config.json").exists()  # no model was trained or saved
    run = _train(tmp_path, *common, "--max_steps", "3", "--save_steps", "3", "--learning_rate", "1e-2",
                 "--use_lora", "true", "--lora_r", "4", "--lora_alpha", "8", "--lora_target_modules", "q_proj", "v_proj")
    assert "loading packed data from" in run.stdout + run.stderr
    assert run.returncode == 0, run.stderr[-3000:]
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    adapter = AutoModelForCausalLM.from_pretrained(out).eval()  # peft: base from adapter_config + adapter
    merged = AutoModelForCausalLM.from_pretrained(out / "merged").eval()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    ids = torch.tensor([[5, 17, 300, 42, 9, 1000]])
    with torch.no_grad():
        adapted_logits, merged_logits, base_logits = (m(input_ids=ids).logits for m in (adapter, merged, base))
    torch.testing.assert_close(merged_logits, adapted_logits, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(merged_logits, base_logits, atol=1e-3)
    merged_weights, base_weights = merged.state_dict(), base.state_dict()
    for name, tensor in base_weights.items():  # only the targeted projections changed
        changed = not torch.equal(merged_weights[name], tensor)
        assert changed == (name.endswith(("q_proj.weight", "v_proj.weight"))), name
    card = (out / "README.md").read_text()
    assert "LoRA adapter" in card and "## Data mixture (realised)" in card and "| general | 0.4 |" in card
    sources = json.loads((out / "train_results.json").read_text())["data"]["sources"]
    assert sources.keys() == {"trajectories", "general"}
    assert merged.generate(input_ids=ids, max_new_tokens=3, do_sample=False).shape[1] == ids.shape[1] + 3


def test_missing_documents_is_one_line_error(tmp_path, tiny_model_dir):
    run = _train(tmp_path, "--model_name_or_path", str(tiny_model_dir), "--documents", "nowhere/documents",
                 "--output_dir", str(tmp_path / "model"))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith("error: key 'documents': path does not exist")


def test_gpu_recipes_parse_on_cpu():
    """GPU recipes (bf16, DeepSpeed) parse here when told to use the CPU, which is all a CPU machine can check."""
    recipes = sorted(str(p.relative_to(REPO)) for p in (REPO / "recipes" / "llama3-8b").glob("cpt_*.yaml"))
    code = ("import json, os, sys; from retrace.recipe import parse_recipe; from retrace.training import *\n"
            "from retrace.training.dataset import training_sources\n"
            "for recipe in sys.argv[1:]:\n"
            "    m, d, t, r = parse_recipe((ModelArguments, DataArguments, RetraceTrainingArguments), "
            "['--config', recipe, '--use_cpu', 'true'])\n"
            "    zero = json.load(open(t.deepspeed))['zero_optimization']\n"
            "    assert zero['stage'] == 3 and zero['stage3_gather_16bit_weights_on_model_save'], recipe\n"
            "    assert t.per_device_train_batch_size * t.gradient_accumulation_steps * 8 == t.global_batch_sequences\n"
            "    assert t.global_batch_tokens == t.global_batch_sequences * d.max_length == 64 * 65536\n"
            "    assert m.attn_implementation == 'flash_attention_2' and t.bf16 and d.max_length == 65536\n"
            "    assert len(training_sources(d)) == 10, recipe\n")
    run = subprocess.run([sys.executable, "-c", code, *recipes], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert len(recipes) == 3 and run.returncode == 0, run.stderr[-2000:]


def test_llama3_ablations_differ_only_in_the_repository_source():
    """Raw-Repos and no-search change the repository share's data and nothing else (same mix, schedule, seed)."""
    import yaml

    recipes = {name: yaml.safe_load((REPO / "recipes" / "llama3-8b" / f"{name}.yaml").read_text())
               for name in ("cpt_64k_zero3", "cpt_64k_raw_repos", "cpt_64k_no_search")}
    paper = recipes["cpt_64k_zero3"]
    weights = {name: source["weight"] for name, source in paper["mixture"].items()}
    assert sum(weights.values()) == pytest.approx(1.0) and weights["trajectories"] == 0.30
    assert paper["mixture_total_tokens"] == paper["max_steps"] * paper["global_batch_tokens"]
    assert paper["global_batch_tokens"] == paper["global_batch_sequences"] * paper["max_length"]
    for name in ("cpt_64k_raw_repos", "cpt_64k_no_search"):
        recipe = recipes[name]
        changed = {key for key in paper.keys() | recipe.keys() if paper.get(key) != recipe.get(key)}
        assert changed == {"mixture", "output_dir", "run_name"}, (name, changed)
        ours, theirs = dict(paper["mixture"]), dict(recipe["mixture"])
        repository = ours.pop("trajectories")
        other = theirs.pop("repositories" if name.endswith("raw_repos") else "trajectories")
        assert ours == theirs and other["weight"] == repository["weight"] and other["path"] != repository["path"]


def test_a_hub_model_id_trains_from_the_hub_cache(tmp_path, tiny_model_dir, documents_dir):
    """`model_name_or_path: org/name` resolves through the Hugging Face cache (offline here: a cache laid out
    as huggingface_hub writes it); the card names it as the Hub's `base_model`."""
    import shutil

    from transformers import AutoModelForCausalLM

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--retrace-test--tiny-llama"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    out = tmp_path / "model"
    run = _train(tmp_path, "--model_name_or_path", "retrace-test/tiny-llama", "--documents", str(documents_dir),
                 "--max_length", "32", "--max_steps", "2", "--save_steps", "2", "--output_dir", str(out),
                 env_extra={"HF_HUB_CACHE": str(tmp_path / "hub")})
    assert run.returncode == 0, run.stderr[-3000:]
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers\n") and "\nbase_model: retrace-test/tiny-llama\n" in card
    assert AutoModelForCausalLM.from_pretrained(out).config.num_hidden_layers == 2
    local = _train(tmp_path, "--model_name_or_path", str(tiny_model_dir), "--documents", str(documents_dir),
                   "--max_length", "32", "--max_steps", "1", "--output_dir", str(tmp_path / "local"))
    assert local.returncode == 0 and "base_model" not in (tmp_path / "local" / "README.md").read_text()


def test_resume_skips_a_checkpoint_whose_state_was_cut_short(tmp_path):
    """A kill while the Trainer writes trainer_state.json (in place) leaves it empty or partial: resume from the
    newest checkpoint whose state is whole, never crash on the cut one."""
    from retrace.training.run import find_resume_checkpoint

    for step, state in ((4, '{"global_step": 4}'), (8, '{"global_step": 8}'), (12, '{"global_st'), (16, "")):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoint-20").mkdir()  # killed before its state was written at all

    class Args:
        resume_from_checkpoint = None
        output_dir = str(tmp_path)

    assert find_resume_checkpoint(Args()) == str(tmp_path / "checkpoint-8")
