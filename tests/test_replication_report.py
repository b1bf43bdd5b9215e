"""The replication report's readers and figures on small hand-built artifacts (seconds, no model)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from retrace.data.layout import BUDGET_RECORDS, DOCUMENTS, artifact_path, split_dir
from retrace.replication import artifacts, figures
from retrace.replication.artifacts import Difference, MetricValue
from retrace.replication.pipeline import ReplicationPlan, evaluation_tasks, override_value
from retrace.replication.report import _difference_phrase, _search_sentence

PNG_MAGIC = b"\x89PNG"


def _is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:4] == PNG_MAGIC


def test_loss_history_reads_the_trainers_log(tmp_path):
    state = {"log_history": [{"step": 1, "loss": 2.5, "learning_rate": 1e-4}, {"step": 2, "loss": 2.25},
                             {"step": 2, "train_loss": 2.4, "train_runtime": 3.0}]}  # the summary entry has no `loss`
    (tmp_path / "trainer_state.json").write_text(json.dumps(state))
    assert artifacts.loss_history(tmp_path) == [(1, 2.5), (2, 2.25)]
    assert artifacts.loss_history(tmp_path / "missing") == []
    png = figures.loss_curves({"raw-repos-s0": [(1, 2.5), (2, 2.25)], "repo2agent-search-s1": [(1, 2.6), (2, 2.0)]},
                              tmp_path / "loss.png", "models/*/trainer_state.json")
    assert _is_png(png)


def test_search_figure_from_refine_stats(tmp_path):
    summary = {"steps": 4, "scored": 20, "accepted": 3, "nll": [2.75, 2.70, 2.69, 2.69], "step_nll": [2.8, 2.7, 2.7, 2.7],
               "think_tokens": [144.0, 150.0, 151.0, 151.0], "baseline_nll": 2.78}
    (tmp_path / "refine_stats.json").write_text(json.dumps({"iterations": 3, "summary": summary}))
    read = artifacts.read_json(tmp_path / "refine_stats.json")["summary"]
    assert _is_png(figures.search_curve(read, tmp_path / "search.png", "synth/refine_stats.json"))
    # a run with no searched step (NaN baseline written as null) still draws
    empty = {"steps": 0, "nll": [], "think_tokens": [], "baseline_nll": None}
    assert _is_png(figures.search_curve(empty, tmp_path / "empty.png", "synth/refine_stats.json"))


def _budget_record(synth: Path, repo: str, measured: dict, write_document: bool = True) -> None:
    base = split_dir(synth, "train")
    record = {"parts": [{"name": repo}], "skipped": [], "documents": {repo: measured}}
    path = artifact_path(base, BUDGET_RECORDS, repo, ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    if write_document:
        document = artifact_path(base, DOCUMENTS, repo)
        document.parent.mkdir(parents=True, exist_ok=True)
        document.write_text("{}\n")


def test_document_tokens_from_budget_records(tmp_path):
    _budget_record(tmp_path, "pkg/a", {"documents": 900, "no_search": 850, "raw_repos": 400, "over_budget": False})
    _budget_record(tmp_path, "pkg/b", {"documents": 300, "no_search": 280, "raw_repos": 100, "over_budget": False})
    _budget_record(tmp_path, "big", {"documents": 99_000, "no_search": 98_000, "raw_repos": 50_000, "over_budget": True})
    _budget_record(tmp_path, "dropped", {"documents": 7, "no_search": 7, "raw_repos": 7, "over_budget": False},
                   write_document=False)  # decontamination removed its document: not a training document
    tokens = artifacts.document_tokens(tmp_path)
    assert {k: sorted(v) for k, v in tokens.items()} == {"documents": [300, 900], "no_search": [280, 850],
                                                          "raw_repos": [100, 400]}
    png = figures.document_lengths(tokens, {"documents": 12_083, "raw_repos": 4_866}, tmp_path / "tokens.png",
                                   "synth/budget/")
    assert _is_png(png)


def test_metric_values_take_the_interval_results_json_holds(tmp_path):
    entry = {"metrics": {"trajectory/nll": 1.5, "mean": 60.0, "mean_ci": [50.0, 70.0], "pass@1": 0.0},
             "intervals": {"trajectory/nll": [1.4, 1.6], "pass@1": [math.nan, math.nan]}}
    assert artifacts.metric_value(entry, "trajectory/nll") == MetricValue(1.5, (1.4, 1.6))
    assert artifacts.metric_value(entry, "mean") == MetricValue(60.0, (50.0, 70.0))  # `<metric>_ci` beside it
    assert artifacts.metric_value(entry, "pass@1") == MetricValue(0.0, None)  # no usable interval: none drawn
    assert artifacts.metric_value(entry, "absent") is None
    bars = {("heldout_nll", "trajectory/nll"): {"base": MetricValue(1.5, (1.4, 1.6)), "raw-repos-s0": MetricValue(1.4, None)}}
    assert _is_png(figures.benchmark_bars(bars, {}, tmp_path / "bars.png", "eval/results.json"))


def _difference(entries: dict[int, tuple[float, list[float] | None, bool | None]]) -> Difference:
    per_seed = {s: {"difference": d, "interval": i, "excludes_zero": e, "paired": True} for s, (d, i, e) in entries.items()}
    return Difference("repo2agent-search", "raw-repos", "heldout_nll", "trajectory/nll", per_seed, None)


def test_the_verdict_follows_the_intervals():
    better = _difference({0: (-0.02, [-0.03, -0.01], True), 1: (-0.01, [-0.02, -0.005], True)})
    assert "is better" in _difference_phrase(better, lower_is_better=True)
    assert "is worse" in _difference_phrase(better, lower_is_better=False)
    unresolved = _difference({0: (-0.02, [-0.05, 0.01], False), 1: (0.01, [-0.01, 0.03], False)})
    assert "cannot be told apart" in _difference_phrase(unresolved, lower_is_better=True)
    mixed = _difference({0: (-0.02, [-0.03, -0.01], True), 1: (0.01, [-0.01, 0.03], False)})
    assert "1 of 2 seeds" in _difference_phrase(mixed, lower_is_better=True)
    opposite = _difference({0: (-0.02, [-0.03, -0.01], True), 1: (0.01, [0.005, 0.02], True)})
    assert "opposite sides" in _difference_phrase(opposite, lower_is_better=True)


def test_the_search_sentence_says_which_way_each_curve_went():
    both = {"nll": [2.75, 2.70], "think_tokens": [144.0, 151.0], "baseline_nll": 2.78, "accepted": 1, "scored": 4}
    assert "fell from 2.750 to 2.700" in _search_sentence(both) and "both as in the paper's Figure 3" in _search_sentence(both)
    flat = {"nll": [2.75, 2.75], "think_tokens": [144.0, 140.0]}
    assert "stayed at 2.750" in _search_sentence(flat) and "neither did" in _search_sentence(flat)


def test_overrides_and_missing_aptbench_data(tmp_path):
    assert override_value(["--max_steps", "2", "--model_name_or_path", "m"], "model_name_or_path") == "m"
    assert override_value(["--max_steps"], "max_steps") is None
    (tmp_path / "evaluate.yaml").write_text("tasks: [heldout_nll, aptbench]\n")
    plan = ReplicationPlan(tmp_path / "out", tmp_path, [0], evaluate_args=["--aptbench_data", str(tmp_path / "none")])
    tasks, notes = evaluation_tasks(plan)
    assert tasks == ["heldout_nll"] and "aptbench not run" in notes[0]
