"""A small synthesis output directory with hostile content, built through the real pipeline functions.

The repository's files, a file name, the repository name, a Think text and a search log all carry HTML
and script that must render as text. Reads are cut by a small budget, so truncation shows; one step
carries a fallback reason and one Think step a search log, as refinement will write them.
"""

from __future__ import annotations

import json
from pathlib import Path

from retrace.agents import SimulationOptions, StructuralPolicy, simulate_repositories
from retrace.data import SearchLog
from retrace.data.export import export_repository
from retrace.data.stats import split_artifact_stats
from retrace.repo import analyze_repository, ingest_local_dir

PWN = '</script><script>document.body.setAttribute("data-pwned","1")</script>'
IMG = '<img src=x onerror="document.body.setAttribute(\'data-pwned\',\'2\')">'
WEIRD_FILE = "pkg/we&ird<b>.py"
HOSTILE_REPO = "hostile<repo>&co"

HOSTILE_FILES = {
    "pkg/__init__.py": '"""A tiny package."""\nfrom .core import Engine\n',
    "pkg/util.py": '"""Helpers."""\n\n\ndef clamp(x, lo, hi):\n    """Clamp x into [lo, hi]."""\n'
                   "    return max(lo, min(hi, x))  # keep it in range\n",
    "pkg/core.py": '"""The engine."""\nfrom pkg.util import clamp\nfrom . import cycle_a\n\n'
                   f"BANNER = '{PWN}'\nIMAGE = '''{IMG}'''\n\n\n"
                   'class Engine:\n    """Runs things."""\n\n    def run(self, x):\n        return clamp(x, 0, 1)\n',
    "pkg/cycle_a.py": "from . import cycle_b\nVALUE = 1\n",
    "pkg/cycle_b.py": "from . import cycle_a\nOTHER = 2\n",
    WEIRD_FILE: f"# {PWN}\nWEIRD = True\n",
}
HELDOUT_FILES = {
    "lib/base.py": '"""Base."""\n\n\nclass Base:\n    pass\n',
    "lib/child.py": '"""Child."""\nfrom lib.base import Base\n\n\nclass Child(Base):\n    pass\n',
}
# As retrace.refine.search logs a step (a SearchLog, docs/formats.md), in its JSON form.
SEARCH_LOG = {"original": "I write the engine now, on top of the helpers.", "baseline_nll": 1.5,
              "target_tokens": 42, "incumbent_nll": [1.1, 1.0123], "incumbent_chars": [47, 52],
              "candidates": [{"iteration": 0, "text": f"A rejected rewrite {PWN}", "chars": 80, "nll": 1.2345,
                              "n_tokens": 20, "leak": None, "accepted": False},
                             {"iteration": 0, "text": "Write the engine after the helpers it clamps with.",
                              "chars": 52, "nll": 1.0123, "n_tokens": 12, "leak": None, "accepted": True},
                             {"iteration": 1, "text": "return max(lo, min(hi, x))", "chars": 26, "nll": None,
                              "n_tokens": None, "leak": "ngram", "accepted": False}],
              "unhelpful": False, "dropped": False}
DROPPED_THINK = "An unhelpful plan for util, dropped by the search."


def _write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _simulate(root: Path, name: str):
    snapshot = ingest_local_dir(root, name=name)
    [traj] = simulate_repositories([(snapshot, analyze_repository(snapshot))], StructuralPolicy(),
                                   SimulationOptions(read_budget_chars=40))
    return traj, {f.path: f.text for f in snapshot.files}


def build_synth_output(tmp: Path) -> Path:
    """Write `<tmp>/synth` as synthesize.py would (train: one hostile repo; heldout: one small repo)."""
    out = tmp / "synth"
    traj, files = _simulate(_write_tree(tmp / "src_hostile", HOSTILE_FILES), HOSTILE_REPO)
    thinks = [s for s in traj.steps if s.kind == "think" and s.agent == "pkg/core.py"]
    thinks[-1].search = SearchLog.from_dict(SEARCH_LOG)
    thinks[0].content = f"I plan the engine. {IMG}"
    thinks[0].meta.update(source="hf")
    thinks[-1].meta.update(source="structural", fallback="too_short")
    # The search dropped util.py's Think before its Write: out of the steps, into meta.refine.dropped.
    index = next(i for i, s in enumerate(traj.steps) if s.agent == "pkg/util.py" and s.kind == "think")
    dropped = traj.steps.pop(index)
    dropped.content = DROPPED_THINK
    dropped.search = SearchLog.from_dict({**SEARCH_LOG, "candidates": [], "unhelpful": True, "dropped": True})
    traj.meta["refine"] = {"dropped": [{"index": index, "step": dropped.to_dict()}],
                           "stats": {"steps": 2, "accepted": 1, "mean_nll_gain": 0.0877}, "skipped": {"between": 1}}
    export_repository(out, "train", traj, files)
    held, held_files = _simulate(_write_tree(tmp / "src_heldout", HELDOUT_FILES), "heldlib")
    export_repository(out, "heldout", held, held_files)
    stats = {"shard": [0, 1], "splits": {
        "train": {"repos_seen": 1, "repos_kept": 1, **split_artifact_stats(out, "train", [HOSTILE_REPO])},
        "heldout": {"repos_seen": 1, "repos_kept": 1, **split_artifact_stats(out, "heldout", ["heldlib"])}}}
    (out / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    (out / "run_info.json").write_text(json.dumps({"git_revision": "abc123-test", "argv": ["--config", "t.yaml"],
                                                   "time": "2026-01-01T00:00:00+00:00"}), encoding="utf-8")
    (out / "recipe.yaml").write_text("# test recipe\npolicy: structural\nread_budget_chars: 40\n", encoding="utf-8")
    return out
