"""The quickstart itself, on the real embedded model (about 10 minutes on 2 cores): slow."""

from __future__ import annotations

import json
import subprocess

import pytest
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
    assert stats["splits"]["train"]["text_sources"].get("hf", 0) > 0, "the embedded model wrote none of the text"
