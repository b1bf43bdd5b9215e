"""The quickstart itself, on the real embedded model (about 10 minutes on 2 cores): slow."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from retrace_testing import ROOT


@pytest.mark.slow
def test_quickstart_training_lowers_heldout_nll(tmp_path):
    run_dir = tmp_path / "quickstart"
    result = subprocess.run(["make", "quickstart", f"RUN_DIR={run_dir}"], cwd=ROOT, capture_output=True, text=True,
                            timeout=3600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    models = json.loads((run_dir / "eval" / "results.json").read_text())["models"]
    nll = {name: m["tasks"]["heldout_nll"]["metrics"]["trajectory/nll"] for name, m in models.items()}
    assert nll["trajectories"] < nll["base"], nll
    stats = json.loads((run_dir / "synth" / "stats.json").read_text())
    sources = stats["splits"]["train"]["text_sources"]
    model, structural = sources.get("hf", 0), sources.get("structural", 0)
    assert model > structural, f"the embedded model wrote at most half of the text steps: {sources}"
    for split in ("train", "heldout"):  # no document exceeds the recipe's budget, on real token counts
        documents = stats["splits"][split]["documents"]
        assert documents["documents_over_budget"] == 0
        assert all(d["max"] <= documents["budget_tokens"] for d in documents["tokens_per_document"].values())
    refine = json.loads((run_dir / "synth" / "refine_stats.json").read_text())["summary"]
    recipe = yaml.safe_load((run_dir / "synth" / "recipe.yaml").read_text())
    assert recipe["proposer_backend"] == "hf" and refine["steps"] > 0 and refine["scored"] > 0  # SmolLM2 rewrites
