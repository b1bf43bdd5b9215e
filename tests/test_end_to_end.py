"""The three entry scripts, chained as the quickstart chains them, on a tiny recipe in a temp dir."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

from retrace_testing import run_script

from retrace.data import read_documents, read_trajectories

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def _no_nan(constant: str):
    raise AssertionError(f"{constant} is not JSON")


def test_synthesize_train_evaluate(tmp_path, tiny_llama_dir):
    synth, model, evaluation = tmp_path / "synth", tmp_path / "model", tmp_path / "eval"
    run_script("synthesize.py", "--config", "recipes/quickstart/synthesize.yaml", "--policy_backend", "structural",
               "--sources", "python:json", "python:wsgiref", "--heldout_sources", str(STDLIB / "urllib"),
               "--output_dir", str(synth), "--scorer_model", str(tiny_llama_dir), "--viewer", "false")
    stats = json.loads((synth / "stats.json").read_text())
    assert stats["splits"]["train"]["repos_written"] == 2 and stats["splits"]["heldout"]["repos_written"] == 1
    for name in ("recipe.yaml", "run_info.json", "README.md", "refine_stats.json", "refine.png"):
        assert (synth / name).is_file()
    refine_stats = json.loads((synth / "refine_stats.json").read_text(), parse_constant=_no_nan)  # strict JSON
    refine = refine_stats["summary"]
    assert refine["steps"] > 0 and all(b <= a + 1e-9 for a, b in zip(refine["nll"], refine["nll"][1:]))
    # the scorer's cost is measured while searching and kept: both repositories were refined by this run
    assert refine_stats["cost_repositories"] == 2 and refine_stats["seconds"] > 0
    assert refine_stats["tokens_forwarded"] >= refine_stats["unique_tokens"] > 0
    assert sorted(p.name for p in (synth / "baselines" / "no_search").glob("*.jsonl")) == ["json.jsonl",
                                                                                         "wsgiref.jsonl"]

    # every written file is the real file, and it is trained on; observations are not
    for traj in read_trajectories(synth / "trajectories"):
        root = STDLIB / traj.repo
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
