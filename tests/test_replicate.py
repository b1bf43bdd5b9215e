"""The replication driver end to end on a tiny budget: the real recipes, shrunk by overrides (~3 min on 2 cores).

Structural policy and proposer, the tiny random Llama as scorer and as the model every arm starts from,
two steps of 128 tokens per arm and seed, two held-out files and one RULER sample per model: the plumbing
of `make replicate` (three corpora, 3 arms x 2 seeds, one evaluation with intervals, the report), not a result.
"""

from __future__ import annotations

import json
import re

from retrace_testing import run_script

from retrace.replication.pipeline import ARMS, MANIFEST, model_name

SEEDS = (0, 1)


def test_replicate_end_to_end(tmp_path, tiny_llama_dir):
    out = tmp_path / "replication"
    synthesize = (f"--policy_backend structural --proposer_backend structural --scorer_model {tiny_llama_dir} "
                  "--sources python:tomllib python:dbm --heldout_sources python:json --document_budget_tokens 12000")
    train = f"--model_name_or_path {tiny_llama_dir} --max_steps 2 --max_length 128 --warmup_steps 0"
    evaluate = ("--max_files 2 --max_context_tokens 128 --max_target_tokens_per_file 64 --max_chunk_tokens 64 "
                "--tasks heldout_nll ruler --ruler_tasks niah_single_1 --ruler_lengths 512 --ruler_samples 1 "
                "--bootstrap_resamples 200")
    driver = ["-m", "retrace.replication", "--output_dir", str(out), "--seeds", *map(str, SEEDS),
              "--synthesize_args", synthesize, "--train_args", train, "--evaluate_args", evaluate]
    run_script(*driver, timeout=900)

    manifest = json.loads((out / MANIFEST).read_text())
    trained = [model_name(arm, seed) for seed in SEEDS for arm in ARMS]
    assert list(manifest["models"]) == ["base", *trained] and not manifest["skipped"]
    for name in trained:  # equal budgets: every arm and seed read the same number of tokens
        train_results = json.loads((out / "models" / name / "train_results.json").read_text())["train"]
        assert train_results["global_step"] == 2 and train_results["global_batch_tokens"] == 2 * 128
    results = json.loads((out / "eval" / "results.json").read_text())
    assert set(results["models"]) == {"base", *trained}

    report = (out / "report.md").read_text()
    for figure in ("loss.png", "document_tokens.png", "search.png", "benchmarks.png"):
        path = out / "figures" / figure
        assert path.read_bytes()[:4] == b"\x89PNG" and f"figures/{figure}" in report
    for row in ("| mean tokens per document |", "| tokens per document / Raw-Repos |",
                "| search: code NLL, iteration 0 -> last |", "| search: mean Think tokens, iteration 0 -> last |",
                "| heldout_nll trajectory/nll |", "| heldout_nll raw/nll |", "| ruler mean (paper: RULER @64k) |",
                "| Repo2Agent-Search - Raw-Repos | heldout_nll trajectory/nll |",
                "| Repo2Agent - Raw-Repos | heldout_nll trajectory/nll |", "## What this shows and does not show"):
        assert row in report, row
    # the numbers are the run's: the base's held-out NLL and its interval as results.json holds them
    base = results["models"]["base"]["tasks"]["heldout_nll"]
    low, high = base["intervals"]["trajectory/nll"]
    assert f"{base['metrics']['trajectory/nll']:,.3f} [{low:,.3f}, {high:,.3f}]" in report
    ruler = results["models"]["base"]["tasks"]["ruler"]["metrics"]["mean"]
    assert ruler is not None and f"| ruler mean (paper: RULER @64k) | `eval/results.json` | {ruler:,.3f}" in report
    mean_tokens = re.search(r"\| mean tokens per document \| `synth/budget/` \| - \| ([\d,]+) \|", report)
    stats = json.loads((out / "synth" / "stats.json").read_text())["splits"]["train"]["documents"]
    assert mean_tokens and int(mean_tokens.group(1).replace(",", "")) == round(
        stats["tokens_per_document"]["raw_repos"]["mean"])

    # a rerun redoes nothing and rewrites the same report
    run_script(*driver, timeout=300)
    assert len(json.loads((out / MANIFEST).read_text())["skipped"]) == 2 + len(trained)
    assert (out / "report.md").read_text() == report
