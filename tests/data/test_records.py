"""The typed records between stages: what the simulation writes, refinement reads and the viewer shows."""

from __future__ import annotations

import json

import pytest
from synth_fixture import SEARCH_LOG, build_synth_output

from retrace.data import Candidate, Definition, Grounding, Plan, PlanEntry, SearchLog, Step, read_trajectories


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return build_synth_output(tmp_path_factory.mktemp("records"))


def test_a_step_with_every_record_round_trips_through_json():
    grounding = Grounding("pkg/a.py", "python", "Does a.", ["pkg/b.py"], {"pkg/b.py": ["B"]}, ["os"], ["B"], 12,
                          [Definition("class", "A", "class A(B)", "An A.", 3),
                           Definition("method", "run", "def run(self)", "", 5, "A")])
    plan = Plan([PlanEntry("pkg/b.py", "Defines B."), PlanEntry("pkg/a.py", "Builds on B.", ("pkg/b.py",))])
    search = SearchLog.from_dict({**SEARCH_LOG, "kind": "plan", "original_plan": plan.to_dict()})
    step = Step("main", "plan", None, plan.render(), {"source": "hf"}, grounding=grounding, plan=plan, search=search)
    data = json.loads(json.dumps(step.to_dict()))
    assert Step.from_dict(data) == step
    assert data["plan"]["entries"][1] == {"path": "pkg/a.py", "description": "Builds on B.", "needs": ["pkg/b.py"]}
    assert isinstance(Step.from_dict(data).search.candidates[0], Candidate)
    assert plan.render().splitlines() == ["Implementation plan (one sub-agent per file, in this order):",
                                          "1. pkg/b.py: Defines B.", "2. pkg/a.py: Builds on B. (needs pkg/b.py)"]
    bare = Step("a.py", "read", "b.py", "x")
    assert set(bare.to_dict()) == {"agent", "kind", "path", "content", "meta"}  # records only where they exist


def test_the_trajectories_on_disk_carry_the_records(synth):
    [traj] = read_trajectories(synth / "trajectories")
    [plan] = [s for s in traj.steps if s.kind == "plan"]
    assert plan.plan is not None and plan.plan.render() == plan.content and plan.plan.paths == traj.order
    writes = [i for i, s in enumerate(traj.steps) if s.kind == "write"]
    grounded = {traj.steps[i - 1].grounding.path for i in writes if traj.steps[i - 1].grounding is not None}
    assert grounded == set(traj.order) - {"pkg/util.py"}  # util.py's Think was dropped by the (fixture's) search
    assert all(s.grounding is None for s in traj.steps if s.kind != "think")
    [searched] = [s for s in traj.steps if s.search is not None]
    assert searched.search.candidates[1].accepted and searched.search.incumbent_nll == [1.1, 1.0123]
    [record] = traj.meta["refine"]["dropped"]
    dropped = Step.from_dict(record["step"])
    assert dropped.grounding.path == "pkg/util.py" and dropped.search.dropped
