"""The three entry scripts, chained as the quickstart chains them, on a tiny recipe in a temp dir."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

from retrace_testing import run_script

from retrace.data import read_documents, read_trajectories
from retrace.data.layout import artifact_files

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _no_nan(constant: str):
    raise AssertionError(f"{constant} is not JSON")


BUDGET = 12_000  # tokens per document: json and wsgiref (~29k each as one document) become sub-projects


def test_synthesize_train_evaluate(tmp_path, tiny_llama_dir):
    synth, model, evaluation = tmp_path / "synth", tmp_path / "model", tmp_path / "eval"
    run_script("synthesize.py", "--config", "recipes/quickstart/synthesize.yaml", "--policy_backend", "structural",
               "--proposer_backend", "structural",
               "--sources", "python:json", "python:wsgiref", "--heldout_sources", str(STDLIB / "urllib"),
               "--output_dir", str(synth), "--scorer_model", str(tiny_llama_dir), "--viewer", "false",
               "--document_budget_tokens", str(BUDGET))
    stats = json.loads((synth / "stats.json").read_text())
    train, heldout = stats["splits"]["train"]["documents"], stats["splits"]["heldout"]["documents"]
    assert (train["repositories"], heldout["repositories"]) == (2, 1)
    documents = sorted(p.name for p in artifact_files(synth / "documents"))
    assert train["repositories_split"] == 2 and train["documents_written"] == len(documents) > 2
    # the budget holds on the real token counts of every corpus (the recipe's tokenizer counts them)
    for split in (train, heldout):
        assert split["documents_over_budget"] == 0 and "tokenizer" in split["counted_with"]
        assert all(d["max"] <= BUDGET for d in split["tokens_per_document"].values())
    assert heldout["files_skipped"] == {"file_over_budget": 2}  # urllib/request.py (~27k tokens) and parse.py
    assert set(train["token_shares"]["of_trained_tokens"]) >= {"reasoning", "code", "agent_text"}
    for name in ("recipe.yaml", "run_info.json", "README.md", "refine_stats.json", "refine.png"):
        assert (synth / name).is_file()
    refine_stats = json.loads((synth / "refine_stats.json").read_text(), parse_constant=_no_nan)  # strict JSON
    refine = refine_stats["summary"]
    assert refine["steps"] > 0 and all(b <= a + 1e-9 for a, b in zip(refine["nll"], refine["nll"][1:]))
    # the scorer's cost is measured while searching and kept: every sub-project was refined by this run
    assert refine_stats["cost_repositories"] == len(documents) and refine_stats["seconds"] > 0
    assert refine_stats["tokens_forwarded"] >= refine_stats["unique_tokens"] > 0
    assert sorted(p.name for p in artifact_files(synth / "baselines" / "no_search")) == documents

    # every written file is the real file, and it is trained on; observations are not
    for traj in read_trajectories(synth / "trajectories"):
        root = STDLIB / traj.repo.split("/")[0].split("#")[0]  # a sub-project keeps the repository's paths
        for step in traj.steps:
            if step.kind in ("read", "write"):
                assert step.content == (root / step.path).read_bytes().decode()
    for doc in read_documents(synth / "documents"):
        assert all(s.train for s in doc.segments if s.kind == "payload")
        assert not any(s.train for s in doc.segments if s.kind == "observation")

    run_script("train.py", "--config", "recipes/quickstart/train.yaml", "--model_name_or_path", str(tiny_llama_dir),
               "--documents", str(synth / "documents"), "--output_dir", str(model), "--max_steps", "2",
               "--max_length", "128", "--save_steps", "2", "--logging_steps", "1", "--activation_checkpointing",
               "false")
    assert (model / "config.json").is_file() and (model / "recipe.yaml").is_file()

    result = run_script("evaluate.py", "--config", "recipes/quickstart/evaluate.yaml", "--output_dir",
                        str(evaluation), "--models", f"base={tiny_llama_dir}", f"trained={model}",
                        "--heldout", str(synth / "heldout"), "--max_files", "3", "--max_context_tokens", "128",
                        "--max_target_tokens_per_file", "64", "--max_chunk_tokens", "64",
                        "--tasks", "heldout_nll", "decontamination",
                        "--decontamination_documents", f"trained={synth / 'documents'}")
    results = json.loads((evaluation / "results.json").read_text())
    table = (evaluation / "results.md").read_text()
    assert "base" in table and "trained" in table and "| base" in result.stdout
    assert (evaluation / "results.png").stat().st_size > 0
    import math

    for name in ("base", "trained"):
        per_context = results["models"][name]["tasks"]["heldout_nll"]["details"]["per_context"]
        assert per_context["trajectory"]["tokens"] == per_context["raw"]["tokens"] == 3 * 64
        assert all(math.isfinite(per_context[c]["nll"]) for c in ("trajectory", "raw"))
    # the trained checkpoint differs from the base it started from
    assert results["models"]["base"]["digest"] != results["models"]["trained"]["digest"]
