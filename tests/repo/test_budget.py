"""The document budget: repositories over it become sub-projects, and no written document exceeds it.

Fixtures are small synthetic repositories written to temp dirs (packages, subpackages, imports across
them, a file far over any small budget); tokens are counted at the recipe's characters-per-token ratio,
so the tests need no tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrace.agents import SimulationOptions, StructuralPolicy, simulate_repositories
from retrace.agents.policies import PolicyReply, load_prompt
from retrace.agents.requests import RepoWork, requirements_request, think_read_request
from retrace.agents.validation import instruction_text, review_reply
from retrace.data import read_documents, read_trajectories
from retrace.data.budget_check import (
    budget_summary,
    card_section,
    document_names,
    export_within_budget,
    read_record,
    repository_done,
    token_counter,
)
from retrace.data.layout import artifact_files, artifact_path
from retrace.data.viewer.load import load_repo
from retrace.data.viewer.page import render_repo_body
from retrace.repo import analyze_repository, ingest_local_dir
from retrace.repo.budget import (
    DocumentBudgetArguments,
    TrajectoryEstimate,
    budget_parts,
    fit_to_budget,
    ratio_counter,
)

CHARS_PER_TOKEN = 3.2


def _module(doc: str, imports: list[str], n_functions: int, seed: int) -> str:
    body = "".join(f"def f{seed}_{k}(x, y={k}):\n    \"\"\"Helper {k} of {seed}.\"\"\"\n    return x * y + {seed}\n\n\n"
                   for k in range(n_functions))
    return f'"""{doc}"""\n' + "".join(line + "\n" for line in imports) + "\n\n" + body


def write_repo(root: Path) -> Path:
    """A repository with own files, packages, a nested package with its README, tests and one huge file."""
    files = {
        "README.md": "# shop\n\nA small shop with packages.\n",
        "setup.py": "from setuptools import setup\nsetup(name='shop')\n",
        "shop_main.py": _module("Entry point.", ["from catalog import items", "from billing import invoice"], 4, 0),
        "catalog/__init__.py": _module("The catalog.", [], 1, 1),
        "catalog/items.py": _module("Items.", ["from catalog import base"], 12, 2),
        "catalog/base.py": _module("Base items.", [], 10, 3),
        "catalog/search/README.md": "# search\n\nFinds items in the catalog.\n",
        "catalog/search/__init__.py": _module("Search.", [], 1, 4),
        "catalog/search/index.py": _module("The index.", ["from catalog import items", "from catalog.search import rank"],
                                           14, 5),
        "catalog/search/rank.py": _module("Ranking.", ["from catalog import base"], 9, 6),
        "billing/__init__.py": _module("Billing.", [], 1, 7),
        "billing/invoice.py": _module("Invoices.", ["from billing import tax", "from catalog import items"], 15, 8),
        "billing/tax.py": _module("Taxes.", [], 6, 9),
        "util/__init__.py": _module("Utilities.", [], 2, 10),
        "util/text.py": _module("Text helpers.", [], 3, 11),
        "big/__init__.py": _module("Big.", [], 1, 12),
        "big/huge.py": _module("A generated table.", ["from util import text"], 160, 13),
        "tests/test_items.py": _module("Tests of items.", ["from catalog import items"], 5, 14),
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = write_repo(tmp_path_factory.mktemp("budget") / "shop")
    snapshot = ingest_local_dir(root, name="shop", languages=["python", "markdown"])
    return snapshot, analyze_repository(snapshot)


def args(budget: int, **keys) -> DocumentBudgetArguments:
    return DocumentBudgetArguments(document_budget_tokens=budget, document_chars_per_token=CHARS_PER_TOKEN, **keys)


def whole_estimate(repo, **keys) -> int:
    snapshot, graph = repo
    estimate = TrajectoryEstimate(snapshot, graph, args(1, **keys), ratio_counter(CHARS_PER_TOKEN))
    return estimate.tokens(graph.dev_order)


BUDGETS = [600, 1500, 2500, 4000, 8000, 10**9]


@pytest.mark.parametrize("budget", BUDGETS)
def test_every_file_is_in_exactly_one_part_or_skipped_with_a_reason(repo, budget):
    snapshot, graph = repo
    decision = fit_to_budget(snapshot, graph, args(budget))
    placed = [p for part in decision.parts for p in part.paths] + [p for s in decision.skipped for p in s.paths]
    assert sorted(placed) == sorted(graph.files) and len(placed) == len(set(placed))
    assert all(part.paths for part in decision.parts)
    names = [part.name for part in decision.parts]
    assert len(names) == len(set(names)) and all(n == "shop" or n.startswith(("shop/", "shop#")) for n in names)
    for part in decision.parts:
        assert 0 < part.estimated_tokens <= budget
    estimate = TrajectoryEstimate(snapshot, graph, args(budget), ratio_counter(CHARS_PER_TOKEN))
    for skipped in decision.skipped:  # only a file that cannot fit even alone is skipped
        assert skipped.reason == "file_over_budget" and len(skipped.paths) == 1
        assert estimate.tokens(skipped.paths) > budget


def test_the_split_follows_the_directories(repo):
    snapshot, graph = repo
    assert fit_to_budget(snapshot, graph, args(10**9)).parts[0].name == "shop"  # fits: one document, as before
    decision = fit_to_budget(snapshot, graph, args(4000))
    by_name = {part.name: part for part in decision.parts}
    assert decision.split and [s.paths for s in decision.skipped] == [["big/huge.py"]]
    for name, part in by_name.items():
        if name.startswith("shop/") and "#" not in name and ".." not in name:
            directory = name.removeprefix("shop/")
            assert all(p.startswith(directory + "/") for p in part.paths)
    assert "shop" in by_name and {"README.md", "setup.py", "shop_main.py"} <= set(by_name["shop"].paths)
    # the same snapshot and graph always give the same parts
    assert fit_to_budget(snapshot, graph, args(4000)) == decision


def test_parts_are_repositories_of_their_own(repo):
    snapshot, graph = repo
    decision = fit_to_budget(snapshot, graph, args(1500))
    for part, (sub_snapshot, sub_graph) in zip(decision.parts, budget_parts(snapshot, graph, decision)):
        members, reads = set(part.paths), set(part.readable)
        assert sub_snapshot.name == sub_graph.repo == part.name
        assert {f.path for f in sub_snapshot.files} == members and not members & reads
        assert [f.path for f in sub_snapshot.readable] == part.readable and set(sub_graph.files) == members | reads
        assert sub_graph.dev_order == part.paths  # files of other parts are read, never written
        position = {p: i for i, p in enumerate(sub_graph.dev_order)}
        for importer, imported in sub_graph.edges:  # imports across parts are not edges any more
            assert importer in members and imported in members
            assert (importer, imported) in sub_graph.broken_edges or position[imported] < position[importer]
        # an import of another part's file stays a dependency where there was room to read it, else it goes
        for path in members:
            outside = [d for d in sub_graph.files[path].deps if d not in members]
            assert outside == part.reads.get(path, []) and set(outside) <= set(graph.files[path].deps)
        if any(p.startswith("catalog/search/") for p in members) and part.root == "catalog/search":
            assert "Finds items" in sub_snapshot.description  # its own README
    assert graph.files["shop_main.py"].deps  # the repository's own graph is untouched


def test_a_sub_project_reads_what_it_imports_from_other_parts(repo, tmp_path):
    snapshot, graph = repo
    decision = simulate_and_export(tmp_path, snapshot, graph, args(4000))
    billing = next(part for part in decision.parts if "billing/invoice.py" in part.paths)
    assert "catalog/items.py" in billing.reads["billing/invoice.py"] and "catalog/items.py" not in billing.paths
    texts = {f.path: f.text for f in snapshot.files}
    [doc] = [d for d in read_documents(tmp_path / "documents") if d.repo == billing.name]
    read = {s.path: s.text for s in doc.segments if s.kind == "observation"}
    written = [s.path for s in doc.segments if s.kind == "payload"]
    assert texts["catalog/items.py"] in read["catalog/items.py"]  # read whole, from the real file
    assert "catalog/items.py" not in written and written == billing.paths
    [trajectory] = [t for t in read_trajectories(tmp_path / "trajectories") if t.repo == billing.name]
    assert trajectory.meta["reads_from_other_parts"] == billing.readable
    assert trajectory.repo == billing.name != "shop" and trajectory.meta["repository"] == "shop"
    # the viewer says which repository the part belongs to and what it reads of the rest
    page = render_repo_body(load_repo(tmp_path, "train", artifact_path(tmp_path, "trajectories", billing.name)),
                            "../index.html")
    assert "part of</th><td>shop" in page and "<code>catalog/items.py</code>" in page
    plan = next(s for s in trajectory.steps if s.kind == "plan").plan
    assert "catalog/items.py" in next(e for e in plan.entries if e.path == "billing/invoice.py").needs
    # the sub-agent is told the file is already in the repository (no report of it exists in this document)
    [(sub_snapshot, sub_graph)] = [p for p in budget_parts(snapshot, graph, decision) if p[0].name == billing.name]
    work = RepoWork.build(sub_snapshot, sub_graph)
    work.replies = {(kind, f.path): PolicyReply(f"{f.path} {kind}.", "structural") for f in work.facts
                    for kind in ("purpose", "report")} | {("requirements", ""): PolicyReply("A shop.", "structural")}
    ask = think_read_request(work, work.by_path["billing/invoice.py"], SimulationOptions())
    assert "catalog/items.py" in ask.fields["facts"] and "already in the repository" in ask.fields["facts"]
    assert ask.fields["repo"] == "shop"  # the agents call the project by its repository's name, not the part's
    requirements = requirements_request(work, SimulationOptions())
    assert requirements.fields["repo"] == "shop" and "This part of shop is developed on its own" in \
        requirements.fields["facts"]
    # the part's fixed sentence is framing, not material: "existing" says nothing of the project (SmolLM2 on
    # concurrent's part, 2026-12-05), while a sentence naming the part's files stays
    prompt = load_prompt("requirements").format(**requirements.fields)
    said = "The project shop must bill orders from billing/invoice.py. It fits the existing shop."
    verdict = review_reply(said, requirements, prompt, instructions=instruction_text(load_prompt("requirements")))
    assert verdict.text == "The project shop must bill orders from billing/invoice.py."


def test_a_file_too_large_for_any_document_is_never_read_from_another(repo):
    snapshot, graph = repo
    estimate = TrajectoryEstimate(snapshot, graph, args(4000), ratio_counter(CHARS_PER_TOKEN))
    assert "big/huge.py" not in estimate.readable and "util/text.py" in estimate.readable
    decision = fit_to_budget(snapshot, graph, args(4000))
    assert all("big/huge.py" not in part.readable for part in decision.parts)
    for part in decision.parts:  # every Read taken fits: the estimate with them stays within the budget
        assert part.estimated_tokens <= 4000 and part.estimated_tokens >= estimate.tokens(part.paths)
    assert any(part.reads for part in decision.parts)


def test_cross_part_reads_keep_the_ratio_to_the_raw_files(repo, tmp_path):
    """Split documents still read what their files import, so they stay well above the raw files' length."""
    snapshot, graph = repo
    decision = simulate_and_export(tmp_path, snapshot, graph, args(4000))
    count = ratio_counter(CHARS_PER_TOKEN)
    documents = read_documents(tmp_path / "documents")
    trajectory_tokens = sum(sum(count([s.text for s in d.segments])) for d in documents)
    written = [p for part in decision.parts for p in part.paths]
    texts = {f.path: f.text for f in snapshot.files}
    raw_tokens = sum(count([texts[p] for p in written]))
    outside = sum(sum(count([texts[d] for deps in part.reads.values() for d in deps])) for part in decision.parts)
    assert outside > 0
    observed = sum(sum(count([s.text for s in d.segments if s.kind == "observation"])) for d in documents)
    assert observed >= outside and trajectory_tokens > raw_tokens + outside


