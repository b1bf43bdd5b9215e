"""evaluate.py end to end, as users run it: a subprocess with a recipe and command-line overrides."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_evaluate(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, str(ROOT / "evaluate.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_model_dir, heldout_dir):
    """Two models that are the same checkpoint (one by plain path), evaluated on the held-out set."""
    recipe = tmp_path_factory.mktemp("recipe") / "evaluate.yaml"
    recipe.write_text("tasks: [heldout_nll]\nmax_context_tokens: 96\nmax_chunk_tokens: 48\n"
                      "max_target_tokens_per_file: 200\neval_batch_size: 3\neval_device: cpu\nseed: 7\n")
    out = tmp_path_factory.mktemp("eval")
    proc = run_evaluate("--config", str(recipe), "--output_dir", str(out), "--heldout", str(heldout_dir),
                        "--models", f"first={tiny_model_dir}", str(tiny_model_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_writes_results_json_markdown_and_chart(evaluated):
    out, proc = evaluated
    results = json.loads((out / "results.json").read_text())
    assert results["tasks"] == ["heldout_nll"]
    assert list(results["models"]) == ["first", "tiny"]
    assert results["settings"]["seed"] == 7 and results["settings"]["contexts"] == ["trajectory", "raw"]
    assert results["provenance"]["recipe"]["max_context_tokens"] == 96
    assert results["provenance"]["packages"]["torch"]
    settings = results["settings"]
    assert (settings["eval_backend"], settings["eval_batch_size"], settings["eval_device"]) == ("hf", 3, "cpu")
    assert "eval_temperature" not in settings  # the tasks sample, not the engine
    model = results["models"]["first"]
    assert model["resolved_path"] and model["digest"] and model["dtype"] == "float32" and model["device"] == "cpu"
    assert model["engine"]["backend"] == "hf" and model["engine"]["batch_size"] == 3
    assert model["tokens_forwarded"] == model["engine"]["tokens_forwarded"] > 0
    assert "revision" in model and "failed" not in results
    outcome = model["tasks"]["heldout_nll"]
    assert outcome["failed_requests"] == 0
    assert set(outcome["metrics"]) == {f"{c}/{m}" for c in ("trajectory", "raw")
                                       for m in ("nll", "ppl", "bits_per_byte")} | {"trajectory_gain/nll"}
    counts = outcome["details"]["counts"]
    assert counts["files_selected"] == counts["files_total"] == 4
    assert set(outcome["details"]["per_repo"]) == {"pkg", "tool"}
    table = (out / "results.md").read_text().splitlines()
    assert table[0].startswith("| model | heldout_nll trajectory/nll")
    assert table[2].startswith("| first |") and table[3].startswith("| tiny |")
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "run_info.json").is_file() and (out / "recipe.yaml").is_file()
    samples = (out / "samples" / "first" / "heldout_nll.jsonl").read_text().splitlines()
    assert len(samples) == 8  # 4 files x 2 contexts
    assert "results.md" in proc.stdout


def test_identical_models_score_identically(evaluated):
    out, _ = evaluated
    models = json.loads((out / "results.json").read_text())["models"]
    assert models["first"]["digest"] == models["tiny"]["digest"]
    assert models["first"]["tasks"]["heldout_nll"]["metrics"] == models["tiny"]["tasks"]["heldout_nll"]["metrics"]


def test_every_metric_has_an_interval_and_identical_models_differ_by_exactly_zero(evaluated):
    out, _ = evaluated
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["bootstrap_resamples"] == 1000
    outcome = results["models"]["first"]["tasks"]["heldout_nll"]
    assert set(outcome["intervals"]) == set(outcome["metrics"])
    for metric, (low, high) in outcome["intervals"].items():
        assert low <= outcome["metrics"][metric] <= high, metric
    assert outcome["intervals"]["trajectory/nll"][1] > outcome["intervals"]["trajectory/nll"][0]
    assert (outcome["units"]["name"], outcome["units"]["count"]) == ("files", 4)
    differences = results["differences"]
    assert differences["base"] == "first" and list(differences["models"]) == ["tiny"]
    for entry in differences["models"]["tiny"]["heldout_nll"].values():
        assert (entry["difference"], entry["interval"], entry["excludes_zero"], entry["paired"]) == (0, [0, 0], False, True)
    text = (out / "results.md").read_text()
    low, high = outcome["intervals"]["trajectory/nll"]
    assert f"{outcome['metrics']['trajectory/nll']:.4f} [{low:.4f}, {high:.4f}]" in text
    assert "1000 resamples of its 4 files" in text and "## Differences from first (the first model)" in text
    assert "| tiny - first | +0.0000 [+0.0000, +0.0000] |" in text


def test_unknown_task_is_one_clear_error(tmp_path):
    proc = run_evaluate("--tasks", "heldout_nll", "humaneval_typo", "--output_dir", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "unknown task 'humaneval_typo'" in proc.stderr and "heldout_nll" in proc.stderr


def test_missing_inputs_name_the_key(tmp_path, tiny_model_dir):
    proc = run_evaluate("--models", str(tiny_model_dir), "--output_dir", str(tmp_path))
    assert proc.returncode == 2 and "key 'heldout'" in proc.stderr, proc.stderr[-2000:]
    proc = run_evaluate("--models", f"x={tmp_path}/no_model", "--heldout", str(tmp_path),
                        "--output_dir", str(tmp_path))
    assert proc.returncode == 2 and "key 'models'" in proc.stderr, proc.stderr[-2000:]
