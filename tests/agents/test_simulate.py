"""Grounding invariants of the simulation: real files written once, real files observed, right order."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
from retrace_testing import ScriptedEngine

from retrace.agents import SimulationArguments, StructuralPolicy, build_policy, simulate_repositories
from retrace.agents.policies import ChatPolicy, PolicyRequest
from retrace.agents.structural import requirements_text
from retrace.agents.validation import check_reply
from retrace.data import Trajectory, trajectory_to_document
from retrace.repo import analyze_repository, ingest_local_dir

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def make_repo(root: Path) -> Path:
    files = {
        "pkg/__init__.py": '"""A tiny package."""\nfrom .core import Engine\n',
        "pkg/util.py": '"""Helpers."""\n\ndef clamp(x, lo, hi):\n    return max(lo, min(hi, x))\n',
        "pkg/core.py": '"""The engine."""\nfrom pkg.util import clamp\nfrom . import cycle_a\n\n'
                       'class Engine:\n    """Runs things."""\n    def run(self, x):\n        return clamp(x, 0, 1)\n',
        "pkg/cycle_a.py": "from . import cycle_b\nVALUE = 1\n",
        "pkg/cycle_b.py": "from . import cycle_a\r\nOTHER = 2\r\n",
        "main.py": "from pkg import Engine\nprint(Engine().run(3))\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode())
    return root


def check_grounding(traj: Trajectory, root: Path) -> None:
    real = {p: (root / p).read_bytes().decode() for p in traj.order}
    writes = [s for s in traj.steps if s.kind == "write"]
    assert sorted(s.path for s in writes) == sorted(real), "every kept file written exactly once"
    written: set[str] = set()
    broken = {tuple(e) for e in traj.meta["broken_edges"]}
    for step in traj.steps:
        if step.kind == "read":
            assert step.content == real[step.path], f"observation of {step.path} is not the real file"
            assert step.path in written, "a sub-agent reads only files already written"
        if step.kind == "write":
            assert step.content == real[step.path], f"payload of {step.path} differs from the real file"
            written.add(step.path)
    position = {p: i for i, p in enumerate(s.path for s in writes)}
    return position, broken


@pytest.mark.parametrize("repo", ["tiny", "json", "email"])
def test_payloads_and_observations_are_the_real_files(tmp_path, repo):
    root = make_repo(tmp_path / "tiny") if repo == "tiny" else STDLIB / repo
    snapshot = ingest_local_dir(root, name=repo)
    graph = analyze_repository(snapshot)
    [traj] = simulate_repositories([(snapshot, graph)], StructuralPolicy())
    position, broken = check_grounding(traj, root)
    for importer, imported in graph.edges:
        if (importer, imported) not in broken:
            assert position[imported] < position[importer], f"{importer} written before {imported}"
    assert traj.order == [s.path for s in traj.steps if s.kind == "write"]


def test_cycle_is_recorded_and_document_masks_observations(tmp_path):
    root = make_repo(tmp_path / "tiny")
    snapshot = ingest_local_dir(root, name="tiny")
    graph = analyze_repository(snapshot)
    [traj] = simulate_repositories([(snapshot, graph)], StructuralPolicy())
    assert traj.meta["cycles"] == [["pkg/cycle_a.py", "pkg/cycle_b.py"]]
    assert len(traj.meta["broken_edges"]) == 1
    doc = trajectory_to_document(traj)
    payloads = [s for s in doc.segments if s.kind == "payload"]
    assert [s.path for s in payloads] == traj.order
    assert all(s.train for s in payloads)
    observations = [s for s in doc.segments if s.kind == "observation"]
    assert observations and not any(s.train for s in observations)
    reads = [s for s in traj.steps if s.kind == "read"]
    # every read observation appears verbatim inside an untrained segment
    for read in reads:
        assert any(read.content in s.text for s in observations)
    assert (root / "pkg/cycle_b.py").read_bytes().decode() in doc.text  # CRLF kept


def test_structural_text_never_pastes_code_bodies(tmp_path):
    root = make_repo(tmp_path / "tiny")
    snapshot = ingest_local_dir(root, name="tiny")
    [traj] = simulate_repositories([(snapshot, analyze_repository(snapshot))], StructuralPolicy())
    texts = " ".join(s.content for s in traj.steps if s.kind not in ("read", "write"))
    assert "return max(lo, min(hi, x))" not in texts
    assert "clamp(x, lo, hi)" in texts  # signatures are facts, and they are there


def test_hf_policy_validates_and_counts_fallbacks():
    from collections import Counter

    words = iter(["I will write the parser first, then the public entry point.",
                  "Here is the code:\n```py\nx = compute()\n```", "ok"])
    chat = ScriptedEngine(lambda conversation, params: next(words))
    chat.backend = "hf"
    policy = ChatPolicy(chat, kinds=["think_write", "report"], retries=0)
    policy.templates = {k: "{path}: {facts}" for k in ("requirements", "purpose", "think_read", "think_write",
                                                         "report")}
    requests = [PolicyRequest("think_write", {"path": f"f{i}.py", "facts": "parse_tokens, the entry point"},
                              f"structural {i}") for i in range(3)]
    requests.append(PolicyRequest("purpose", {"path": "p.py", "facts": "x"}, "structural purpose"))
    replies = policy.write(requests)
    assert replies[0].source == "hf" and replies[0].text.startswith("I will write")
    assert (replies[1].source, replies[1].fallback_reason, replies[1].text) == ("structural", "code_block",
                                                                                "structural 1")
    assert replies[2].fallback_reason == "too_short"
    assert replies[3].text == "structural purpose"  # kind not delegated to the model
    assert policy.counts == Counter({"hf": 1, "fallback:code_block": 1, "fallback:too_short": 1, "structural": 1})
    assert [len(conversations) for conversations, _ in chat.calls] == [3]


def test_check_reply_catches_pasted_code():
    request = PolicyRequest("think_write", {}, "s", forbidden_lines=["return max(lo, min(hi, x))"])
    assert check_reply("First I clamp: return max(lo, min(hi, x)) and done.", request) == "pastes_code"
    assert check_reply("First I clamp the value into the range, then return it.", request) is None


def test_hf_policy_with_the_embedded_model_writes_grounded_text(tmp_path):
    """The real embedded SmolLM2 writes a few texts; unusable ones fall back, and are counted."""
    root = make_repo(tmp_path / "tiny")
    snapshot = ingest_local_dir(root, name="tiny")
    policy = build_policy(SimulationArguments(policy_backend="hf", policy_max_new_tokens=24, policy_batch_size=8,
                                              policy_kinds=["think_write"]))
    [traj] = simulate_repositories([(snapshot, analyze_repository(snapshot))], policy)
    readers = {s.agent for s in traj.steps if s.kind == "read"}
    outcomes = sum(policy.outcomes().values())
    assert outcomes == 1 + 3 * 6 + len(readers)  # one per request: requirements, per-file texts, read thinks
    assert policy.counts["hf"] + sum(v for k, v in policy.counts.items() if k.startswith("fallback")) == 6
    assert policy.usage["requests"] == 6 + policy.counts["retry"] and policy.usage["completion_tokens"] > 0
    write_thinks = [s for i, s in enumerate(traj.steps) if s.kind == "think" and traj.steps[i + 1].kind == "write"]
    assert len(write_thinks) == 6
    for step in write_thinks:  # model text where usable, else the counted structural fallback
        assert (step.meta["source"] == "hf" and len(step.content) >= 20) or "fallback" in step.meta
    check_grounding(traj, root)


def test_plan_covers_every_kept_file_exactly_once_in_order():
    snapshot = ingest_local_dir(STDLIB / "email", name="email")
    [traj] = simulate_repositories([(snapshot, analyze_repository(snapshot))], StructuralPolicy())
    [plan] = [s for s in traj.steps if s.kind == "plan"]
    entries = [line.split(". ", 1)[1].split(":", 1)[0] for line in plan.content.splitlines()[1:]]
    assert entries == traj.order
    assert sorted(entries) == sorted(f.path for f in snapshot.files)
    assert len(entries) == len(set(entries))
    delegated = [s.path for s in traj.steps if s.kind == "delegate"]
    assert delegated == traj.order


@pytest.mark.parametrize(("edges", "says"), [
    (0, "No file imports another, so each file is implemented on its own"),
    (1, "through one in-repository import, so each file"),
    (3, "through 3 in-repository imports, so each file"),
])
def test_structural_requirements_say_how_the_files_depend_on_each_other(edges, says):
    overview = {"repo": "futures", "description": "", "packages": ["futures"], "languages": "Python",
                "n_files": 2, "n_lines": 1098, "n_edges": edges, "cycles": []}
    text = requirements_text(overview)
    assert says in text and ("0 in-repository" not in text)