def test_no_budget_keeps_the_repository_whole(repo):
    snapshot, graph = repo
    decision = fit_to_budget(snapshot, graph, args(0))
    assert not decision.split and budget_parts(snapshot, graph, decision) == [(snapshot, graph)]


def test_a_repository_needing_too_many_documents_is_skipped_whole(repo):
    snapshot, graph = repo
    decision = fit_to_budget(snapshot, graph, args(2500, document_max_parts=2))
    assert decision.parts == []
    [skipped] = decision.skipped
    assert skipped.reason == "too_many_parts" and sorted(skipped.paths) == sorted(graph.files)


def simulate_and_export(out: Path, snapshot, graph, budget_args: DocumentBudgetArguments, read_budget: int = 0):
    count, how = token_counter(None, CHARS_PER_TOKEN)
    decision = fit_to_budget(snapshot, graph, budget_args, count, read_budget)
    parts = budget_parts(snapshot, graph, decision)
    options = SimulationOptions(read_budget_chars=read_budget)
    trajectories = simulate_repositories(parts, StructuralPolicy(), options) if parts else []
    exported = [({f.path: f.text for f in s.files}, t, None) for (s, _), t in zip(parts, trajectories)]
    export_within_budget(out, "train", decision, exported, count, how)
    return decision


@pytest.mark.parametrize("budget,read_budget", [(1500, 0), (4000, 0), (8000, 0), (4000, 300)])
def test_no_written_document_exceeds_the_budget(repo, tmp_path, budget, read_budget):
    snapshot, graph = repo
    decision = simulate_and_export(tmp_path, snapshot, graph, args(budget), read_budget)
    documents = read_documents(tmp_path / "documents")
    count = ratio_counter(CHARS_PER_TOKEN)
    assert documents, "something is written"
    for doc in documents:
        assert sum(count([s.text for s in doc.segments])) <= budget
    summary = budget_summary(tmp_path, "train")
    assert summary["documents_written"] == len(documents) == len(decision.parts)
    assert summary["documents_over_budget"] == 0
    assert summary["tokens_per_document"]["documents"]["max"] <= budget
    assert summary["files_skipped"] == ({"file_over_budget": len(decision.skipped)} if decision.skipped else {})
    assert (["big/huge.py"] in [s.paths for s in decision.skipped]) == (budget < 8000)
    written = sorted(p for doc in documents for p in {s.path for s in doc.segments if s.kind == "payload"})
    assert written == sorted(p for part in decision.parts for p in part.paths)  # each kept file written once
    assert repository_done(tmp_path, "train", "shop")
    assert sorted(document_names(tmp_path, "train", ["shop"])) == sorted(d.repo for d in documents)
    shares = summary["token_shares"]
    assert abs(sum(shares["of_all_tokens"].values()) - 1) < 1e-3 and "reasoning" in shares["of_trained_tokens"]
    truncated = [s for doc in documents for s in doc.segments if s.kind == "observation" and 'truncated="true"' in s.text]
    assert bool(truncated) == bool(read_budget)  # a read past its own budget is cut and marked, as without a split


