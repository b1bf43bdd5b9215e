"""Comparing evaluate runs: the right cells under the right rows and columns, a refusal (or a mark) when a
shared task was measured differently, and a bar chart PNG."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

from retrace.evaluation.compare import SettingsMismatch, compare_runs, load_runs
from retrace.evaluation.report import write_reports

SETTINGS = {"contexts": ["trajectory", "raw"], "max_context_tokens": 1024, "seed": 0, "eval_dtype": "float32",
            "eval_device": "cpu", "eval_batch_size": 4, "eval_backend": "hf", "eval_concurrency": 8}


def results(models: dict[str, dict[str, dict[str, float]]], humaneval_options=None, **settings) -> dict:
    """A results.json as run_evaluation writes it: `models` is {model: {task: metrics}}."""
    tasks = list(dict.fromkeys(t for per_model in models.values() for t in per_model))
    return {"stage": "evaluate", "tasks": tasks, "settings": {**SETTINGS, **settings},
            "task_options": {"humaneval": humaneval_options or {"humaneval_samples": 1, "humaneval_k": [1]}},
            "models": {name: {"path": f"/models/{name}", "tasks": {
                task: {"metrics": metrics, "details": {"summary": f"{task} summary"}}
                for task, metrics in per_model.items()}} for name, per_model in models.items()},
            "provenance": {"git_revision": "abc1234"}}


def write_run(path: Path, data: dict) -> str:
    path.mkdir(parents=True)
    (path / "results.json").write_text(json.dumps(data))
    return str(path)


@pytest.fixture
def two_runs(tmp_path) -> list[str]:
    raw = write_run(tmp_path / "runs/raw/eval", results(
        {"model": {"humaneval": {"pass@1": 0.3476}, "heldout_nll": {"trajectory/nll": 1.25, "raw/nll": 1.5}}},
        eval_device="cuda:0", eval_batch_size=8, eval_concurrency=32))   # how the work was spread does not matter
    ours = write_run(tmp_path / "runs/ours/eval", results(
        {"model": {"humaneval": {"pass@1": 0.372}, "heldout_nll": {"trajectory/nll": 1.0, "raw/nll": None}},
         "base": {"humaneval": {"pass@1": 0.3}}}))
    return [raw, ours]


def table(path: Path, every: bool = False) -> dict[str, dict[str, str]]:
    """The comparison table as {row: {column: cell}}; with `every`, the rows of every table (differences too)."""
    blocks, block = [], []
    for line in [*path.read_text().splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
        elif block:
            blocks, block = [*blocks, block], []
    cells: dict[str, dict[str, str]] = {}
    for lines in blocks if every else blocks[:1]:
        header = [c.strip() for c in lines[0].strip("|").split("|")]
        for row in ([c.strip() for c in line.strip("|").split("|")] for line in lines[2:]):
            cells.setdefault(row[0], {}).update(zip(header[1:], row[1:]))
    return cells


def test_rows_are_run_and_model_and_cells_are_the_metrics(two_runs, tmp_path):
    paths = compare_runs([f"Raw-Repos={two_runs[0]}", f"Repo2Agent-Search={two_runs[1]}"], tmp_path / "cmp")
    cells = table(paths["markdown"])
    assert list(cells) == ["Raw-Repos/model", "Repo2Agent-Search/model", "Repo2Agent-Search/base"]
    assert cells["Raw-Repos/model"] == {"humaneval pass@1": "0.3476", "heldout_nll trajectory/nll": "1.2500",
                                        "heldout_nll raw/nll": "1.5000"}
    assert cells["Repo2Agent-Search/model"]["humaneval pass@1"] == "0.3720"
    assert cells["Repo2Agent-Search/model"]["heldout_nll raw/nll"] == "n/a"   # ran, scored nothing
    assert cells["Repo2Agent-Search/base"]["heldout_nll trajectory/nll"] == "-"   # did not run
    saved = json.loads(paths["json"].read_text())
    assert saved["rows"]["Raw-Repos/model"]["humaneval"] == {"pass@1": 0.3476}
    assert saved["settings_differences"] == {}
    with Image.open(paths["chart"]) as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 200


def test_runs_are_labelled_by_the_path_parts_that_tell_them_apart(two_runs):
    assert [run.label for run in load_runs(two_runs)] == ["raw/eval", "ours/eval"]


def test_different_task_settings_are_refused_or_marked(tmp_path):
    a = write_run(tmp_path / "a", results({"m": {"humaneval": {"pass@1": 0.5}}}))
    b = write_run(tmp_path / "b", results({"m": {"humaneval": {"pass@1": 0.6}}},
                                          humaneval_options={"humaneval_samples": 10, "humaneval_k": [1]}, seed=3))
    with pytest.raises(SettingsMismatch, match=r"humaneval: seed: a=0, b=3; humaneval_samples: a=1, b=10"):
        compare_runs([a, b], tmp_path / "cmp")
    paths = compare_runs([a, b], tmp_path / "cmp", allow_mismatch=True)
    assert table(paths["markdown"])["b/m"] == {"humaneval † pass@1": "0.6000"}
    assert "† humaneval measured under different settings: seed: a=0, b=3" in paths["markdown"].read_text()


def test_a_task_only_one_run_has_is_not_a_mismatch(tmp_path):
    a = write_run(tmp_path / "a", results({"m": {"humaneval": {"pass@1": 0.5}}}))
    b = write_run(tmp_path / "b", results({"m": {"ruler": {"score": 0.4}}}, humaneval_options={"other": 1}))
    cells = table(compare_runs([a, b], tmp_path / "cmp")["markdown"])
    assert cells == {"a/m": {"humaneval pass@1": "0.5000", "ruler score": "-"},
                     "b/m": {"humaneval pass@1": "-", "ruler score": "0.4000"}}


def test_runs_written_by_write_reports_compare_with_their_recorded_chart_metrics(tmp_path):
    charts = {"heldout_nll": (["trajectory/nll"], "nats/token")}
    for name, nll in (("x", 1.0), ("y", math.nan)):
        write_reports(tmp_path / name, results({"m": {"heldout_nll": {"trajectory/nll": nll, "gain": 0.1}}}), charts)
    assert json.loads((tmp_path / "x" / "results.json").read_text())["charts"] == {
        "heldout_nll": {"metrics": ["trajectory/nll"], "label": "nats/token"}}
    paths = compare_runs([str(tmp_path / "x"), str(tmp_path / "y")], tmp_path / "cmp")
    cells = table(paths["markdown"])
    assert cells["x/m"]["heldout_nll trajectory/nll"] == "1.0000" and cells["y/m"]["heldout_nll trajectory/nll"] == "n/a"
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_run_lists_are_refused(two_runs, tmp_path):
    with pytest.raises(ValueError, match="no results.json"):
        compare_runs([two_runs[0], str(tmp_path)], tmp_path / "cmp")
    with pytest.raises(ValueError, match="at least two"):
        compare_runs([two_runs[0]], tmp_path / "cmp")
    with pytest.raises(ValueError, match="given twice"):
        compare_runs([two_runs[0], two_runs[0]], tmp_path / "cmp")


def test_evaluate_cli_compares_and_refuses_in_one_line(two_runs, tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    run = [sys.executable, str(root / "evaluate.py"), "--compare", *two_runs, "--output_dir", str(tmp_path / "cmp")]
    done = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| raw/eval/model | 0.3476 |" in done.stdout and (tmp_path / "cmp" / "comparison.png").is_file()
    other = write_run(tmp_path / "other", results({"model": {"humaneval": {"pass@1": 0.1}}}, seed=7))
    done = subprocess.run([*run[:3], two_runs[0], other, *run[-2:]], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 2 and done.stderr.startswith("error: key 'compare': runs measured shared tasks")
    assert "seed: eval=0, other=7" in done.stderr  # labels: the shortest suffixes that differ


def test_compare_shows_intervals_and_whether_each_difference_exceeds_its_interval(tmp_path):
    """Runs written by write_reports with their per-sample records: the table carries the runs' intervals, the
    differences section a paired interval per pair of rows, marked when it excludes 0."""
    from retrace.atomic import write_jsonl
    from retrace.evaluation.humaneval.task import HUMANEVAL, HumanEvalOptions, problem_pass_at_k
    from retrace.evaluation.intervals import interval_entry, unit_sample

    options = HumanEvalOptions()
    solved = {"weak": range(0, 40, 4), "strong": range(0, 40, 4), "best": range(30)}   # of 40 problems
    runs = []
    for name, ids in solved.items():
        records = [{"task_id": f"HumanEval/{p}", "sample": 0, "passed": p in ids} for p in range(40)]
        sample = unit_sample(records, HUMANEVAL.resampling, options)
        metrics = problem_pass_at_k(sample.units, options)
        data = results({"model": {"humaneval": metrics}})
        data["models"]["model"]["tasks"]["humaneval"].update(interval_entry(sample, metrics, 400, seed=0))
        write_reports(tmp_path / name, data, {"humaneval": (["pass@1"], "pass@1")})
        write_jsonl(tmp_path / name / "samples" / "model" / "humaneval.jsonl", records)
        runs.append(str(tmp_path / name))
    paths = compare_runs(runs, tmp_path / "cmp", resamples=400, seed=0)
    cells = table(paths["markdown"], every=True)
    low, high = json.loads((tmp_path / "weak" / "results.json").read_text())["models"]["model"]["tasks"][
        "humaneval"]["intervals"]["pass@1"]
    assert cells["weak/model"]["humaneval pass@1"] == f"0.2500 [{low:.4f}, {high:.4f}]" and low < 0.25 < high
    assert cells["strong/model - weak/model"]["humaneval pass@1"] == "+0.0000 [+0.0000, +0.0000]"  # same answers
    best = cells["best/model - weak/model"]["humaneval pass@1"]
    assert best.startswith("+0.5000 [") and best.endswith("] *")   # 0.75 vs 0.25 on 40 problems: real
    saved = json.loads(paths["json"].read_text())
    entry = saved["differences"]["best/model - weak/model"]["humaneval"]["pass@1"]
    assert entry["excludes_zero"] and entry["paired"] and 0 < entry["interval"][0] < 0.5 < entry["interval"][1]
    assert saved["intervals"]["weak/model"]["humaneval"]["pass@1"] == [low, high]
    assert "excludes 0" in paths["markdown"].read_text()
