"""The held-out reconstruction task: right contexts, caps counted, token-weighted metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from evaluation_fixtures import FILES, make_trajectory

from retrace.data import raw_repository_document, read_documents, trajectory_to_document
from retrace.evaluation import EvaluationConfig, ModelSpec, ModelUnderTest, build_heldout_set, get_task
from retrace.evaluation.heldout import heldout_documents_path, select_files, spread
from retrace.recipe import RecipeError, parse_recipe

QUICKSTART = Path(__file__).resolve().parents[2] / "recipes" / "quickstart" / "evaluate.yaml"


def test_contexts_are_the_text_before_each_file():
    traj = make_trajectory("pkg", FILES)
    doc = trajectory_to_document(traj)
    raw_text = raw_repository_document(traj, FILES).text
    targets = build_heldout_set([doc], ["trajectory", "raw"]).targets
    assert [t.path for t in targets] == list(FILES)
    for target in targets:
        before = doc.text[:doc.text.index(f"<write path=\"{target.path}\">\n")]
        assert target.contexts["trajectory"].startswith(before)
        assert target.contexts["trajectory"].endswith(f"<write path=\"{target.path}\">\n")
        assert raw_text.startswith(target.contexts["raw"] + target.text)
        assert target.contexts["raw"].endswith(f"<file path=\"{target.path}\">\n")
    # The last file's trajectory context holds the plan, thinks and reads; the raw one only the files.
    assert "<plan>" in targets[-1].contexts["trajectory"] and "<plan>" not in targets[-1].contexts["raw"]


def test_max_files_spreads_over_repositories_and_order(heldout_dir):
    docs = read_documents(heldout_documents_path(str(heldout_dir)))
    full = build_heldout_set(docs, ["raw"])
    # The empty file leaves no payload segment in the document, so it is not a file to score.
    assert full.counts == {"documents": 2, "files_total": 4, "files_empty": 0, "files_selected": 4,
                           "files_skipped_by_max_files": 0}
    capped = build_heldout_set(docs, ["raw"], max_files=2)
    assert sorted(t.repo for t in capped.targets) == ["pkg", "tool"]
    assert capped.counts["files_skipped_by_max_files"] == 2
    assert spread(10, 3) == [1, 5, 8] and spread(2, 5) == [0, 1]
    assert select_files({"a": list(range(9)), "b": [0]}, 4) == {"a": [1, 4, 7], "b": [0]}


def test_heldout_path_accepts_synth_dir_or_documents(heldout_dir, tmp_path):
    assert heldout_documents_path(str(heldout_dir)) == heldout_dir / "documents"
    assert heldout_documents_path(str(heldout_dir / "documents")) == heldout_dir / "documents"
    with pytest.raises(RecipeError, match="key 'heldout'"):
        heldout_documents_path(None)
    with pytest.raises(RecipeError, match="key 'heldout'"):
        heldout_documents_path(str(tmp_path / "nowhere"))


def test_metrics_are_token_weighted(tiny_model_dir, heldout_dir):
    config = EvaluationConfig(models=[str(tiny_model_dir)], heldout=str(heldout_dir), max_context_tokens=64,
                              max_chunk_tokens=32, max_target_tokens_per_file=150, eval_device="cpu")
    task = get_task("heldout_nll")
    data = task.prepare(config)
    result = task.run(ModelUnderTest(ModelSpec("tiny", str(tiny_model_dir)), config), data, config)
    for context in ("trajectory", "raw"):
        rows = [r for r in result.records if r["context"] == context]
        weighted = sum(r["nll_sum"] for r in rows) / sum(r["n_tokens"] for r in rows)
        per_file = sum(r["nll"] for r in rows) / len(rows)
        assert result.metrics[f"{context}/nll"] == pytest.approx(weighted)
        assert abs(weighted - per_file) > 1e-3  # the file lengths differ enough for the two to differ
        assert result.metrics[f"{context}/ppl"] == pytest.approx(math.exp(weighted))
    # Both contexts score exactly the same target tokens; the cap is applied and counted.
    by_file = {}
    for row in result.records:
        by_file.setdefault((row["repo"], row["path"]), set()).add(row["n_tokens"])
    assert all(len(n) == 1 for n in by_file.values())
    assert max(r["n_tokens"] for r in result.records) == 150
    assert result.details["counts"]["tokens_dropped_by_max_target_tokens"] > 0
    assert result.metrics["trajectory_gain/nll"] == pytest.approx(
        result.metrics["raw/nll"] - result.metrics["trajectory/nll"])


def test_quickstart_recipe_parses():
    from retrace.evaluation import task_option_types

    config, *_, recipe = parse_recipe([EvaluationConfig, *task_option_types()], ["--config", str(QUICKSTART)])
    assert config.tasks[0] == "heldout_nll" and set(config.contexts) == {"trajectory", "raw"}
    assert {"ruler", "humaneval", "decontamination"} <= set(config.tasks)
    # the agentic tasks' options stay in the recipe, so `--tasks ... bfcl repo_fix` runs them as configured
    config, *_ = parse_recipe([EvaluationConfig, *task_option_types()],
                              ["--config", str(QUICKSTART), "--tasks", "heldout_nll", "bfcl", "repo_fix"])
    assert config.tasks == ["heldout_nll", "bfcl", "repo_fix"]
    assert config.max_files > 0 and config.max_target_tokens_per_file > 0  # sized for a CPU
    assert (config.eval_backend, config.eval_dtype, config.eval_batch_size) == ("hf", "float32", 4)  # one engine
    assert recipe.path == str(QUICKSTART)


@pytest.mark.parametrize(("argv", "key"), [
    (["--tasks", "heldout_nll", "no_such_task"], "tasks"),
    (["--contexts", "trajectory", "docs"], "contexts"),
    (["--models", "a=x", "a=y"], "models"),
    (["--max_context_tokens", "0"], "max_context_tokens"),
])
def test_bad_values_name_the_key(argv, key):
    with pytest.raises(RecipeError, match=f"key '{key}'"):
        parse_recipe([EvaluationConfig], argv)