def test_truncated_reads_let_more_files_share_a_document(repo):
    snapshot, graph = repo
    whole = fit_to_budget(snapshot, graph, args(10**9)).estimated_tokens
    cut = fit_to_budget(snapshot, graph, args(10**9), read_budget_chars=300).estimated_tokens
    assert cut < whole


def test_a_document_measured_over_the_budget_is_counted_and_not_written(repo, tmp_path):
    snapshot, graph = repo
    # too small an allowance for the agents' words: the estimate is low, so some documents come out longer
    budget = 3000
    decision = simulate_and_export(tmp_path, snapshot, graph, args(budget, document_agent_tokens_per_file=100,
                                                                    document_agent_tokens_per_document=0))
    record = read_record(tmp_path, "train", "shop")
    over = {name for name, m in record["documents"].items() if m["over_budget"]}
    assert over, "the fixture should produce a document over the budget"
    assert all(record["documents"][name]["documents"] > budget for name in over)
    written = {d.repo for d in read_documents(tmp_path / "documents")} if (tmp_path / "documents").is_dir() else set()
    assert written and written == {p.name for p in decision.parts} - over
    for folder in ("trajectories", "baselines/raw_repos"):  # none of a dropped part's artifacts is written
        assert len(artifact_files(tmp_path / folder)) == len(written)
    assert repository_done(tmp_path, "train", "shop")  # a resumed run does not redo it
    summary = budget_summary(tmp_path, "train")
    assert summary["documents_over_budget"] == len(over) and set(summary["over_budget"]) == over
    assert set(document_names(tmp_path, "train", ["shop"])) == written
    card = "\n".join(card_section(tmp_path, ["train"]))
    assert f"{len(over)} documents over the budget not written" in card and "| paper | Repo2Agent-Search |" in card


