"""Where artifacts live: collision-free Hub-safe names, folders under 10k entries, and every reader on the layout."""

from __future__ import annotations

import json
import re
from collections import Counter

from toy_export import toy_files, toy_trajectory, write_toy_output

from retrace.atomic import write_jsonl
from retrace.data import read_documents, read_trajectories
from retrace.data.decontamination import iter_training_texts
from retrace.data.export import export_repository, is_done
from retrace.data.layout import (
    DOCUMENTS,
    TRAJECTORIES,
    artifact_files,
    artifact_name,
    artifact_path,
    subfolder,
)

# Names that the old flat layout mapped to one file (`a_b`), or that a case-insensitive filesystem merges.
CLASHING = ["a/b", "a b", "a_b", "a?b", "A_B", "a_B", "..a_b..", "ü/a_b"]


def test_names_are_distinct_hub_safe_readable_and_stable():
    names = [artifact_name(repo) for repo in CLASHING]
    assert len({name.lower() for name in names}) == len(CLASHING)  # distinct even with case folded
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*-[0-9a-f]{12}", name) for name in names)
    assert artifact_name("owner/project") == "owner_project-" + artifact_name("owner/project")[-12:]
    assert artifact_name("owner/project") == "owner_project-90829ce5ea78"  # a changed hash would orphan every run
    long = artifact_name("x" * 1000 + "/" + "y" * 1000)
    assert len(long) <= 80 + 13 and long != artifact_name("x" * 1000 + "/" + "y" * 999)
    path = artifact_path("out", DOCUMENTS, "owner/project")
    assert path.parts[:2] == ("out", DOCUMENTS) and path.parent.name == subfolder("owner/project")
    assert path.name.split("-")[-1].startswith(path.parent.name)  # the name says which folder holds it


def test_folders_stay_under_the_hubs_10k_entries_at_the_papers_scale():
    per_folder = Counter(subfolder(f"github.com/owner{i % 997}/repo-{i}") for i in range(300_000))
    assert len(per_folder) == 256 and max(per_folder.values()) < 10_000
    assert max(per_folder.values()) < 1.2 * 300_000 / 256  # spread evenly, not just under the limit


def test_clashing_repositories_get_their_own_files_and_readers_find_them(tmp_path):
    write_toy_output(tmp_path, CLASHING, heldout=["held/one"])
    assert len(artifact_files(tmp_path / TRAJECTORIES)) == len(CLASHING)
    assert [t.repo for t in read_trajectories(tmp_path / TRAJECTORIES)] == sorted(CLASHING)
    assert sorted(d.repo for d in read_documents(tmp_path / DOCUMENTS)) == sorted(CLASHING)
    assert sorted(doc_id for doc_id, _ in iter_training_texts(tmp_path / DOCUMENTS)) == sorted(CLASHING)
    assert [d.repo for d in read_documents(tmp_path / "heldout" / DOCUMENTS)] == ["held/one"]
    for repo in CLASHING:
        [doc] = read_documents(artifact_path(tmp_path, DOCUMENTS, repo))
        assert doc.repo == repo and is_done(tmp_path, "train", repo)
    assert not is_done(tmp_path, "train", "a-b") and not is_done(tmp_path, "heldout", "a/b")
    entries = [p for p in tmp_path.rglob("*")]
    assert all(len(list(p.iterdir())) < 10_000 for p in entries if p.is_dir())


def test_readers_still_read_flat_files_of_older_runs(tmp_path):
    files = toy_files("old")
    export_repository(tmp_path, "train", toy_trajectory("new", toy_files("new")), toy_files("new"))
    trajectory = toy_trajectory("old", files)
    write_jsonl(tmp_path / TRAJECTORIES / "old.jsonl", [trajectory.to_dict()])  # the layout before hashing
    (tmp_path / TRAJECTORIES / ".old.jsonl.123.tmp").write_text("half a line")  # a killed writer's temp file
    assert [t.repo for t in read_trajectories(tmp_path / TRAJECTORIES)] == ["new", "old"]
    assert json.loads((tmp_path / TRAJECTORIES / "old.jsonl").read_text())["repo"] == "old"
    assert artifact_files(tmp_path / "missing") == []


def test_budget_records_live_in_the_layout_and_mark_repositories_done(tmp_path):
    from retrace.data.budget_check import budget_summary, export_within_budget, record_path, repository_done
    from retrace.repo.budget import BudgetDecision, Part, ratio_counter

    repo = "owner/Shop"
    files = toy_files(repo)
    decision = BudgetDecision(repo=repo, budget_tokens=0, estimated_tokens=0, parts=[Part(repo, "", list(files), 0)])
    export_within_budget(tmp_path, "train", decision, [(files, toy_trajectory(repo, files), None)],
                         ratio_counter(4.0), "4 characters per token")
    path = record_path(tmp_path, "train", repo)
    assert path == artifact_path(tmp_path, "budget", repo, ".json") and path.is_file()
    assert repository_done(tmp_path, "train", repo) and not repository_done(tmp_path, "train", "owner/shop")
    assert budget_summary(tmp_path, "train")["documents_written"] == 1