def test_stats_of_a_repository_that_fits(repo, tmp_path):
    snapshot, graph = repo
    simulate_and_export(tmp_path, snapshot, graph, args(10**9))
    summary = budget_summary(tmp_path, "train")
    assert summary["repositories_split"] == 0 and summary["documents_written"] == 1
    ratio = summary["measured_over_estimated"]
    assert 0.5 < ratio <= 1.0, "the structural agents' words fit the default allowances"
    assert json.loads(json.dumps(summary)) == summary
    assert summary["tokens_per_document"]["raw_repos"]["mean"] < summary["tokens_per_document"]["documents"]["mean"]
    assert whole_estimate(repo) >= summary["tokens_per_document"]["documents"]["max"]


def test_keys_are_checked():
    with pytest.raises(ValueError, match="document_budget_tokens"):
        DocumentBudgetArguments(document_budget_tokens=-1)
    with pytest.raises(ValueError, match="document_chars_per_token"):
        DocumentBudgetArguments(document_chars_per_token=0)


def test_a_changed_budget_re_decides_and_leaves_no_stale_parts(repo, tmp_path):
    snapshot, graph = repo
    split = simulate_and_export(tmp_path, snapshot, graph, args(4000))
    assert len(split.parts) > 1 and repository_done(tmp_path, "train", "shop", 4000)
    assert not repository_done(tmp_path, "train", "shop", 10**9)  # a resumed run with another budget redoes it
    simulate_and_export(tmp_path, snapshot, graph, args(10**9))
    for folder in ("documents", "trajectories", "baselines/raw_repos"):
        assert artifact_files(tmp_path / folder) == [artifact_path(tmp_path, folder, "shop")], folder
    assert document_names(tmp_path, "train", ["shop"]) == ["shop"]
